#include "formats/gguf.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <unordered_set>

#include "formats/atomic_file.hpp"
#include "formats/byte_cursor.hpp"
#include "formats/weight_check.hpp"

namespace hyplora::formats {

namespace {

constexpr std::uint32_t kDefaultAlignment = 32;
constexpr int kMaxArrayDepth = 4;
/// Metadata values held in memory, array elements included. Each takes a GgufValue (about 100
/// bytes) whatever its encoded size, so the file-size bound alone let a 20 MB array of u8 take 1.9 GB.
/// Real tokenizers hold well under 1M (Llama 3: about 540k with its merges; Gemma: about 770k).
constexpr std::uint64_t kMaxMetadataValues = std::uint64_t(1) << 22;
constexpr std::uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

std::string q(const std::string& s) { return "\"" + s + "\""; }

bool known_value_type(std::uint32_t t) { return t <= 12; }

// Smallest encoded size of one value of type t (for bounding counts by the bytes left).
std::uint64_t min_value_size(GgufType t) {
  switch (t) {
    case GgufType::UInt8: case GgufType::Int8: case GgufType::Bool: return 1;
    case GgufType::UInt16: case GgufType::Int16: return 2;
    case GgufType::UInt32: case GgufType::Int32: case GgufType::Float32: return 4;
    case GgufType::UInt64: case GgufType::Int64: case GgufType::Float64: return 8;
    case GgufType::String: return 8;
    case GgufType::Array: return 12;
  }
  return 1;
}

struct TypeInfo {
  std::uint64_t block_elems, block_bytes;
};
std::optional<TypeInfo> ggml_type_info(std::uint32_t t) {
  switch (t) {
    case 0: return TypeInfo{1, 4};
    case 1: return TypeInfo{1, 2};
    case 8: return TypeInfo{32, 34};  // Q8_0: f16 scale + 32 int8
    case 30: return TypeInfo{1, 2};
    default: return std::nullopt;
  }
}
const char* ggml_type_name(std::uint32_t t) {
  switch (t) {
    case 0: return "F32"; case 1: return "F16"; case 8: return "Q8_0"; case 30: return "BF16";
    case 2: return "Q4_0"; case 3: return "Q4_1"; case 6: return "Q5_0"; case 7: return "Q5_1";
    case 10: return "Q2_K"; case 11: return "Q3_K"; case 12: return "Q4_K"; case 13: return "Q5_K";
    case 14: return "Q6_K"; case 15: return "Q8_K";
    default: return "unknown";
  }
}

std::string read_string(ByteCursor& cur, const char* what) {
  const std::uint64_t at = cur.offset();
  const auto len = cur.read<std::uint64_t>(what);
  if (len > cur.remaining())
    cur.fail_at(at, std::string(what) + " length " + std::to_string(len) + " exceeds the " +
                        std::to_string(cur.remaining()) + " bytes left in the file");
  std::string s(cur.bytes(len, what));
  if (!is_valid_utf8(s)) cur.fail_at(at, std::string(what) + " is not valid UTF-8");
  return s;
}

/// `budget`: metadata values still allowed (kMaxMetadataValues over the whole file).
GgufValue read_value(ByteCursor& cur, GgufType type, const std::string& key, int depth, std::uint64_t& budget) {
  if (budget == 0)
    cur.fail_at(cur.offset(), "metadata " + q(key) + ": the file's metadata holds more than " +
                                  std::to_string(kMaxMetadataValues) + " values (arrays included), more than any model's");
  --budget;
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufType::UInt8: v.u = cur.read<std::uint8_t>("u8 value"); break;
    case GgufType::Int8: v.i = cur.read<std::int8_t>("i8 value"); break;
    case GgufType::UInt16: v.u = cur.read<std::uint16_t>("u16 value"); break;
    case GgufType::Int16: v.i = cur.read<std::int16_t>("i16 value"); break;
    case GgufType::UInt32: v.u = cur.read<std::uint32_t>("u32 value"); break;
    case GgufType::Int32: v.i = cur.read<std::int32_t>("i32 value"); break;
    case GgufType::UInt64: v.u = cur.read<std::uint64_t>("u64 value"); break;
    case GgufType::Int64: v.i = cur.read<std::int64_t>("i64 value"); break;
    case GgufType::Float32: v.f = cur.read<float>("f32 value"); break;
    case GgufType::Float64: v.f = cur.read<double>("f64 value"); break;
    case GgufType::Bool: {
      const std::uint64_t at = cur.offset();
      const auto b = cur.read<std::uint8_t>("bool value");
      if (b > 1) cur.fail_at(at, "metadata " + q(key) + ": bool byte " + std::to_string(b) + " is not 0 or 1");
      v.b = b == 1;
      break;
    }
    case GgufType::String: v.s = read_string(cur, "string value"); break;
    case GgufType::Array: {
      const std::uint64_t at = cur.offset();
      if (depth >= kMaxArrayDepth) cur.fail_at(at, "metadata " + q(key) + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
      const auto et = cur.read<std::uint32_t>("array element type");
      if (!known_value_type(et)) cur.fail_at(at, "metadata " + q(key) + ": unknown array element type " + std::to_string(et));
      v.elem_type = GgufType(et);
      const auto n = cur.read<std::uint64_t>("array length");
      if (n > cur.remaining() / min_value_size(v.elem_type))
        cur.fail_at(at + 4, "metadata " + q(key) + ": array of " + std::to_string(n) + " " + gguf_type_name(v.elem_type) +
                                " cannot fit in the " + std::to_string(cur.remaining()) + " bytes left");
      if (n > budget)
        cur.fail_at(at + 4, "metadata " + q(key) + ": array of " + std::to_string(n) + " values; the file's metadata may hold " +
                                "at most " + std::to_string(kMaxMetadataValues) + " values (arrays included), more than any model's");
      v.arr.reserve(n);
      for (std::uint64_t k = 0; k < n; ++k) v.arr.push_back(read_value(cur, v.elem_type, key, depth + 1, budget));
      break;
    }
  }
  return v;
}

void convert_tensor(std::string_view raw, GgmlType type, std::vector<float>& out) {
  const std::size_t n = out.size();
  const char* p = raw.data();
  switch (type) {
    case GgmlType::F32: std::memcpy(out.data(), p, n * 4); break;
    case GgmlType::F16:
      for (std::size_t k = 0; k < n; ++k) {
        std::uint16_t h;
        std::memcpy(&h, p + 2 * k, 2);
        out[k] = half_to_float(h);
      }
      break;
    case GgmlType::BF16:
      for (std::size_t k = 0; k < n; ++k) {
        std::uint16_t h;
        std::memcpy(&h, p + 2 * k, 2);
        out[k] = bf16_to_float(h);
      }
      break;
    case GgmlType::Q8_0:
      for (std::size_t blk = 0; blk < n / 32; ++blk) {
        const char* b = p + blk * 34;
        std::uint16_t h;
        std::memcpy(&h, b, 2);
        const float d = half_to_float(h);
        for (int k = 0; k < 32; ++k) out[blk * 32 + std::size_t(k)] = d * float(static_cast<std::int8_t>(b[2 + k]));
      }
      break;
  }
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UInt8: return "u8"; case GgufType::Int8: return "i8"; case GgufType::UInt16: return "u16";
    case GgufType::Int16: return "i16"; case GgufType::UInt32: return "u32"; case GgufType::Int32: return "i32";
    case GgufType::Float32: return "f32"; case GgufType::Bool: return "bool"; case GgufType::String: return "string";
    case GgufType::Array: return "array"; case GgufType::UInt64: return "u64"; case GgufType::Int64: return "i64";
    case GgufType::Float64: return "f64";
  }
  return "?";
}

// ---- GgufValue ----------------------------------------------------------------------------
GgufValue GgufValue::u32(std::uint32_t v) { GgufValue r; r.type = GgufType::UInt32; r.u = v; return r; }
GgufValue GgufValue::i32(std::int32_t v) { GgufValue r; r.type = GgufType::Int32; r.i = v; return r; }
GgufValue GgufValue::u64(std::uint64_t v) { GgufValue r; r.type = GgufType::UInt64; r.u = v; return r; }
GgufValue GgufValue::f32(float v) { GgufValue r; r.type = GgufType::Float32; r.f = v; return r; }
GgufValue GgufValue::boolean(bool v) { GgufValue r; r.type = GgufType::Bool; r.b = v; return r; }
GgufValue GgufValue::str(std::string v) { GgufValue r; r.type = GgufType::String; r.s = std::move(v); return r; }
GgufValue GgufValue::array(GgufType elem, std::vector<GgufValue> elems) {
  for (const auto& e : elems)
    if (e.type != elem) throw std::invalid_argument("GgufValue::array: element of type " + std::string(gguf_type_name(e.type)) +
                                                    " in an array of " + gguf_type_name(elem));
  GgufValue r; r.type = GgufType::Array; r.elem_type = elem; r.arr = std::move(elems); return r;
}
GgufValue GgufValue::strings(const std::vector<std::string>& v) {
  std::vector<GgufValue> e; e.reserve(v.size());
  for (const auto& s : v) e.push_back(str(s));
  return array(GgufType::String, std::move(e));
}
GgufValue GgufValue::f32s(const std::vector<float>& v) {
  std::vector<GgufValue> e; e.reserve(v.size());
  for (float x : v) e.push_back(f32(x));
  return array(GgufType::Float32, std::move(e));
}
GgufValue GgufValue::i32s(const std::vector<std::int32_t>& v) {
  std::vector<GgufValue> e; e.reserve(v.size());
  for (auto x : v) e.push_back(i32(x));
  return array(GgufType::Int32, std::move(e));
}
bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::UInt8: case GgufType::Int8: case GgufType::UInt16: case GgufType::Int16: case GgufType::UInt32:
    case GgufType::Int32: case GgufType::UInt64: case GgufType::Int64: return true;
    default: return false;
  }
}
std::int64_t GgufValue::as_int() const {
  if (!is_integer()) throw std::runtime_error(std::string("expected an integer, found ") + gguf_type_name(type));
  if (type == GgufType::UInt8 || type == GgufType::UInt16 || type == GgufType::UInt32 || type == GgufType::UInt64) {
    if (u > std::uint64_t(std::numeric_limits<std::int64_t>::max())) throw std::runtime_error("integer " + std::to_string(u) + " too large");
    return std::int64_t(u);
  }
  return i;
}
double GgufValue::as_double() const {
  if (is_float()) return f;
  return double(as_int());
}
const std::string& GgufValue::as_string() const {
  if (type != GgufType::String) throw std::runtime_error(std::string("expected a string, found ") + gguf_type_name(type));
  return s;
}

