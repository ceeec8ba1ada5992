#pragma once
// The in-memory form of a Llama-architecture model: its shape and its float32 weights.
// Every loader (llama2.c checkpoint, GGUF, random init) produces a ModelWeights; the model,
// the converters and the writers consume one. Layouts are row-major, exactly as llama2.c stores
// them: a linear layer W has shape (out, in) and computes y = W x.
#include <cstdint>
#include <string>
#include <vector>

namespace hyplora::llm {

struct ModelConfig {
  int dim = 0;         // transformer width
  int hidden_dim = 0;  // SwiGLU hidden width
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;  // grouped-query attention: n_heads % n_kv_heads == 0
  int vocab_size = 0;
  int seq_len = 0;     // maximum context
  bool shared_classifier = true;  // classifier tied to the token embedding
  float rope_theta = 10000.0f;
  float norm_eps = 1e-5f;         // RMSNorm epsilon (llama2.c uses 1e-5)
  int head_dim() const { return dim / n_heads; }
  int kv_dim() const { return head_dim() * n_kv_heads; }
};

/// All weights, one flat vector per kind, layers stacked along the first axis (as llama2.c).
struct ModelWeights {
  ModelConfig config;
  std::vector<float> token_embedding;  // (vocab, dim)
  std::vector<float> rms_att;          // (layers, dim)
  std::vector<float> wq;               // (layers, dim, dim)           [out = n_heads*head_dim]
  std::vector<float> wk;               // (layers, kv_dim, dim)
  std::vector<float> wv;               // (layers, kv_dim, dim)
  std::vector<float> wo;               // (layers, dim, dim)
  std::vector<float> rms_ffn;          // (layers, dim)
  std::vector<float> w1;               // (layers, hidden, dim)   gate
  std::vector<float> w2;               // (layers, dim, hidden)   down
  std::vector<float> w3;               // (layers, hidden, dim)   up
  std::vector<float> rms_final;        // (dim)
  std::vector<float> classifier;       // (vocab, dim); empty when shared_classifier
  /// The classifier matrix actually used (the embedding when tied).
  const std::vector<float>& output_weights() const { return config.shared_classifier ? token_embedding : classifier; }
};

}  // namespace hyplora::llm
