#pragma once
// Adapter files: safetensors with PEFT-style tensor names, written atomically.
//
//   base_model.model.model.layers.<l>.self_attn.q_proj.lora_A.weight   (r x d_in)
//   base_model.model.model.layers.<l>.self_attn.q_proj.lora_B.weight   (d_out x r)
//   base_model.model.model.layers.<l>.mlp.up_proj.lora_A.weight        ...
//   ...<module>.hyplora_K                 (1)  curvature scale K (curvature -1/K), every hyperbolic kind
//   ...<module>.hyplora_curvature_raw     (1)  raw k with K = softplus(k) + K_min, when K is learned
//   ...<module>.hyplora_norm_scale        (1)  input norm scale s, when it is learned
// Metadata (__metadata__, strings): "format" = "hyplora-adapter/1", "adapter" (the AdapterSpec as
// JSON), "model" (dim, hidden_dim, n_layers, n_kv_heads, vocab_size), "peft_config" (PEFT-style
// r / lora_alpha / lora_dropout / target_modules), and whatever the caller adds ("settings").
#include <filesystem>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "train/adapter_set.hpp"

namespace hyplora::train {

/// PEFT prefix of a module: "base_model.model.model.layers.<l>.self_attn.q_proj".
std::string peft_module_prefix(int layer, llm::Module module);

/// Writes every unit's parameters atomically. Refuses (std::runtime_error, nothing written) when a
/// parameter is NaN or infinite, so a bad step can never overwrite a good adapter file.
void save_adapter(const std::filesystem::path& path, const AdapterSet& set,
                  const std::map<std::string, std::string>& extra_metadata = {});

/// The AdapterSpec stored in a file (and, when present, the extra metadata).
AdapterSpec read_adapter_spec(const std::filesystem::path& path, std::map<std::string, std::string>* metadata = nullptr);

/// The prompt template stored in an adapter file's "settings" metadata (its training settings), ""
/// when the file has no settings or they name no template (another tool's or an older build's file).
/// Settings that are not a JSON object, or a 'prompt-template' that is not a known template name,
/// are a FormatError naming the file and the field.
std::string stored_prompt_template(const std::map<std::string, std::string>& metadata, const std::string& file);

/// Metadata entry: the longest response of the adapter's training examples in tokens (as trained,
/// after --cutoff), written by `train` since 2026-11-29; `eval`'s "auto" new-token limit is at least it.
inline constexpr const char* kLongestResponseKey = "longest_response_tokens";
/// kLongestResponseKey of a file's metadata, or -1 when absent (another tool's or an older build's
/// file); a value that is not an integer in [0, 1000000] is a FormatError naming the file.
int stored_longest_response(const std::map<std::string, std::string>& metadata, const std::string& file);

/// Builds the adapter set a file describes for a model with config `model` and loads its values.
/// Errors (std::runtime_error / FormatError) name the file and the problem: another model's shape,
/// a missing or mis-shaped tensor, a non-finite value, an unknown format.
AdapterSet load_adapter(const std::filesystem::path& path, const llm::ModelConfig& model);

/// Loads values into an existing set of the same spec (shapes checked).
void load_adapter_values(const std::filesystem::path& path, AdapterSet& set);

}  // namespace hyplora::train