std::uint64_t GgufTensor::element_count() const {
  std::uint64_t n = 1;
  for (auto d : ne) n *= d;
  return n;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return &v;
  return nullptr;
}
GgufValue* GgufFile::find(const std::string& key) {
  for (auto& [k, v] : metadata)
    if (k == key) return &v;
  return nullptr;
}
void GgufFile::set(const std::string& key, GgufValue v) {
  if (auto* p = find(key)) *p = std::move(v);
  else metadata.emplace_back(key, std::move(v));
}
const GgufTensor* GgufFile::tensor(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

// ---- reading ------------------------------------------------------------------------------
GgufFile parse_gguf(std::string_view bytes, const std::string& file, const GgufReadOptions& options) {
  ByteCursor cur(bytes, file);
  if (bytes.size() < 24)
    cur.fail("truncated: " + std::to_string(bytes.size()) + " bytes, a GGUF header needs 24");
  const std::string_view magic = cur.bytes(4, "magic");
  if (magic != "GGUF") {
    std::string shown;
    for (char c : magic) shown += (c >= 32 && c < 127) ? c : '?';
    cur.fail_at(0, "bad magic \"" + shown + "\" (expected \"GGUF\")");
  }
  GgufFile g;
  g.version = cur.read<std::uint32_t>("version");
  if (g.version != 2 && g.version != 3)
    cur.fail_at(4, "unsupported GGUF version " + std::to_string(g.version) + " (2 and 3 are supported)");
  const auto n_tensors = cur.read<std::uint64_t>("tensor count");
  const auto n_kv = cur.read<std::uint64_t>("metadata count");
  if (n_tensors > cur.remaining() / 24)  // a tensor info takes at least 8 + 4 + 8 + 4 + 8 bytes
    cur.fail_at(8, "tensor count " + std::to_string(n_tensors) + " cannot fit in a " + std::to_string(cur.size()) + "-byte file");
  if (n_kv > cur.remaining() / 13)  // key length + type + 1-byte value
    cur.fail_at(16, "metadata count " + std::to_string(n_kv) + " cannot fit in a " + std::to_string(cur.size()) + "-byte file");

  std::uint64_t budget = kMaxMetadataValues;
  std::unordered_set<std::string> seen;  // duplicate keys and tensor names in linear time (a scan was quadratic:
                                         // 200,000 keys took 45 s)
  for (std::uint64_t k = 0; k < n_kv; ++k) {
    const std::uint64_t at = cur.offset();
    std::string key = read_string(cur, "metadata key");
    if (key.empty()) cur.fail_at(at, "empty metadata key");
    if (!seen.insert(key).second) cur.fail_at(at, "duplicate metadata key " + q(key));
    const std::uint64_t type_at = cur.offset();
    const auto type = cur.read<std::uint32_t>("metadata type");
    if (!known_value_type(type)) cur.fail_at(type_at, "metadata " + q(key) + ": unknown value type " + std::to_string(type));
    GgufValue v = read_value(cur, GgufType(type), key, 0, budget);
    if (key == "general.alignment") {
      if (v.type != GgufType::UInt32) cur.fail_at(type_at, "general.alignment must be u32, found " + std::string(gguf_type_name(v.type)));
      if (v.u == 0 || (v.u & (v.u - 1)) != 0 || v.u > (1u << 20))
        cur.fail_at(type_at, "general.alignment " + std::to_string(v.u) + " is not a power of two in 1..2^20");
      g.alignment = std::uint32_t(v.u);
    }
    g.metadata.emplace_back(std::move(key), std::move(v));
  }

  struct Info {
    std::uint64_t offset, nbytes, at;
    std::uint32_t type;
  };
  std::vector<Info> infos;
  g.tensors.reserve(n_tensors);
  seen.clear();  // keys and tensor names are separate name spaces
  for (std::uint64_t k = 0; k < n_tensors; ++k) {
    const std::uint64_t at = cur.offset();
    GgufTensor t;
    t.name = read_string(cur, "tensor name");
    const std::string what = "tensor " + std::to_string(k) + " " + q(t.name);
    if (t.name.empty() || t.name.size() > 256) cur.fail_at(at, what + ": name length " + std::to_string(t.name.size()) + " not in 1..256");
    if (!seen.insert(t.name).second) cur.fail_at(at, "duplicate tensor name " + q(t.name));
    const auto n_dims = cur.read<std::uint32_t>("tensor n_dims");
    if (n_dims == 0 || n_dims > kMaxDims) cur.fail_at(at, what + ": " + std::to_string(n_dims) + " dimensions (1..4 allowed)");
    std::uint64_t count = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const auto ne = cur.read<std::uint64_t>("tensor dimension");
      if (ne == 0 || ne > std::uint64_t(std::numeric_limits<std::int64_t>::max()) || count > std::uint64_t(std::numeric_limits<std::int64_t>::max()) / ne)
        cur.fail_at(at, what + ": dimension " + std::to_string(d) + " = " + std::to_string(ne) + " is zero or overflows");
      count *= ne;
      t.ne.push_back(ne);
    }
    const std::uint64_t type_at = cur.offset();
    const auto type = cur.read<std::uint32_t>("tensor type");
    const auto info = ggml_type_info(type);
    if (!info) cur.fail_at(type_at, what + ": unsupported ggml type " + std::to_string(type) + " (" + ggml_type_name(type) + "); F32, F16, BF16 and Q8_0 are read");
    if (t.ne[0] % info->block_elems != 0)
      cur.fail_at(at, what + ": ne[0] = " + std::to_string(t.ne[0]) + " is not a multiple of the " + ggml_type_name(type) + " block size");
    if (count / info->block_elems > bytes.size() / info->block_bytes)
      cur.fail_at(at, what + ": " + std::to_string(count) + " elements cannot fit in a " + std::to_string(bytes.size()) + "-byte file");
    const std::uint64_t offset = cur.read<std::uint64_t>("tensor offset");
    t.stored_type = GgmlType(type);
    infos.push_back({offset, count / info->block_elems * info->block_bytes, at, type});
    g.tensors.push_back(std::move(t));
  }
  const std::uint64_t info_end = cur.offset();
  const std::uint64_t data_start = (info_end + g.alignment - 1) / g.alignment * g.alignment;
  if (data_start > bytes.size() && n_tensors > 0)
    cur.fail_at(info_end, "truncated: data section should start at " + std::to_string(data_start) + " past the end of the file");
  const std::uint64_t data_size = data_start <= bytes.size() ? bytes.size() - data_start : 0;

  std::vector<std::size_t> order(infos.size());
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
  for (std::size_t k = 0; k < infos.size(); ++k) {
    const auto& in = infos[k];
    const std::string what = "tensor " + q(g.tensors[k].name);
    if (in.offset % g.alignment != 0)
      cur.fail_at(in.at, what + ": data offset " + std::to_string(in.offset) + " is not a multiple of the alignment " + std::to_string(g.alignment));
    if (in.offset > data_size || in.nbytes > data_size - in.offset)
      cur.fail_at(in.at, what + ": data [" + std::to_string(in.offset) + ", +" + std::to_string(in.nbytes) +
                             ") runs past the end of the " + std::to_string(data_size) + "-byte data section (file truncated?)");
  }
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return infos[a].offset < infos[b].offset; });
  for (std::size_t k = 1; k < order.size(); ++k) {
    const auto& prev = infos[order[k - 1]];
    const auto& cur_info = infos[order[k]];
    if (prev.offset + prev.nbytes > cur_info.offset)
      cur.fail_at(cur_info.at, "tensor " + q(g.tensors[order[k]].name) + " overlaps tensor " + q(g.tensors[order[k - 1]].name));
  }
  for (std::size_t k = 0; k < infos.size(); ++k) {
    auto& t = g.tensors[k];
    const auto& in = infos[k];
    t.data.resize(t.element_count());
    convert_tensor(bytes.substr(data_start + in.offset, in.nbytes), t.stored_type, t.data);
    if (options.check_finite)
      for (std::size_t e = 0; e < t.data.size(); ++e)
        if (const auto problem = weight_value_problem(t.data[e]); !problem.empty())
          cur.fail_at(data_start + in.offset, "tensor " + q(t.name) + ": element " + std::to_string(e) + " is " + problem);
  }
  return g;
}

