#include "util/progress.hpp"

#include <cmath>
#include <cstdio>
#include <iostream>
#include <unistd.h>

namespace hyplora::util {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  long s = std::lround(seconds);
  char buf[64];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

Progress::Progress(std::string label, long total, long first)
    : label_(std::move(label)), total_(total), first_(first), start_(std::chrono::steady_clock::now()),
      last_print_(start_ - std::chrono::hours(1)), tty_(isatty(fileno(stderr)) != 0) {}

double Progress::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Progress::eta(long done) const {
  const long run = done - first_;
  if (run <= 0) return NAN;
  return elapsed() / double(run) * double(total_ - done);
}

void Progress::update(long done, const std::string& detail, bool force) {
  auto now = std::chrono::steady_clock::now();
  if (!force && std::chrono::duration<double>(now - last_print_).count() < min_interval_) return;
  if (!tty_ && !force) return;  // a log file gets only the forced lines
  last_print_ = now;
  std::string line = label_ + " " + std::to_string(done) + "/" + std::to_string(total_) + " " + detail +
                     " | " + format_duration(elapsed()) + " elapsed, " + format_duration(eta(done)) + " left";
  if (tty_) {
    std::cerr << "\r\033[K" << line << std::flush;
    printed_ = true;
  } else {
    std::cerr << line << "\n";
  }
}

void Progress::finish() {
  if (tty_ && printed_) std::cerr << "\n";
  printed_ = false;
}

}  // namespace hyplora::util
