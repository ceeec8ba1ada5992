#pragma once
// The Llama architecture exactly as llama2.c run.c computes it, over a scalar type Real
// (float for real use, double for gradient checks):
//   x = embedding[token]
//   per layer:  h = x + Wo attn(RoPE(Wq n1(x)), RoPE(Wk n1(x)), Wv n1(x))       (causal, grouped-query)
//               x = h + W2 (silu(W1 n2(h)) * W3 n2(h))                           (SwiGLU)
//   logits = Wcls rmsnorm(x)        with rmsnorm(x) = w * x / sqrt(mean(x^2) + eps)
// RoPE rotates adjacent pairs (2i, 2i+1) of every head by pos * theta^(-(2i)/head_size).
//
// Two paths share the weights:
//  1. forward(token, pos): one token with a KV cache (generation), like run.c's forward().
//  2. batched B x T: forward_logits (no grad, evaluation), evaluate_loss, and forward_backward
//     (masked mean cross-entropy, gradients to the attached adapter hooks, to the embedded inputs
//     and optionally to every weight). Activations live in buffers sized once per (B, T); a step
//     with the same (B, T) allocates nothing. Every linear layer over the N = B*T rows is one GEMM.
// Adapters attach per (layer, Module) and add their branch to the linear layer's output.
#include <cstddef>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "model/adapter_hook.hpp"
#include "model/weights.hpp"

namespace hyplora::llm {

template <class Real>
struct BatchedPasses;  // implementation detail of llama.cpp

/// Query rows per causal attention block of the batched (training) passes: a block of rows
/// t0..t1-1 computes its scores and values against keys 0..t1-1 only, so a sequence of T tokens
/// costs sum over blocks of (t1 - t0) t1 products per head dimension, not T^2 (62.5% of it at T = 256).
inline constexpr int kAttentionBlock = 64;

/// Thrown by BasicLlamaModel::reserve before it allocates, when the batched buffers of a (B, T)
/// would not fit the memory available (MemAvailable of /proc/meminfo; with Linux's overcommit a
/// larger allocation is often not refused but killed later, with no message). A std::bad_alloc, so
/// that out-of-memory handling applies; what() gives the sizes.
class ActivationMemoryError : public std::bad_alloc {
 public:
  explicit ActivationMemoryError(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

/// Bytes the system can still give this process: MemAvailable of /proc/meminfo (what the process
/// already holds is not in it), 0 where that is not known.
std::size_t available_memory_bytes();

/// Throws std::invalid_argument naming the problem when cfg is not a usable Llama shape.
void validate_config(const ModelConfig& cfg, const char* what = "model config");
/// Throws std::invalid_argument when the tensors of w do not have the sizes its config implies.
template <class Real>
void validate_weight_shapes(const BasicModelWeights<Real>& w, const char* what = "model weights");

template <class Real>
class BasicLlamaModel {
 public:
  using Weights = BasicModelWeights<Real>;
  using Hook = BasicLinearAdapterHook<Real>;

  explicit BasicLlamaModel(Weights weights);
  ~BasicLlamaModel();
  BasicLlamaModel(BasicLlamaModel&&) noexcept;
  BasicLlamaModel& operator=(BasicLlamaModel&&) noexcept;

  const ModelConfig& config() const { return w_.config; }
  const Weights& weights() const { return w_; }
  /// For full fine-tuning: the optimiser updates these in place.
  Weights& mutable_weights() { return w_; }

  /// Attach (or, with nullptr, detach) the adapter of module m in layer `layer`. The model does not own it.
  void attach(int layer, Module m, Hook* hook);
  Hook* hook(int layer, Module m) const;
  void detach_all();

  // ---- path 1: one token at a time with a KV cache --------------------------------------
  /// Logits (vocab_size) of the next token after `token` at position pos (0 <= pos < seq_len);
  /// positions 0..pos-1 must have been fed before. The pointer is valid until the next call.
  const Real* forward(int token, int pos);

  // ---- path 2: batched over B sequences of T tokens (rows b*T + t) ----------------------
  /// Size the activation buffers for (B, T); called implicitly by the functions below. Throws
  /// ActivationMemoryError, before allocating, where they would not fit the available memory.
  void reserve(int B, int T);
  /// Bytes of the activation buffers reserve(B, T) allocates (with the current OpenMP thread count).
  static std::size_t activation_bytes(const ModelConfig& c, int B, int T);
  /// logits (B*T, vocab) of every position, no gradient.
  void forward_logits(const int* tokens, int B, int T, Real* logits);
  /// Masked mean cross-entropy, forward only:  sum_i m_i CE(logits_i, target_i) / sum_i m_i.
  /// mask may be null (all ones). Rows with mask 0 may have any target.
  Real evaluate_loss(const int* tokens, const int* targets, const Real* mask, int B, int T);
  /// The same loss, then backward: every attached hook receives its backward call (parameter
  /// gradients accumulate in the hook), input_gradient() holds dLoss/d(embedded input), and
  /// when grads is non-null every weight's gradient is ACCUMULATED into it (same shapes as the
  /// weights; allocate with grads->allocate(config()) and zero between steps).
  /// loss_denominator > 0 replaces sum_i m_i as the divisor of loss and gradient: with the mask sum
  /// of a whole step of G micro-batches, the G calls accumulate exactly the gradient of one batch
  /// of all of them (sum over the step's tokens / their count), and their returns add up to its loss.
  Real forward_backward(const int* tokens, const int* targets, const Real* mask, int B, int T,
                        Weights* grads = nullptr, double loss_denominator = 0);
  /// dLoss / d(x0) (B*T, dim) of the last forward_backward, x0 = embedding rows of the tokens.
  const std::vector<Real>& input_gradient() const;

 private:
  friend struct BatchedPasses<Real>;
  struct Impl;
  Weights w_;
  std::unique_ptr<Impl> impl_;
};

using LlamaModel = BasicLlamaModel<float>;

extern template class BasicLlamaModel<float>;
extern template class BasicLlamaModel<double>;
extern template void validate_weight_shapes<float>(const BasicModelWeights<float>&, const char*);
extern template void validate_weight_shapes<double>(const BasicModelWeights<double>&, const char*);

}  // namespace hyplora::llm