GgufFile read_gguf(const std::filesystem::path& path, const GgufReadOptions& options) {
  const std::string bytes = read_whole_file(path);
  return parse_gguf(bytes, path.string(), options);
}

// ---- writing ------------------------------------------------------------------------------
namespace {
template <class T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
void put_string(std::string& out, const std::string& s) {
  put<std::uint64_t>(out, s.size());
  out += s;
}
void put_value(std::string& out, const GgufValue& v) {
  switch (v.type) {
    case GgufType::UInt8: put<std::uint8_t>(out, std::uint8_t(v.u)); break;
    case GgufType::Int8: put<std::int8_t>(out, std::int8_t(v.i)); break;
    case GgufType::UInt16: put<std::uint16_t>(out, std::uint16_t(v.u)); break;
    case GgufType::Int16: put<std::int16_t>(out, std::int16_t(v.i)); break;
    case GgufType::UInt32: put<std::uint32_t>(out, std::uint32_t(v.u)); break;
    case GgufType::Int32: put<std::int32_t>(out, std::int32_t(v.i)); break;
    case GgufType::UInt64: put<std::uint64_t>(out, v.u); break;
    case GgufType::Int64: put<std::int64_t>(out, v.i); break;
    case GgufType::Float32: put<float>(out, float(v.f)); break;
    case GgufType::Float64: put<double>(out, v.f); break;
    case GgufType::Bool: put<std::uint8_t>(out, v.b ? 1 : 0); break;
    case GgufType::String: put_string(out, v.s); break;
    case GgufType::Array:
      put<std::uint32_t>(out, std::uint32_t(v.elem_type));
      put<std::uint64_t>(out, v.arr.size());
      for (const auto& e : v.arr) {
        if (e.type != v.elem_type) throw std::invalid_argument("GGUF write: array element type differs from the array's");
        put_value(out, e);
      }
      break;
  }
}
}  // namespace

