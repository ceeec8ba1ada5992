#pragma once
// safetensors read and write: u64 little-endian header length N, N bytes of JSON
//   {"__metadata__": {"k": "v", ...}, "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...}
// then the data section; offsets are relative to its start, tensors are row-major.
// Read: F32, F16, BF16, F64 (converted to float). Write: F32. The adapter file format (PEFT names,
// e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight).
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace hyplora::formats {

struct SafeTensor {
  std::string name;
  std::string dtype = "F32";           // as found in the file; written as F32
  std::vector<std::int64_t> shape;     // row-major, outermost first
  std::vector<float> data;
  std::uint64_t element_count() const;
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;  // "__metadata__"
  std::vector<SafeTensor> tensors;              // read: in data-offset order
  const SafeTensor* find(const std::string& name) const;
  /// The tensor named `name` with exactly `shape`; FormatError otherwise (file named by `file`).
  const SafeTensor& require(const std::string& name, const std::vector<std::int64_t>& shape, const std::string& file) const;
};

struct SafetensorsReadOptions {
  bool check_finite = true;  // NaN / Inf is an error naming the tensor and the element
};

SafetensorsFile read_safetensors(const std::filesystem::path& path, const SafetensorsReadOptions& options = {});
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& file_name,
                                  const SafetensorsReadOptions& options = {});
/// F32, header padded with spaces to a multiple of 8, tensors in the given order; atomic.
void write_safetensors(const std::filesystem::path& path, const SafetensorsFile& st);
std::string serialize_safetensors(const SafetensorsFile& st);

}  // namespace hyplora::formats
