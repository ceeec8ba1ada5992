#pragma once
// llama2.c checkpoints (the legacy "version 0" format run.c reads):
//   int32 header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (negative: separate
//   classifier), seq_len; then float32: token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2,
//   w3, rms_final, freq_cis_real, freq_cis_imag (seq_len * head_size/2 each, unused by run.c),
//   and the classifier (vocab, dim) when it is not shared. Little-endian.
#include <filesystem>

#include "model/weights.hpp"

namespace hyplora::llm {

/// Reads and validates a checkpoint: the header must describe a sane shape, the file size must
/// match it exactly, and no weight may be NaN or infinite. Errors are formats::FormatError naming
/// the file, the byte offset and the problem.
ModelWeights read_llama2c(const std::filesystem::path& path);

/// Writes w as a llama2.c checkpoint atomically (formats::AtomicFileWriter). The freq_cis
/// tables are written with the values llama2.c's exporter writes (cos / sin of pos * theta^(-2i/hs)).
void write_llama2c(const ModelWeights& w, const std::filesystem::path& path);

}  // namespace hyplora::llm