std::string serialize_gguf(const GgufFile& g) {
  const std::uint32_t align = g.alignment;
  if (align == 0 || (align & (align - 1)) != 0) throw std::invalid_argument("GGUF write: alignment " + std::to_string(align) + " is not a power of two");
  std::string out;
  out += "GGUF";
  put<std::uint32_t>(out, 3);
  put<std::uint64_t>(out, g.tensors.size());
  const GgufValue* align_kv = g.find("general.alignment");
  if (align_kv && (align_kv->type != GgufType::UInt32 || align_kv->u != align))
    throw std::invalid_argument("GGUF write: metadata general.alignment disagrees with GgufFile::alignment");
  const bool add_align = !align_kv && align != kDefaultAlignment;
  put<std::uint64_t>(out, g.metadata.size() + (add_align ? 1 : 0));
  for (const auto& [k, v] : g.metadata) {
    put_string(out, k);
    put<std::uint32_t>(out, std::uint32_t(v.type));
    put_value(out, v);
  }
  if (add_align) {
    put_string(out, "general.alignment");
    put<std::uint32_t>(out, std::uint32_t(GgufType::UInt32));
    put<std::uint32_t>(out, align);
  }
  std::uint64_t offset = 0;
  std::vector<std::uint64_t> offsets;
  for (const auto& t : g.tensors) {
    if (t.stored_type != GgmlType::F32 && t.stored_type != GgmlType::F16)
      throw std::invalid_argument("GGUF write: tensor \"" + t.name + "\": only F32 and F16 are written");
    if (t.ne.empty() || t.ne.size() > kMaxDims || t.element_count() != t.data.size())
      throw std::invalid_argument("GGUF write: tensor \"" + t.name + "\": shape does not match its " + std::to_string(t.data.size()) + " values");
    put_string(out, t.name);
    put<std::uint32_t>(out, std::uint32_t(t.ne.size()));
    for (auto d : t.ne) put<std::uint64_t>(out, d);
    put<std::uint32_t>(out, std::uint32_t(t.stored_type));
    put<std::uint64_t>(out, offset);
    offsets.push_back(offset);
    const std::uint64_t nbytes = t.data.size() * (t.stored_type == GgmlType::F32 ? 4 : 2);
    offset = (offset + nbytes + align - 1) / align * align;
  }
  out.resize((out.size() + align - 1) / align * align, '\0');
  const std::size_t data_start = out.size();
  for (std::size_t k = 0; k < g.tensors.size(); ++k) {
    const auto& t = g.tensors[k];
    out.resize(data_start + offsets[k], '\0');
    if (t.stored_type == GgmlType::F32) {
      out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * 4);
    } else {
      for (float x : t.data) put<std::uint16_t>(out, float_to_half(x));
    }
  }
  if (!g.tensors.empty()) out.resize(data_start + offset, '\0');  // ggml pads the last tensor too
  return out;
}

