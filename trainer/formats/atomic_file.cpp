#include "formats/atomic_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace hyplora::formats {

namespace {
[[noreturn]] void fail(const std::filesystem::path& p, const std::string& what, int err) {
  throw std::runtime_error(p.string() + ": " + what + ": " + std::strerror(err));
}
std::atomic<unsigned> temp_counter{0};
/// ".<name>.tmp.<pid>.<n>" in `dir`: the form remove_stale_temp_files recognises.
std::filesystem::path temp_file_path(const std::filesystem::path& dir, const std::string& name) {
  return dir / ("." + name + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(temp_counter++));
}
}  // namespace

AtomicFileWriter::AtomicFileWriter(std::filesystem::path path) : path_(std::move(path)) {
  std::filesystem::path dir = path_.parent_path();
  std::string name = path_.filename().string();
  if (name.empty()) throw std::runtime_error(path_.string() + ": not a file name");
  temp_ = temp_file_path(dir, name);
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(temp_, "cannot create temporary file", errno);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFileWriter::write(const void* data, std::size_t n) {
  if (fd_ < 0) throw std::runtime_error(path_.string() + ": write after commit");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(temp_, "write failed", errno);
    }
    p += w;
    n -= std::size_t(w);
    written_ += std::size_t(w);
  }
}

void AtomicFileWriter::commit() {
  if (fd_ < 0) throw std::runtime_error(path_.string() + ": commit called twice");
  if (::fsync(fd_) != 0) fail(temp_, "fsync failed", errno);
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail(temp_, "close failed", errno);
  if (::rename(temp_.c_str(), path_.c_str()) != 0) fail(path_, "rename from " + temp_.string() + " failed", errno);
  committed_ = true;
  std::filesystem::path dir = path_.parent_path();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {  // make the rename durable; failure here cannot undo the (already visible) rename
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  AtomicFileWriter w(path);
  w.write(bytes);
  w.commit();
}

std::vector<std::filesystem::path> remove_stale_temp_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> removed;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return removed;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    // ".<name>.tmp.<pid>.<n>": a leading dot, then ".tmp.", digits, '.', digits at the end
    if (name.size() < 8 || name[0] != '.' || !e.is_regular_file(ec)) continue;
    const auto last_dot = name.rfind('.');
    if (last_dot == std::string::npos || last_dot == 0) continue;
    const auto pid_dot = name.rfind('.', last_dot - 1);
    if (pid_dot == std::string::npos || pid_dot < 4 || name.compare(pid_dot - 4, 4, ".tmp") != 0) continue;
    const std::string pid_text = name.substr(pid_dot + 1, last_dot - pid_dot - 1);
    const std::string n_text = name.substr(last_dot + 1);
    auto digits = [](const std::string& t) {
      return !t.empty() && t.size() <= 10 && t.find_first_not_of("0123456789") == std::string::npos;
    };
    if (!digits(pid_text) || !digits(n_text)) continue;
    const long long pid = std::stoll(pid_text);
    if (pid <= 0 || pid > 0x7fffffffLL) continue;
    const bool alive = ::kill(pid_t(pid), 0) == 0 || errno == EPERM;  // EPERM: runs, owned by someone else
    if (alive) continue;
    if (std::filesystem::remove(e.path(), ec)) removed.push_back(e.path());
  }
  return removed;
}

bool same_file(const std::filesystem::path& a, const std::filesystem::path& b) {
  std::error_code ec;
  if (std::filesystem::exists(a, ec) && std::filesystem::exists(b, ec)) return std::filesystem::equivalent(a, b, ec);
  return std::filesystem::weakly_canonical(a, ec) == std::filesystem::weakly_canonical(b, ec);
}

void require_writable_folder(const std::filesystem::path& dir_in, const std::string& what, bool created_later) {
  namespace fs = std::filesystem;
  const fs::path dir = dir_in.empty() ? fs::path(".") : dir_in;
  // the nearest existing ancestor (dir itself when it exists); every component on the way must be a folder
  fs::path existing = dir;
  for (;;) {
    std::error_code ec;
    const auto st = fs::status(existing, ec);
    if (st.type() == fs::file_type::not_found) {
      // ENOTDIR: a component further up is a file; walk up to it and name it below
      if (existing == dir && !created_later && ec.value() != ENOTDIR)
        throw std::invalid_argument(what + ": folder " + dir.string() + " does not exist");
      fs::path up = existing.parent_path();
      if (up.empty() || up == existing) up = existing.is_absolute() ? existing.root_path() : fs::path(".");
      if (up == existing) break;
      existing = up;
      continue;
    }
    if (ec) throw std::invalid_argument(what + ": cannot inspect " + existing.string() + ": " + ec.message());
    if (st.type() != fs::file_type::directory)
      throw std::invalid_argument(what + ": " + existing.string() + " is a file, not a folder" +
                                  (existing == dir ? "" : " (on the way to " + dir.string() + ")") +
                                  "; give an output path in a folder");
    break;
  }
  // probe: create and remove a file there, exactly as the atomic writer's temporary file
  const fs::path probe = temp_file_path(existing, "write-check");
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    throw std::invalid_argument(what + ": cannot create files in folder " + existing.string() + ": " +
                                std::strerror(err) + " (checked before any work; give an --out where this user can write)");
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

void require_not_an_input(const std::filesystem::path& out, const char* out_flag,
                          const std::vector<std::pair<std::filesystem::path, std::string>>& inputs) {
  for (const auto& [in, flag] : inputs)
    if (!in.empty() && same_file(out, in))
      throw std::invalid_argument(std::string(out_flag) + " " + out.string() + " is the " + flag +
                                  " file itself; write to another file");
}

}  // namespace hyplora::formats
