#include "formats/safetensors.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "formats/atomic_file.hpp"
#include "formats/byte_cursor.hpp"

namespace hyplora::formats {

namespace {
constexpr std::uint64_t kMaxHeader = 100'000'000;  // the reference implementation's limit

std::uint64_t dtype_size(const std::string& d) {
  if (d == "F32") return 4;
  if (d == "F16" || d == "BF16") return 2;
  if (d == "F64") return 8;
  return 0;
}
std::string q(const std::string& s) { return "\"" + s + "\""; }
}  // namespace

std::uint64_t SafeTensor::element_count() const {
  std::uint64_t n = 1;
  for (auto d : shape) n *= std::uint64_t(d);
  return n;
}

const SafeTensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

const SafeTensor& SafetensorsFile::require(const std::string& name, const std::vector<std::int64_t>& shape,
                                           const std::string& file) const {
  const SafeTensor* t = find(name);
  if (!t) throw FormatError(file, "missing tensor " + q(name));
  if (t->shape != shape) {
    auto str = [](const std::vector<std::int64_t>& s) {
      std::string r = "[";
      for (std::size_t k = 0; k < s.size(); ++k) r += (k ? ", " : "") + std::to_string(s[k]);
      return r + "]";
    };
    throw FormatError(file, "tensor " + q(name) + " has shape " + str(t->shape) + ", expected " + str(shape));
  }
  return *t;
}

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& file, const SafetensorsReadOptions& options) {
  ByteCursor cur(bytes, file);
  const auto n = cur.read<std::uint64_t>("header length");
  if (n > kMaxHeader || n > cur.remaining())
    cur.fail_at(0, "header length " + std::to_string(n) + " exceeds the file's " + std::to_string(cur.remaining()) +
                       " remaining bytes (or the 100 MB limit)");
  if (n < 2) cur.fail_at(0, "header length " + std::to_string(n) + " is too short for a JSON object");
  const std::string_view header = cur.bytes(n, "header");
  const std::uint64_t data_start = 8 + n;
  const std::uint64_t data_size = bytes.size() - data_start;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError(file, 8 + (e.byte > 0 ? e.byte - 1 : 0), std::string("header is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw FormatError(file, 8, "header is not a JSON object");

  SafetensorsFile st;
  struct Span {
    std::uint64_t b, e;
    std::size_t idx;
  };
  std::vector<Span> spans;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> offsets;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const auto& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) throw FormatError(file, 8, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) throw FormatError(file, 8, "__metadata__ value for " + q(m.key()) + " is not a string");
        st.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string what = "tensor " + q(key);
    if (!v.is_object()) throw FormatError(file, 8, what + ": entry is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) throw FormatError(file, 8, what + ": missing string \"dtype\"");
    if (!v.contains("shape") || !v["shape"].is_array()) throw FormatError(file, 8, what + ": missing array \"shape\"");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      throw FormatError(file, 8, what + ": \"data_offsets\" is not a [begin, end] pair");
    SafeTensor t;
    t.name = key;
    t.dtype = v["dtype"].get<std::string>();
    const std::uint64_t esize = dtype_size(t.dtype);
    if (esize == 0) throw FormatError(file, 8, what + ": unsupported dtype " + q(t.dtype) + " (F32, F16, BF16, F64 are read)");
    if (v["shape"].size() > 8) throw FormatError(file, 8, what + ": more than 8 dimensions");
    std::uint64_t count = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) throw FormatError(file, 8, what + ": shape entry " + d.dump() + " is not a non-negative integer");
      const auto x = d.get<std::uint64_t>();
      if (x > std::uint64_t(std::numeric_limits<std::int64_t>::max()) || (x != 0 && count > (std::uint64_t(1) << 62) / x))
        throw FormatError(file, 8, what + ": shape overflows");
      count *= x;
      t.shape.push_back(std::int64_t(x));
    }
    const auto& off = v["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw FormatError(file, 8, what + ": data_offsets are not non-negative integers");
    const auto b = off[0].get<std::uint64_t>(), e = off[1].get<std::uint64_t>();
    if (b > e || e > data_size)
      throw FormatError(file, data_start + std::min(b, data_size), what + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                                                                   "] outside the " + std::to_string(data_size) + "-byte data section");
    if (count > (std::uint64_t(1) << 62) / esize || count * esize != e - b)
      throw FormatError(file, data_start + b, what + ": shape x " + t.dtype + " size = " + std::to_string(count) + " x " +
                                                  std::to_string(esize) + " bytes, but data_offsets span " + std::to_string(e - b));
    spans.push_back({b, e, st.tensors.size()});
    st.tensors.push_back(std::move(t));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.b < b.b || (a.b == b.b && a.e < b.e); });
  std::uint64_t expect = 0;
  for (const auto& s : spans) {
    if (s.b < expect)
      throw FormatError(file, data_start + s.b, "tensor " + q(st.tensors[s.idx].name) + " overlaps the previous tensor");
    if (s.b > expect)
      throw FormatError(file, data_start + expect, "gap of " + std::to_string(s.b - expect) + " unused bytes before tensor " + q(st.tensors[s.idx].name));
    expect = s.e;
  }
  if (expect != data_size)
    throw FormatError(file, data_start + expect, std::to_string(data_size - expect) + " trailing bytes after the last tensor");

  std::vector<SafeTensor> ordered;
  ordered.reserve(spans.size());
  for (const auto& s : spans) {
    SafeTensor t = std::move(st.tensors[s.idx]);
    const std::uint64_t count = (s.e - s.b) / dtype_size(t.dtype);
    t.data.resize(count);
    const char* p = bytes.data() + data_start + s.b;
    for (std::uint64_t k = 0; k < count; ++k) {
      if (t.dtype == "F32") {
        std::memcpy(&t.data[k], p + 4 * k, 4);
      } else if (t.dtype == "F64") {
        double d;
        std::memcpy(&d, p + 8 * k, 8);
        t.data[k] = float(d);
      } else {
        std::uint16_t h;
        std::memcpy(&h, p + 2 * k, 2);
        t.data[k] = t.dtype == "F16" ? half_to_float(h) : bf16_to_float(h);
      }
      if (options.check_finite && !std::isfinite(t.data[k]))
        throw FormatError(file, data_start + s.b, "tensor " + q(t.name) + ": element " + std::to_string(k) + " is " +
                                                      (std::isnan(t.data[k]) ? "NaN" : "infinite"));
    }
    ordered.push_back(std::move(t));
  }
  st.tensors = std::move(ordered);
  return st;
}