void write_gguf(const std::filesystem::path& path, const GgufFile& g) { write_file_atomically(path, serialize_gguf(g)); }

// ---- Llama mapping ------------------------------------------------------------------------
namespace {

std::int64_t get_int(const GgufFile& g, const std::string& file, const std::string& key, std::optional<std::int64_t> fallback,
                     std::int64_t lo, std::int64_t hi) {
  const GgufValue* v = g.find(key);
  if (!v) {
    if (fallback) return *fallback;
    throw FormatError(file, "missing metadata key " + q(key));
  }
  std::int64_t x;
  try {
    x = v->as_int();
  } catch (const std::exception& e) {
    throw FormatError(file, "metadata " + q(key) + ": " + e.what());
  }
  if (x < lo || x > hi) throw FormatError(file, "metadata " + q(key) + " = " + std::to_string(x) + " outside " + std::to_string(lo) + ".." + std::to_string(hi));
  return x;
}
double get_float(const GgufFile& g, const std::string& file, const std::string& key, double fallback) {
  const GgufValue* v = g.find(key);
  if (!v) return fallback;
  double x;
  try {
    x = v->as_double();
  } catch (const std::exception& e) {
    throw FormatError(file, "metadata " + q(key) + ": " + e.what());
  }
  if (!std::isfinite(x) || x <= 0) throw FormatError(file, "metadata " + q(key) + " = " + std::to_string(x) + " is not a positive finite number");
  return x;
}

struct LlamaTensorSlot {
  std::string suffix;  // blk.N.<suffix>.weight
  std::vector<float> llm::ModelWeights::*field;
  int rows_kind, cols_kind;  // 0 dim, 1 hidden, 2 kv_dim, 3 none (1-d)
};

int dim_of(const llm::ModelConfig& c, int kind) {
  switch (kind) {
    case 0: return c.dim;
    case 1: return c.hidden_dim;
    case 2: return c.kv_dim();
    default: return 1;
  }
}

// Per-layer tensors in the llama2.c checkpoint's order (the order ggml's converters also use).
const std::vector<LlamaTensorSlot>& layer_slots() {
  using W = llm::ModelWeights;
  static const std::vector<LlamaTensorSlot> slots = {
      {"attn_norm", &W::rms_att, 0, 3},   {"attn_q", &W::wq, 0, 0},   {"attn_k", &W::wk, 2, 0},
      {"attn_v", &W::wv, 2, 0},           {"attn_output", &W::wo, 0, 0}, {"ffn_norm", &W::rms_ffn, 0, 3},
      {"ffn_gate", &W::w1, 1, 0},         {"ffn_down", &W::w2, 0, 1}, {"ffn_up", &W::w3, 1, 0}};
  return slots;
}

std::string shape_str(const std::vector<std::uint64_t>& ne) {
  std::string s = "[";
  for (std::size_t k = 0; k < ne.size(); ++k) s += (k ? ", " : "") + std::to_string(ne[k]);
  return s + "]";
}

// Expected ggml ne of a row-major (rows, cols) matrix, or (rows) vector.
std::vector<std::uint64_t> expected_ne(std::int64_t rows, std::int64_t cols_or_0) {
  if (cols_or_0 == 0) return {std::uint64_t(rows)};
  return {std::uint64_t(cols_or_0), std::uint64_t(rows)};
}

const GgufTensor& need_tensor(const GgufFile& g, const std::string& file, const std::string& name,
                              const std::vector<std::uint64_t>& ne) {
  const GgufTensor* t = g.tensor(name);
  if (!t) throw FormatError(file, "missing tensor " + q(name));
  if (t->ne != ne)
    throw FormatError(file, "tensor " + q(name) + " has shape " + shape_str(t->ne) + ", the configuration needs " + shape_str(ne));
  return *t;
}

}  // namespace

