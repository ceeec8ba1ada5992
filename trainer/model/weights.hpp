#pragma once
// The in-memory form of a Llama-architecture model: its shape and its weights.
// Every loader (llama2.c checkpoint, GGUF, random init) produces a ModelWeights (float32); the
// model, the converters and the writers consume one. Layouts are row-major, exactly as llama2.c
// stores them: a linear layer W has shape (out, in) and computes y = W x.
// BasicModelWeights<T> is the same struct over another scalar (double for gradient checks, and
// as the shape of full fine-tuning gradients); ModelWeights = BasicModelWeights<float>.
#include <cstddef>
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
template <class T>
struct BasicModelWeights {
  using value_type = T;
  ModelConfig config;
  std::vector<T> token_embedding;  // (vocab, dim)
  std::vector<T> rms_att;          // (layers, dim)
  std::vector<T> wq;               // (layers, dim, dim)           [out = n_heads*head_dim]
  std::vector<T> wk;               // (layers, kv_dim, dim)
  std::vector<T> wv;               // (layers, kv_dim, dim)
  std::vector<T> wo;               // (layers, dim, dim)
  std::vector<T> rms_ffn;          // (layers, dim)
  std::vector<T> w1;               // (layers, hidden, dim)   gate
  std::vector<T> w2;               // (layers, dim, hidden)   down
  std::vector<T> w3;               // (layers, hidden, dim)   up
  std::vector<T> rms_final;        // (dim)
  std::vector<T> classifier;       // (vocab, dim); empty when shared_classifier
  /// The classifier matrix actually used (the embedding when tied).
  const std::vector<T>& output_weights() const { return config.shared_classifier ? token_embedding : classifier; }

  /// Visit every tensor as (name, vector&) in llama2.c file order (classifier last, only when separate).
  template <class F>
  void for_each_tensor(F&& f) {
    f("token_embedding", token_embedding); f("rms_att", rms_att); f("wq", wq); f("wk", wk); f("wv", wv);
    f("wo", wo); f("rms_ffn", rms_ffn); f("w1", w1); f("w2", w2); f("w3", w3); f("rms_final", rms_final);
    if (!config.shared_classifier) f("classifier", classifier);
  }
  template <class F>
  void for_each_tensor(F&& f) const {
    const_cast<BasicModelWeights*>(this)->for_each_tensor(
        [&](const char* name, std::vector<T>& v) { f(name, static_cast<const std::vector<T>&>(v)); });
  }

  /// Size every tensor for `cfg` (zero-filled).
  void allocate(const ModelConfig& cfg) {
    config = cfg;
    const std::size_t d = cfg.dim, h = cfg.hidden_dim, L = cfg.n_layers, V = cfg.vocab_size, kv = cfg.kv_dim();
    token_embedding.assign(V * d, T(0));
    rms_att.assign(L * d, T(0));
    wq.assign(L * d * d, T(0));
    wk.assign(L * kv * d, T(0));
    wv.assign(L * kv * d, T(0));
    wo.assign(L * d * d, T(0));
    rms_ffn.assign(L * d, T(0));
    w1.assign(L * h * d, T(0));
    w2.assign(L * d * h, T(0));
    w3.assign(L * h * d, T(0));
    rms_final.assign(d, T(0));
    classifier.assign(cfg.shared_classifier ? 0 : V * d, T(0));
  }

  /// Number of scalars over all tensors.
  std::size_t parameter_count() const {
    std::size_t n = 0;
    for_each_tensor([&](const char*, const std::vector<T>& v) { n += v.size(); });
    return n;
  }

  /// The same weights converted to another scalar type.
  template <class U>
  BasicModelWeights<U> cast() const {
    BasicModelWeights<U> out;
    out.config = config;
    auto conv = [](const std::vector<T>& v) { return std::vector<U>(v.begin(), v.end()); };
    out.token_embedding = conv(token_embedding); out.rms_att = conv(rms_att); out.wq = conv(wq);
    out.wk = conv(wk); out.wv = conv(wv); out.wo = conv(wo); out.rms_ffn = conv(rms_ffn);
    out.w1 = conv(w1); out.w2 = conv(w2); out.w3 = conv(w3); out.rms_final = conv(rms_final);
    out.classifier = conv(classifier);
    return out;
  }
};

using ModelWeights = BasicModelWeights<float>;

}  // namespace hyplora::llm