SafetensorsFile read_safetensors(const std::filesystem::path& path, const SafetensorsReadOptions& options) {
  const std::string bytes = read_whole_file(path);
  return parse_safetensors(bytes, path.string(), options);
}

std::string serialize_safetensors(const SafetensorsFile& st) {
  nlohmann::json h = nlohmann::json::object();
  if (!st.metadata.empty()) h["__metadata__"] = st.metadata;
  std::uint64_t off = 0;
  std::set<std::string> names;
  for (const auto& t : st.tensors) {
    if (t.name.empty() || t.name == "__metadata__" || !names.insert(t.name).second)
      throw std::invalid_argument("safetensors write: empty, reserved or duplicate tensor name " + q(t.name));
    for (auto d : t.shape)
      if (d < 0) throw std::invalid_argument("safetensors write: tensor " + q(t.name) + " has a negative dimension");
    if (t.element_count() != t.data.size())
      throw std::invalid_argument("safetensors write: tensor " + q(t.name) + " shape does not match its " + std::to_string(t.data.size()) + " values");
    h[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {off, off + 4 * t.data.size()}}};
    off += 4 * t.data.size();
  }
  std::string header = h.dump();
  header.resize((header.size() + 7) / 8 * 8, ' ');
  std::string out;
  out.reserve(8 + header.size() + off);
  const std::uint64_t n = header.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += header;
  // data in the header's offset order (nlohmann sorts keys, offsets follow the given order)
  for (const auto& t : st.tensors) out.append(reinterpret_cast<const char*>(t.data.data()), 4 * t.data.size());
  return out;
}

void write_safetensors(const std::filesystem::path& path, const SafetensorsFile& st) {
  write_file_atomically(path, serialize_safetensors(st));
}

}  // namespace hyplora::formats