llm::ModelWeights llama_weights_from_gguf(const GgufFile& g, const std::string& file) {
  const GgufValue* arch = g.find("general.architecture");
  if (!arch || arch->type != GgufType::String) throw FormatError(file, "missing string metadata \"general.architecture\"");
  if (arch->s != "llama") throw FormatError(file, "architecture " + q(arch->s) + " is not supported (only \"llama\")");
  constexpr std::int64_t big = 1 << 24;
  llm::ModelWeights w;
  auto& c = w.config;
  c.dim = int(get_int(g, file, "llama.embedding_length", std::nullopt, 1, 1 << 16));
  c.hidden_dim = int(get_int(g, file, "llama.feed_forward_length", std::nullopt, 1, 1 << 18));
  c.n_layers = int(get_int(g, file, "llama.block_count", std::nullopt, 1, 4096));
  c.n_heads = int(get_int(g, file, "llama.attention.head_count", std::nullopt, 1, c.dim));
  c.n_kv_heads = int(get_int(g, file, "llama.attention.head_count_kv", c.n_heads, 1, c.n_heads));
  c.seq_len = int(get_int(g, file, "llama.context_length", std::nullopt, 1, big));
  c.rope_theta = float(get_float(g, file, "llama.rope.freq_base", 10000.0));
  c.norm_eps = float(get_float(g, file, "llama.attention.layer_norm_rms_epsilon", 1e-5));
  if (c.dim % c.n_heads != 0) throw FormatError(file, "embedding_length " + std::to_string(c.dim) + " is not a multiple of head_count " + std::to_string(c.n_heads));
  if (c.n_heads % c.n_kv_heads != 0) throw FormatError(file, "head_count " + std::to_string(c.n_heads) + " is not a multiple of head_count_kv " + std::to_string(c.n_kv_heads));
  if (c.head_dim() % 2 != 0) throw FormatError(file, "head dimension " + std::to_string(c.head_dim()) + " is odd (RoPE rotates pairs)");
  if (g.find("llama.rope.dimension_count")) {
    const auto rd = get_int(g, file, "llama.rope.dimension_count", std::nullopt, 1, c.dim);
    if (rd != c.head_dim()) throw FormatError(file, "rope.dimension_count " + std::to_string(rd) + " differs from the head dimension " + std::to_string(c.head_dim()) + " (partial RoPE is not supported)");
  }
  const GgufTensor* emb = g.tensor("token_embd.weight");
  if (!emb) throw FormatError(file, "missing tensor \"token_embd.weight\"");
  if (emb->ne.size() != 2 || emb->ne[0] != std::uint64_t(c.dim) || emb->ne[1] > std::uint64_t(big))
    throw FormatError(file, "tensor \"token_embd.weight\" has shape " + shape_str(emb->ne) + ", expected [" + std::to_string(c.dim) + ", vocab]");
  c.vocab_size = int(emb->ne[1]);
  if (const GgufValue* toks = g.find("tokenizer.ggml.tokens"); toks && toks->arr.size() != std::size_t(c.vocab_size))
    throw FormatError(file, "tokenizer.ggml.tokens has " + std::to_string(toks->arr.size()) + " tokens, token_embd.weight has " + std::to_string(c.vocab_size) + " rows");
  if (g.find("llama.vocab_size") && get_int(g, file, "llama.vocab_size", std::nullopt, 1, big) != c.vocab_size)
    throw FormatError(file, "llama.vocab_size disagrees with token_embd.weight's " + std::to_string(c.vocab_size) + " rows");
  w.token_embedding = emb->data;
  for (const auto& slot : layer_slots()) {
    auto& dst = w.*(slot.field);
    const std::int64_t rows = dim_of(c, slot.rows_kind);
    const std::int64_t cols = slot.cols_kind == 3 ? 0 : dim_of(c, slot.cols_kind);
    for (int l = 0; l < c.n_layers; ++l) {
      const auto& t = need_tensor(g, file, "blk." + std::to_string(l) + "." + slot.suffix + ".weight", expected_ne(rows, cols));
      // sized only when the file holds the last layer's tensor too (a layer count in the metadata
      // alone reserves nothing)
      if (l == 0 && g.tensor("blk." + std::to_string(c.n_layers - 1) + "." + slot.suffix + ".weight"))
        dst.reserve(std::size_t(c.n_layers) * t.data.size());
      dst.insert(dst.end(), t.data.begin(), t.data.end());
    }
  }
  w.rms_final = need_tensor(g, file, "output_norm.weight", {std::uint64_t(c.dim)}).data;
  if (g.tensor("output.weight")) {
    c.shared_classifier = false;
    w.classifier = need_tensor(g, file, "output.weight", expected_ne(c.vocab_size, c.dim)).data;
  } else {
    c.shared_classifier = true;
  }
  return w;
}

