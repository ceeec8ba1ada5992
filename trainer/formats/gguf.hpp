#pragma once
// GGUF (versions 2 and 3) read and write, and the Llama-architecture mapping to ModelWeights.
//
// Layout (little-endian): "GGUF", u32 version, u64 tensor_count, u64 kv_count, kv_count metadata
// entries (gguf string key, u32 type, value), tensor_count tensor infos (string name, u32 n_dims,
// u64 ne[n_dims], u32 ggml type, u64 offset relative to the data section), padding to
// general.alignment (default 32), then the data section. ne[0] is the innermost (fastest) dim:
// a row-major matrix (rows, cols) has ne = {cols, rows}.
// Tensor data types read: F32, F16, BF16, Q8_0 (all converted to float); written: F32, F16.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/weights.hpp"
#include "tokenizer/tokenizer.hpp"

namespace hyplora::formats {

enum class GgufType : std::uint32_t {
  UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
  String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12
};
const char* gguf_type_name(GgufType t);

/// ggml tensor types this code knows the block layout of.
enum class GgmlType : std::uint32_t { F32 = 0, F16 = 1, Q8_0 = 8, BF16 = 30 };

/// One metadata value: a scalar (integers in i/u, floats in f, bool in b, text in s) or an array
/// (elements in arr, all of elem_type).
struct GgufValue {
  GgufType type = GgufType::UInt32;
  GgufType elem_type = GgufType::UInt32;  // arrays only
  std::uint64_t u = 0;
  std::int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string s;
  std::vector<GgufValue> arr;

  static GgufValue u32(std::uint32_t v);
  static GgufValue i32(std::int32_t v);
  static GgufValue u64(std::uint64_t v);
  static GgufValue f32(float v);
  static GgufValue boolean(bool v);
  static GgufValue str(std::string v);
  static GgufValue array(GgufType elem, std::vector<GgufValue> elems);
  static GgufValue strings(const std::vector<std::string>& v);
  static GgufValue f32s(const std::vector<float>& v);
  static GgufValue i32s(const std::vector<std::int32_t>& v);

  bool is_integer() const;
  bool is_float() const { return type == GgufType::Float32 || type == GgufType::Float64; }
  /// Integer value (any integer type; throws std::runtime_error naming the type otherwise).
  std::int64_t as_int() const;
  /// Float or integer value as double.
  double as_double() const;
  const std::string& as_string() const;
};

struct GgufTensor {
  std::string name;
  std::vector<std::uint64_t> ne;  // ggml order: ne[0] innermost
  GgmlType stored_type = GgmlType::F32;  // as found in the file (read) / to write (F32 or F16)
  std::vector<float> data;         // ne[0]*ne[1]*... floats, ne[0] fastest
  std::uint64_t element_count() const;
};

struct GgufFile {
  std::uint32_t version = 3;
  std::uint32_t alignment = 32;
  std::vector<std::pair<std::string, GgufValue>> metadata;  // file order
  std::vector<GgufTensor> tensors;                           // file order

  const GgufValue* find(const std::string& key) const;
  GgufValue* find(const std::string& key);
  void set(const std::string& key, GgufValue v);  // replaces or appends
  const GgufTensor* tensor(const std::string& name) const;
};

struct GgufReadOptions {
  /// NaN, Inf or a magnitude beyond formats::max_weight_magnitude() in a tensor is an error naming the
  /// tensor and the index
  bool check_finite = true;
};

/// Reads and validates; FormatError (file, offset, problem) on any inconsistency.
GgufFile read_gguf(const std::filesystem::path& path, const GgufReadOptions& options = {});
GgufFile parse_gguf(std::string_view bytes, const std::string& file_name, const GgufReadOptions& options = {});
/// Serialises (version 3) atomically; tensors as their stored_type (F32 or F16).
void write_gguf(const std::filesystem::path& path, const GgufFile& gguf);
std::string serialize_gguf(const GgufFile& gguf);

// ---- Llama architecture ----------------------------------------------------------------------
// Keys: general.architecture = "llama", llama.{embedding_length, feed_forward_length, block_count,
// attention.head_count, attention.head_count_kv, context_length, rope.freq_base,
// attention.layer_norm_rms_epsilon, rope.dimension_count}. Tensors: token_embd.weight,
// blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_down, ffn_up}.weight,
// output_norm.weight, output.weight (absent = classifier tied to the embedding). q/k are kept in
// the llama2.c (Meta, interleaved-pair RoPE) layout, as llama.cpp expects for "llama".

/// ModelWeights from a parsed GGUF; FormatError (naming `gguf_name`) on missing keys or tensors,
/// shapes that disagree with the configuration, or an architecture other than llama.
llm::ModelWeights llama_weights_from_gguf(const GgufFile& gguf, const std::string& gguf_name);
/// Tokenizer from tokenizer.ggml.{tokens, scores, token_type, bos/eos/unknown_token_id}.
llm::Tokenizer tokenizer_from_gguf(const GgufFile& gguf, const std::string& gguf_name);
/// GGUF of a model (and its tokenizer when given); tensor_type F32 or F16.
GgufFile llama_gguf_from_weights(const llm::ModelWeights& w, const llm::Tokenizer* tokenizer,
                                 const std::string& name = "hyplora", GgmlType tensor_type = GgmlType::F32);

/// Convenience: read a file and map it.
llm::ModelWeights load_gguf_model(const std::filesystem::path& path);
llm::Tokenizer load_gguf_tokenizer(const std::filesystem::path& path);
void save_gguf_model(const std::filesystem::path& path, const llm::ModelWeights& w, const llm::Tokenizer* tokenizer,
                     GgmlType tensor_type = GgmlType::F32);

}  // namespace hyplora::formats