llm::Tokenizer tokenizer_from_gguf(const GgufFile& g, const std::string& file) {
  const GgufValue* model = g.find("tokenizer.ggml.model");
  if (model && (model->type != GgufType::String || model->s != "llama"))
    throw FormatError(file, "tokenizer.ggml.model is not \"llama\" (only the SentencePiece BPE tokenizer is supported)");
  const GgufValue* toks = g.find("tokenizer.ggml.tokens");
  if (!toks || toks->type != GgufType::Array || toks->elem_type != GgufType::String)
    throw FormatError(file, "missing string array \"tokenizer.ggml.tokens\"");
  const GgufValue* scores = g.find("tokenizer.ggml.scores");
  if (!scores || scores->type != GgufType::Array || scores->elem_type != GgufType::Float32)
    throw FormatError(file, "missing f32 array \"tokenizer.ggml.scores\"");
  std::vector<std::string> pieces;
  pieces.reserve(toks->arr.size());
  for (const auto& t : toks->arr) pieces.push_back(t.s);
  // llama.cpp's converters keep SentencePiece's word mark U+2581 ("\u2581the") where llama2.c's
  // export writes a space (" the"), which run.c's encoder looks up: a vocabulary with the mark and
  // no space is mapped as llama2.c's export maps it (it could encode nothing: no " " piece)
  const std::string mark = "\xE2\x96\x81";
  const bool has_space = std::any_of(pieces.begin(), pieces.end(), [](const std::string& p) { return p.find(' ') != std::string::npos; });
  const bool has_mark = std::any_of(pieces.begin(), pieces.end(), [&](const std::string& p) { return p.find(mark) != std::string::npos; });
  if (has_mark && !has_space)
    for (auto& p : pieces) {
      std::string spaced;
      for (std::size_t i = 0; i < p.size();) {
        const bool at_mark = p.compare(i, mark.size(), mark) == 0;
        spaced += at_mark ? ' ' : p[i];
        i += at_mark ? mark.size() : 1;
      }
      p = std::move(spaced);
    }
  std::vector<float> sc;
  sc.reserve(scores->arr.size());
  for (const auto& s : scores->arr) sc.push_back(float(s.f));
  std::vector<llm::TokenType> types;
  if (const GgufValue* tt = g.find("tokenizer.ggml.token_type")) {
    if (tt->type != GgufType::Array || !(tt->elem_type == GgufType::Int32 || tt->elem_type == GgufType::UInt32))
      throw FormatError(file, "tokenizer.ggml.token_type is not an integer array");
    for (const auto& e : tt->arr) {
      const auto v = e.as_int();
      if (v < 1 || v > 6) throw FormatError(file, "tokenizer.ggml.token_type value " + std::to_string(v) + " is not in 1..6");
      types.push_back(llm::TokenType(v));
    }
  }
  const std::int64_t n = std::int64_t(pieces.size());
  const int bos = int(get_int(g, file, "tokenizer.ggml.bos_token_id", 1, 0, n - 1));
  const int eos = int(get_int(g, file, "tokenizer.ggml.eos_token_id", 2, 0, n - 1));
  const int unk = int(get_int(g, file, "tokenizer.ggml.unknown_token_id", 0, 0, n - 1));
  return llm::Tokenizer::from_pieces(std::move(pieces), std::move(sc), std::move(types), file + " (tokenizer.ggml)", bos, eos, unk);
}

GgufFile llama_gguf_from_weights(const llm::ModelWeights& w, const llm::Tokenizer* tok, const std::string& name,
                                 GgmlType tensor_type) {
  const auto& c = w.config;
  if (c.dim <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.n_layers <= 0 || c.hidden_dim <= 0 || c.vocab_size <= 0 ||
      c.seq_len <= 0 || c.dim % c.n_heads != 0 || c.n_heads % c.n_kv_heads != 0)
    throw std::invalid_argument("llama_gguf_from_weights: invalid model configuration");
  if (tok && tok->vocab_size() != c.vocab_size)
    throw std::invalid_argument("llama_gguf_from_weights: tokenizer has " + std::to_string(tok->vocab_size()) +
                                " tokens, the model " + std::to_string(c.vocab_size));
  GgufFile g;
  g.set("general.architecture", GgufValue::str("llama"));
  g.set("general.name", GgufValue::str(name));
  g.set("llama.block_count", GgufValue::u32(std::uint32_t(c.n_layers)));
  g.set("llama.embedding_length", GgufValue::u32(std::uint32_t(c.dim)));
  g.set("llama.feed_forward_length", GgufValue::u32(std::uint32_t(c.hidden_dim)));
  g.set("llama.attention.head_count", GgufValue::u32(std::uint32_t(c.n_heads)));
  g.set("llama.attention.head_count_kv", GgufValue::u32(std::uint32_t(c.n_kv_heads)));
  g.set("llama.context_length", GgufValue::u32(std::uint32_t(c.seq_len)));
  g.set("llama.attention.layer_norm_rms_epsilon", GgufValue::f32(c.norm_eps));
  g.set("llama.rope.dimension_count", GgufValue::u32(std::uint32_t(c.head_dim())));
  if (c.rope_theta != 10000.0f) g.set("llama.rope.freq_base", GgufValue::f32(c.rope_theta));  // llama.cpp's default
  if (tok) {
    g.set("tokenizer.ggml.model", GgufValue::str("llama"));
    g.set("tokenizer.ggml.tokens", GgufValue::strings(tok->pieces()));
    g.set("tokenizer.ggml.scores", GgufValue::f32s(tok->scores()));
    std::vector<std::int32_t> types;
    for (auto t : tok->types()) types.push_back(std::int32_t(t));
    g.set("tokenizer.ggml.token_type", GgufValue::i32s(types));
    g.set("tokenizer.ggml.bos_token_id", GgufValue::u32(std::uint32_t(tok->bos_id())));
    g.set("tokenizer.ggml.eos_token_id", GgufValue::u32(std::uint32_t(tok->eos_id())));
    g.set("tokenizer.ggml.unknown_token_id", GgufValue::u32(std::uint32_t(tok->unk_id())));
  }
  auto add = [&](const std::string& tname, const std::vector<float>& src, std::size_t begin, std::int64_t rows, std::int64_t cols) {
    GgufTensor t;
    t.name = tname;
    t.ne = expected_ne(rows, cols);
    t.stored_type = tensor_type;
    const std::size_t n = std::size_t(rows) * std::size_t(cols ? cols : 1);
    if (begin + n > src.size()) throw std::invalid_argument("llama_gguf_from_weights: weights for " + tname + " are too short");
    t.data.assign(src.begin() + std::ptrdiff_t(begin), src.begin() + std::ptrdiff_t(begin + n));
    g.tensors.push_back(std::move(t));
  };
  add("token_embd.weight", w.token_embedding, 0, c.vocab_size, c.dim);
  for (const auto& slot : layer_slots()) {
    const std::int64_t rows = dim_of(c, slot.rows_kind);
    const std::int64_t cols = slot.cols_kind == 3 ? 0 : dim_of(c, slot.cols_kind);
    const std::size_t per = std::size_t(rows) * std::size_t(cols ? cols : 1);
    const auto& src = w.*(slot.field);
    if (src.size() != per * std::size_t(c.n_layers))
      throw std::invalid_argument("llama_gguf_from_weights: " + slot.suffix + " has " + std::to_string(src.size()) +
                                  " values, the configuration needs " + std::to_string(per * std::size_t(c.n_layers)));
    for (int l = 0; l < c.n_layers; ++l) add("blk." + std::to_string(l) + "." + slot.suffix + ".weight", src, per * std::size_t(l), rows, cols);
  }
  add("output_norm.weight", w.rms_final, 0, c.dim, 0);
  if (!c.shared_classifier) add("output.weight", w.classifier, 0, c.vocab_size, c.dim);
  return g;
}

llm::ModelWeights load_gguf_model(const std::filesystem::path& path) {
  return llama_weights_from_gguf(read_gguf(path), path.string());
}
llm::Tokenizer load_gguf_tokenizer(const std::filesystem::path& path) {
  return tokenizer_from_gguf(read_gguf(path), path.string());
}
void save_gguf_model(const std::filesystem::path& path, const llm::ModelWeights& w, const llm::Tokenizer* tokenizer,
                     GgmlType tensor_type) {
  write_gguf(path, llama_gguf_from_weights(w, tokenizer, path.stem().string(), tensor_type));
}

}  // namespace hyplora::formats
