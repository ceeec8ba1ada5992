// Llama forward (KV-cache and batched) and backward. See llama.hpp for the model and conventions.
#include "model/llama.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "hyplora/core/exp_log.hpp"
#include "hyplora/core/simd_dispatch.hpp"
#include "model/blas.hpp"

namespace hyplora::llm {

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& problem) {
  throw std::invalid_argument(what + ": " + problem);
}

/// Below this many scalar operations a loop runs on one thread (a parallel region costs more).
constexpr long kParallelMin = 1L << 15;

// ---- element-wise building blocks (row-major, n rows of width d) ---------------------------

/// y = w * x / sqrt(mean(x^2) + eps) per row; r[i] = 1/sqrt(mean(x_i^2) + eps) kept for backward.
/// Accumulation order as run.c's rmsnorm.
template <class Real>
void rmsnorm_forward(const Real* x, const Real* w, Real* y, Real* r, long n, int d, Real eps) {
#pragma omp parallel for schedule(static) if (n * d >= kParallelMin)
  for (long i = 0; i < n; ++i) {
    const Real* xi = x + i * d;
    Real ss = 0;
    for (int j = 0; j < d; ++j) ss += xi[j] * xi[j];
    ss /= d;
    ss += eps;
    ss = Real(1) / std::sqrt(ss);
    Real* yi = y + i * d;
    for (int j = 0; j < d; ++j) yi[j] = w[j] * (ss * xi[j]);
    r[i] = ss;
  }
}

/// dx += r w dy - x r^3/d sum_k(w_k dy_k x_k);   dw += sum_rows dy * r * x  (when dw != null)
template <class Real>
void rmsnorm_backward(const Real* x, const Real* w, const Real* r, const Real* dy, Real* dx, Real* dw, long n, int d) {
#pragma omp parallel for schedule(static) if (n * d >= kParallelMin)
  for (long i = 0; i < n; ++i) {
    const Real* xi = x + i * d;
    const Real* dyi = dy + i * d;
    Real* dxi = dx + i * d;
    Real dot = 0;
    for (int j = 0; j < d; ++j) dot += w[j] * dyi[j] * xi[j];
    const Real ri = r[i];
    const Real c = ri * ri * ri * dot / d;
    for (int j = 0; j < d; ++j) dxi[j] += ri * w[j] * dyi[j] - c * xi[j];
  }
  if (dw) {
    for (long i = 0; i < n; ++i) {
      const Real* xi = x + i * d;
      const Real* dyi = dy + i * d;
      for (int j = 0; j < d; ++j) dw[j] += dyi[j] * r[i] * xi[j];
    }
  }
}

/// Rotate adjacent pairs of vec (width `width`, heads of head_size) at position pos; sign -1 applies
/// the inverse rotation (the transpose, used in backward).
template <class Real>
inline void rope_rotate(Real* vec, int width, int head_size, const Real* cos_row, const Real* sin_row, Real sign) {
  for (int i = 0; i < width; i += 2) {
    const int p = (i % head_size) / 2;
    const Real c = cos_row[p], s = sign * sin_row[p];
    const Real v0 = vec[i], v1 = vec[i + 1];
    vec[i] = v0 * c - v1 * s;
    vec[i + 1] = v0 * s + v1 * c;
  }
}

/// h = silu(g) * u, silu(g) = g / (1 + exp(-g))  (as run.c)
template <class Real>
void swiglu_forward(const Real* g, const Real* u, Real* h, long count) {
#pragma omp parallel for schedule(static) if (count >= kParallelMin)
  for (long i = 0; i < count; ++i) {
    Real val = g[i];
    val *= (Real(1) / (Real(1) + std::exp(-val)));
    h[i] = val * u[i];
  }
}

/// du = dh silu(g);  dg = dh u sig(g) (1 + g (1 - sig(g)))
template <class Real>
void swiglu_backward(const Real* g, const Real* u, const Real* dh, Real* dg, Real* du, long count) {
#pragma omp parallel for schedule(static) if (count >= kParallelMin)
  for (long i = 0; i < count; ++i) {
    const Real sig = Real(1) / (Real(1) + std::exp(-g[i]));
    du[i] = dh[i] * g[i] * sig;
    dg[i] = dh[i] * u[i] * sig * (Real(1) + g[i] * (Real(1) - sig));
  }
}

/// In-place softmax over x[0..size) as run.c.
template <class Real>
inline void softmax_inplace(Real* x, int size) {
  Real max_val = x[0];
  for (int i = 1; i < size; ++i)
    if (x[i] > max_val) max_val = x[i];
  Real sum = 0;
  for (int i = 0; i < size; ++i) {
    x[i] = std::exp(x[i] - max_val);
    sum += x[i];
  }
  for (int i = 0; i < size; ++i) x[i] /= sum;
}

/// The largest of z[0..n) and, after it, z[j] = exp(z[j] - max) with their sum: the softmax of the
/// classifier's rows (vocabulary-wide). For float both loops run on the widest vector unit
/// (core/simd_dispatch.hpp), the exp as exp_d in double rounded once (within an ulp of expf,
/// core/exp_log.hpp) and the sum in double: as calls to expf this loop was 13% of a stories15M
/// training step (perf, 2026-11-27); on AVX-512 it takes 49 us per 32000-wide row against expf's 117. Double keeps the libm exp and the sequential sum.
template <class Real>
Real row_max(const Real* z, int n) {
  Real mx = z[0];
  if constexpr (std::is_same_v<Real, float>) {
    simd::wide([&] {
      const float* const zz = z;  // locals: a captured reference is reloaded each iteration, and
      const int nn = n;           // g++ then does not vectorise the loop
      float m = zz[0];
#pragma omp simd reduction(max : m)
      for (int j = 1; j < nn; ++j) m = zz[j] > m ? zz[j] : m;
      mx = m;
    });
  } else {
    for (int j = 1; j < n; ++j) mx = std::max(mx, z[j]);
  }
  return mx;
}
template <class Real>
double exp_shifted_sum(Real* z, int n, Real shift) {
  double sum = 0;
  if constexpr (std::is_same_v<Real, float>) {
    simd::wide([&] {
      float* const zz = z;  // locals, as in row_max (with the stores to z the captures would be reloaded)
      const int nn = n;
      const double sh = shift;
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (int j = 0; j < nn; ++j) {
        const float e = float(math::exp_d(double(zz[j]) - sh));
        zz[j] = e;
        s += double(e);
      }
      sum = s;
    });
  } else {
    Real s = 0;
    for (int j = 0; j < n; ++j) {
      z[j] = std::exp(z[j] - shift);
      s += z[j];
    }
    sum = double(s);
  }
  return sum;
}

/// xout (rows) = W (rows x n) x, one sequential dot product per row (as run.c's matmul).
template <class Real>
void matvec(Real* xout, const Real* x, const Real* w, int n, int rows) {
#pragma omp parallel for schedule(static) if (static_cast<long>(rows) * n >= kParallelMin)
  for (int i = 0; i < rows; ++i) {
    Real val = 0;
    const Real* wi = w + static_cast<std::size_t>(i) * n;
    for (int j = 0; j < n; ++j) val += wi[j] * x[j];
    xout[i] = val;
  }
}

}  // namespace

void validate_config(const ModelConfig& c, const char* what) {
  auto bad = [&](const std::string& p) { fail(what, p); };
  constexpr long kMaxWidth = 1L << 16, kMaxVocab = 1L << 21, kMaxLayers = 1024, kMaxSeq = 1L << 20;
  if (c.dim <= 0 || c.dim > kMaxWidth) bad("dim " + std::to_string(c.dim) + " outside [1, 65536]");
  if (c.hidden_dim <= 0 || c.hidden_dim > 4 * kMaxWidth) bad("hidden_dim " + std::to_string(c.hidden_dim) + " outside [1, 262144]");
  if (c.n_layers <= 0 || c.n_layers > kMaxLayers) bad("n_layers " + std::to_string(c.n_layers) + " outside [1, 1024]");
  if (c.n_heads <= 0 || c.n_heads > c.dim) bad("n_heads " + std::to_string(c.n_heads) + " outside [1, dim]");
  if (c.dim % c.n_heads != 0) bad("dim " + std::to_string(c.dim) + " not divisible by n_heads " + std::to_string(c.n_heads));
  if (c.head_dim() % 2 != 0) bad("head size " + std::to_string(c.head_dim()) + " is odd (RoPE rotates pairs)");
  if (c.n_kv_heads <= 0 || c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads != 0)
    bad("n_kv_heads " + std::to_string(c.n_kv_heads) + " does not divide n_heads " + std::to_string(c.n_heads));
  if (c.vocab_size <= 0 || c.vocab_size > kMaxVocab) bad("vocab_size " + std::to_string(c.vocab_size) + " outside [1, 2097152]");
  if (c.seq_len <= 0 || c.seq_len > kMaxSeq) bad("seq_len " + std::to_string(c.seq_len) + " outside [1, 1048576]");
  if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta)) bad("rope_theta must be finite and positive");
  if (!(c.norm_eps > 0) || !std::isfinite(c.norm_eps)) bad("norm_eps must be finite and positive");
}

template <class Real>
void validate_weight_shapes(const BasicModelWeights<Real>& w, const char* what) {
  validate_config(w.config, what);
  const auto& c = w.config;
  const std::size_t d = c.dim, h = c.hidden_dim, L = c.n_layers, V = c.vocab_size, kv = c.kv_dim();
  auto check = [&](const char* name, std::size_t have, std::size_t want) {
    if (have != want)
      fail(what, std::string("tensor ") + name + " has " + std::to_string(have) + " values, expected " +
                     std::to_string(want));
  };
  check("token_embedding", w.token_embedding.size(), V * d);
  check("rms_att", w.rms_att.size(), L * d);
  check("wq", w.wq.size(), L * d * d);
  check("wk", w.wk.size(), L * kv * d);
  check("wv", w.wv.size(), L * kv * d);
  check("wo", w.wo.size(), L * d * d);
  check("rms_ffn", w.rms_ffn.size(), L * d);
  check("w1", w.w1.size(), L * h * d);
  check("w2", w.w2.size(), L * d * h);
  check("w3", w.w3.size(), L * h * d);
  check("rms_final", w.rms_final.size(), d);
  check("classifier", w.classifier.size(), c.shared_classifier ? 0 : V * d);
}

// =============================================================================================

template <class Real>
struct BasicLlamaModel<Real>::Impl {
  ModelConfig c;
  std::vector<Hook*> hooks;  // (layer, module)
  std::vector<Real> rope_cos, rope_sin;  // (seq_len, head_size/2)

  // KV-cache state (path 1)
  std::vector<Real> x, xb, xb2, hb, hb2, q, att, logits, key_cache, value_cache;

  // batched buffers (path 2)
  int B = 0, T = 0;
  long N = 0;
  int threads = 1;
  std::vector<Real> x_res;   // (L+1, N, d): residual stream entering each layer; [L] = final
  std::vector<Real> xn1, r1, qb, kb, vb, P, attb, xmid, xn2, r2, gb, ub, hact;
  std::vector<Real> xf, rf;  // final norm
  std::vector<Real> zchunk;  // (chunk, V) logits of a chunk of rows
  int chunk = 0;
  // backward scratch
  std::vector<Real> dres, dxn, dq, dk, dv, datt, dh, dg, du, dPs, dxf, dx0;

  Hook* hook(int l, Module m) const { return hooks[static_cast<std::size_t>(l) * kModuleCount + static_cast<int>(m)]; }

  /// The batched buffers of (B, T) and their sizes in elements: one list for the allocation
  /// (reserve) and the estimate (activation_bytes).
  struct BufferSize {
    std::vector<Real> Impl::*member;
    std::size_t count;
  };
  static std::vector<BufferSize> batched_buffers(const ModelConfig& c, int B, int T, int threads) {
    const std::size_t N = static_cast<std::size_t>(B) * T, d = c.dim, kv = c.kv_dim(), hid = c.hidden_dim,
                      L = c.n_layers, H = c.n_heads, V = c.vocab_size, TT = static_cast<std::size_t>(T) * T;
    return {{&Impl::x_res, (L + 1) * N * d}, {&Impl::xn1, L * N * d}, {&Impl::r1, L * N},
            {&Impl::qb, L * N * d}, {&Impl::kb, L * N * kv}, {&Impl::vb, L * N * kv},
            {&Impl::P, L * static_cast<std::size_t>(B) * H * TT}, {&Impl::attb, L * N * d}, {&Impl::xmid, L * N * d},
            {&Impl::xn2, L * N * d}, {&Impl::r2, L * N}, {&Impl::gb, L * N * hid}, {&Impl::ub, L * N * hid},
            {&Impl::hact, L * N * hid}, {&Impl::xf, N * d}, {&Impl::rf, N},
            {&Impl::zchunk, chunk_rows(N) * V},
            {&Impl::dres, N * d}, {&Impl::dxn, N * d}, {&Impl::dq, N * d}, {&Impl::dk, N * kv}, {&Impl::dv, N * kv},
            {&Impl::datt, N * d}, {&Impl::dh, N * hid}, {&Impl::dg, N * hid}, {&Impl::du, N * hid},
            {&Impl::dPs, static_cast<std::size_t>(threads) * TT}, {&Impl::dxf, N * d}, {&Impl::dx0, N * d}};
  }
  static std::size_t bytes(const std::vector<BufferSize>& buffers) {
    std::size_t n = 0;
    for (const auto& b : buffers) n += b.count;
    return n * sizeof(Real);
  }
  /// Rows of logits formed at a time (zchunk).
  static std::size_t chunk_rows(std::size_t N) { return std::min<std::size_t>(N, 256); }
};

std::size_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::size_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return 0;
}

template <class Real>
BasicLlamaModel<Real>::BasicLlamaModel(Weights weights) : w_(std::move(weights)), impl_(std::make_unique<Impl>()) {
  validate_weight_shapes(w_, "LlamaModel weights");
  auto& I = *impl_;
  const auto& c = w_.config;
  I.c = c;
  I.hooks.assign(static_cast<std::size_t>(c.n_layers) * kModuleCount, nullptr);
  const int hs = c.head_dim(), half = hs / 2;
  I.rope_cos.resize(static_cast<std::size_t>(c.seq_len) * half);
  I.rope_sin.resize(I.rope_cos.size());
  for (int pos = 0; pos < c.seq_len; ++pos)
    for (int p = 0; p < half; ++p) {
      // as run.c: freq = 1 / theta^(head_dim_index / head_size), head_dim_index = 2p
      const Real freq = Real(1) / std::pow(Real(c.rope_theta), Real(2 * p) / Real(hs));
      const Real val = Real(pos) * freq;
      I.rope_cos[static_cast<std::size_t>(pos) * half + p] = std::cos(val);
      I.rope_sin[static_cast<std::size_t>(pos) * half + p] = std::sin(val);
    }
}

template <class Real>
BasicLlamaModel<Real>::~BasicLlamaModel() = default;
template <class Real>
BasicLlamaModel<Real>::BasicLlamaModel(BasicLlamaModel&&) noexcept = default;
template <class Real>
BasicLlamaModel<Real>& BasicLlamaModel<Real>::operator=(BasicLlamaModel&&) noexcept = default;

template <class Real>
void BasicLlamaModel<Real>::attach(int layer, Module m, Hook* h) {
  if (layer < 0 || layer >= w_.config.n_layers)
    throw std::out_of_range("LlamaModel::attach: layer " + std::to_string(layer) + " outside [0, " +
                            std::to_string(w_.config.n_layers) + ")");
  impl_->hooks[static_cast<std::size_t>(layer) * kModuleCount + static_cast<int>(m)] = h;
}

template <class Real>
typename BasicLlamaModel<Real>::Hook* BasicLlamaModel<Real>::hook(int layer, Module m) const {
  if (layer < 0 || layer >= w_.config.n_layers) throw std::out_of_range("LlamaModel::hook: layer out of range");
  return impl_->hook(layer, m);
}

template <class Real>
void BasicLlamaModel<Real>::detach_all() {
  std::fill(impl_->hooks.begin(), impl_->hooks.end(), nullptr);
}

// ---- path 1 -----------------------------------------------------------------------------------

template <class Real>
const Real* BasicLlamaModel<Real>::forward(int token, int pos) {
  auto& I = *impl_;
  const auto& c = w_.config;
  const int d = c.dim, hid = c.hidden_dim, kv = c.kv_dim(), hs = c.head_dim(), H = c.n_heads;
  const int kv_mul = c.n_heads / c.n_kv_heads, S = c.seq_len;
  if (token < 0 || token >= c.vocab_size)
    throw std::out_of_range("LlamaModel::forward: token " + std::to_string(token) + " outside the vocabulary");
  if (pos < 0 || pos >= S)
    throw std::out_of_range("LlamaModel::forward: position " + std::to_string(pos) + " outside [0, seq_len)");
  if (I.x.empty()) {
    I.x.resize(d); I.xb.resize(d); I.xb2.resize(d); I.hb.resize(hid); I.hb2.resize(hid); I.q.resize(d);
    I.att.resize(static_cast<std::size_t>(H) * S); I.logits.resize(c.vocab_size);
    I.key_cache.resize(static_cast<std::size_t>(c.n_layers) * S * kv);
    I.value_cache.resize(I.key_cache.size());
  }
  Real* x = I.x.data();
  std::copy_n(w_.token_embedding.data() + static_cast<std::size_t>(token) * d, d, x);
  const Real* cos_row = I.rope_cos.data() + static_cast<std::size_t>(pos) * (hs / 2);
  const Real* sin_row = I.rope_sin.data() + static_cast<std::size_t>(pos) * (hs / 2);
  const Real eps = Real(c.norm_eps);
  Real rdummy;
  for (int l = 0; l < c.n_layers; ++l) {
    const std::size_t lo = static_cast<std::size_t>(l) * S * kv;
    Real* k = I.key_cache.data() + lo + static_cast<std::size_t>(pos) * kv;
    Real* v = I.value_cache.data() + lo + static_cast<std::size_t>(pos) * kv;
    rmsnorm_forward(x, w_.rms_att.data() + static_cast<std::size_t>(l) * d, I.xb.data(), &rdummy, 1, d, eps);
    matvec(I.q.data(), I.xb.data(), w_.wq.data() + static_cast<std::size_t>(l) * d * d, d, d);
    matvec(k, I.xb.data(), w_.wk.data() + static_cast<std::size_t>(l) * kv * d, d, kv);
    matvec(v, I.xb.data(), w_.wv.data() + static_cast<std::size_t>(l) * kv * d, d, kv);
    if (auto* h = I.hook(l, Module::q)) h->forward(I.xb.data(), I.q.data(), 1, false);
    if (auto* h = I.hook(l, Module::k)) h->forward(I.xb.data(), k, 1, false);
    if (auto* h = I.hook(l, Module::v)) h->forward(I.xb.data(), v, 1, false);
    rope_rotate(I.q.data(), d, hs, cos_row, sin_row, Real(1));
    rope_rotate(k, kv, hs, cos_row, sin_row, Real(1));
    const Real* kc = I.key_cache.data() + lo;
    const Real* vc = I.value_cache.data() + lo;
#pragma omp parallel for schedule(static) if (static_cast<long>(pos + 1) * d >= kParallelMin)
    for (int h = 0; h < H; ++h) {
      const Real* qh = I.q.data() + h * hs;
      Real* atth = I.att.data() + static_cast<std::size_t>(h) * S;
      for (int t = 0; t <= pos; ++t) {
        const Real* kt = kc + static_cast<std::size_t>(t) * kv + (h / kv_mul) * hs;
        Real score = 0;
        for (int i = 0; i < hs; ++i) score += qh[i] * kt[i];
        score /= std::sqrt(Real(hs));
        atth[t] = score;
      }
      softmax_inplace(atth, pos + 1);
      Real* xbh = I.xb.data() + h * hs;
      std::fill_n(xbh, hs, Real(0));
      for (int t = 0; t <= pos; ++t) {
        const Real* vt = vc + static_cast<std::size_t>(t) * kv + (h / kv_mul) * hs;
        const Real a = atth[t];
        for (int i = 0; i < hs; ++i) xbh[i] += a * vt[i];
      }
    }
    matvec(I.xb2.data(), I.xb.data(), w_.wo.data() + static_cast<std::size_t>(l) * d * d, d, d);
    if (auto* h = I.hook(l, Module::o)) h->forward(I.xb.data(), I.xb2.data(), 1, false);
    for (int i = 0; i < d; ++i) x[i] += I.xb2[i];
    rmsnorm_forward(x, w_.rms_ffn.data() + static_cast<std::size_t>(l) * d, I.xb.data(), &rdummy, 1, d, eps);
    matvec(I.hb.data(), I.xb.data(), w_.w1.data() + static_cast<std::size_t>(l) * hid * d, d, hid);
    matvec(I.hb2.data(), I.xb.data(), w_.w3.data() + static_cast<std::size_t>(l) * hid * d, d, hid);
    if (auto* h = I.hook(l, Module::gate)) h->forward(I.xb.data(), I.hb.data(), 1, false);
    if (auto* h = I.hook(l, Module::up)) h->forward(I.xb.data(), I.hb2.data(), 1, false);
    swiglu_forward(I.hb.data(), I.hb2.data(), I.hb.data(), hid);
    matvec(I.xb.data(), I.hb.data(), w_.w2.data() + static_cast<std::size_t>(l) * d * hid, hid, d);
    if (auto* h = I.hook(l, Module::down)) h->forward(I.hb.data(), I.xb.data(), 1, false);
    for (int i = 0; i < d; ++i) x[i] += I.xb[i];
  }
  rmsnorm_forward(x, w_.rms_final.data(), x, &rdummy, 1, d, eps);
  matvec(I.logits.data(), x, w_.output_weights().data(), d, c.vocab_size);
  return I.logits.data();
}

// ---- path 2 -----------------------------------------------------------------------------------

template <class Real>
void BasicLlamaModel<Real>::reserve(int B, int T) {
  const auto& c = w_.config;
  if (B <= 0 || T <= 0) throw std::invalid_argument("LlamaModel: batch shape " + std::to_string(B) + " x " + std::to_string(T) + " must be positive");
  if (T > c.seq_len)
    throw std::invalid_argument("LlamaModel: sequence length " + std::to_string(T) + " exceeds the model's seq_len " +
                                std::to_string(c.seq_len));
  auto& I = *impl_;
  if (I.B == B && I.T == T) return;
  const int threads = std::max(1, omp_get_max_threads());
  const auto buffers = Impl::batched_buffers(c, B, T, threads);
  // refused before anything is allocated
  const std::size_t need = Impl::bytes(buffers);
  const std::size_t available = available_memory_bytes();
  std::size_t held = 0;
  for (const auto& b : buffers) held += (I.*b.member).capacity() * sizeof(Real);
  if (available > 0 && need > available + held) {
    auto gib = [](std::size_t bytes) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.1f", double(bytes) / double(std::size_t(1) << 30));
      return std::string(buf);
    };
    throw ActivationMemoryError("LlamaModel: a batch of " + std::to_string(B) + " x " + std::to_string(T) +
                                " tokens needs " + gib(need) + " GiB for its activations, more than the " +
                                gib(available + held) + " GiB of memory available (MemAvailable in /proc/meminfo)");
  }
  I.B = I.T = 0;  // until every buffer has its size (an allocation below may still fail)
  // a buffer that grows gives its memory back first; one that fits keeps it (no new pages to touch
  // when only T changes from batch to batch)
  for (const auto& b : buffers)
    if (b.count > (I.*b.member).capacity()) std::vector<Real>().swap(I.*b.member);
  for (const auto& b : buffers) (I.*b.member).assign(b.count, Real(0));
  I.N = static_cast<long>(B) * T;
  I.threads = threads;
  I.chunk = static_cast<int>(Impl::chunk_rows(static_cast<std::size_t>(I.N)));
  I.B = B; I.T = T;
}

template <class Real>
std::size_t BasicLlamaModel<Real>::activation_bytes(const ModelConfig& c, int B, int T) {
  return Impl::bytes(Impl::batched_buffers(c, B, T, std::max(1, omp_get_max_threads())));
}

template <class Real>
const std::vector<Real>& BasicLlamaModel<Real>::input_gradient() const {
  return impl_->dx0;
}

// The batched passes are written as free functions over Impl to keep the class header small.
template <class Real>
struct BatchedPasses {
  using Impl = typename BasicLlamaModel<Real>::Impl;
  using Weights = BasicModelWeights<Real>;
  using Hook = BasicLinearAdapterHook<Real>;

  static void check_tokens(const int* tokens, long N, int V, const char* what) {
    for (long i = 0; i < N; ++i)
      if (tokens[i] < 0 || tokens[i] >= V)
        throw std::out_of_range(std::string("LlamaModel: ") + what + "[" + std::to_string(i) + "] = " +
                                std::to_string(tokens[i]) + " outside the vocabulary [0, " + std::to_string(V) + ")");
  }

  static void embed(const Weights& w, Impl& I, const int* tokens) {
    const int d = w.config.dim;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < I.N; ++i)
      std::copy_n(w.token_embedding.data() + static_cast<std::size_t>(tokens[i]) * d, d,
                  I.x_res.data() + static_cast<std::size_t>(i) * d);
  }

  static void rope_rows(Impl& I, Real* v, int width, int hs, Real sign) {
    const int half = hs / 2;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < I.N; ++i) {
      const long pos = i % I.T;
      rope_rotate(v + static_cast<std::size_t>(i) * width, width, hs, I.rope_cos.data() + pos * half,
                  I.rope_sin.data() + pos * half, sign);
    }
  }

  static void layer_forward(const Weights& w, Impl& I, int l, bool training) {
    const auto& c = w.config;
    const long N = I.N;
    const int d = c.dim, kv = c.kv_dim(), hid = c.hidden_dim, hs = c.head_dim(), H = c.n_heads, KVH = c.n_kv_heads;
    const int rep = H / KVH, T = I.T;
    const std::size_t Nd = N * static_cast<std::size_t>(d), Nkv = N * static_cast<std::size_t>(kv),
                      Nh = N * static_cast<std::size_t>(hid);
    const Real* x = I.x_res.data() + l * Nd;
    Real* xn = I.xn1.data() + l * Nd;
    Real* q = I.qb.data() + l * Nd;
    Real* k = I.kb.data() + l * Nkv;
    Real* v = I.vb.data() + l * Nkv;
    Real* P = I.P.data() + static_cast<std::size_t>(l) * I.B * H * T * T;
    Real* att = I.attb.data() + l * Nd;
    Real* xm = I.xmid.data() + l * Nd;
    Real* xn2 = I.xn2.data() + l * Nd;
    Real* g = I.gb.data() + l * Nh;
    Real* u = I.ub.data() + l * Nh;
    Real* h = I.hact.data() + l * Nh;
    Real* xnext = I.x_res.data() + (l + 1) * Nd;
    const Real eps = Real(c.norm_eps);
    const Real* Wq = w.wq.data() + static_cast<std::size_t>(l) * d * d;
    const Real* Wk = w.wk.data() + static_cast<std::size_t>(l) * kv * d;
    const Real* Wv = w.wv.data() + static_cast<std::size_t>(l) * kv * d;
    const Real* Wo = w.wo.data() + static_cast<std::size_t>(l) * d * d;
    const Real* W1 = w.w1.data() + static_cast<std::size_t>(l) * hid * d;
    const Real* W2 = w.w2.data() + static_cast<std::size_t>(l) * d * hid;
    const Real* W3 = w.w3.data() + static_cast<std::size_t>(l) * hid * d;

    rmsnorm_forward(x, w.rms_att.data() + static_cast<std::size_t>(l) * d, xn, I.r1.data() + l * N, N, d, eps);
    // Y (N, out) = X (N, in) W^T
    blas::gemm(false, true, N, d, d, Real(1), xn, d, Wq, d, Real(0), q, d);
    blas::gemm(false, true, N, kv, d, Real(1), xn, d, Wk, d, Real(0), k, kv);
    blas::gemm(false, true, N, kv, d, Real(1), xn, d, Wv, d, Real(0), v, kv);
    if (auto* hk = I.hook(l, Module::q)) hk->forward(xn, q, N, training);
    if (auto* hk = I.hook(l, Module::k)) hk->forward(xn, k, N, training);
    if (auto* hk = I.hook(l, Module::v)) hk->forward(xn, v, N, training);
    rope_rows(I, q, d, hs, Real(1));
    rope_rows(I, k, kv, hs, Real(1));

    // causal attention, one task per (sequence, kv head); P (B, H, T, T) kept for backward.
    // Blocks of kAttentionBlock query rows see only the keys up to their last row (S = Q K^T is computed
    // for columns < t1 of each block: about half of the T x T products for long sequences).
    const Real scale = Real(1) / std::sqrt(Real(hs));
    {
      blas::SingleThreadedScope single;
#pragma omp parallel for schedule(dynamic, 1)
      for (int task = 0; task < I.B * KVH; ++task) {
        const int b = task / KVH, gk = task % KVH;
        const Real* kg = k + static_cast<std::size_t>(b) * T * kv + gk * hs;
        const Real* vg = v + static_cast<std::size_t>(b) * T * kv + gk * hs;
        for (int hh = gk * rep; hh < (gk + 1) * rep; ++hh) {
          const Real* qh = q + static_cast<std::size_t>(b) * T * d + hh * hs;
          Real* Ph = P + (static_cast<std::size_t>(b) * H + hh) * T * T;
          Real* ah = att + static_cast<std::size_t>(b) * T * d + hh * hs;
          for (int t0 = 0; t0 < T; t0 += kAttentionBlock) {
            const int t1 = std::min(T, t0 + kAttentionBlock), bt = t1 - t0;
            Real* Pb = Ph + static_cast<std::size_t>(t0) * T;  // rows t0..t1-1, columns 0..t1-1
            blas::gemm(false, true, bt, t1, hs, scale, qh + static_cast<std::size_t>(t0) * d, d, kg, kv, Real(0), Pb, T);
            for (int t = t0; t < t1; ++t) {
              Real* row = Ph + static_cast<std::size_t>(t) * T;
              softmax_inplace(row, t + 1);
              std::fill(row + t + 1, row + T, Real(0));
            }
            blas::gemm(false, false, bt, hs, t1, Real(1), Pb, T, vg, kv, Real(0), ah + static_cast<std::size_t>(t0) * d, d);
          }
        }
      }
    }
    // h = x + att Wo^T (+ adapter)
    std::copy_n(x, Nd, xm);
    blas::gemm(false, true, N, d, d, Real(1), att, d, Wo, d, Real(1), xm, d);
    if (auto* hk = I.hook(l, Module::o)) hk->forward(att, xm, N, training);

    rmsnorm_forward(xm, w.rms_ffn.data() + static_cast<std::size_t>(l) * d, xn2, I.r2.data() + l * N, N, d, eps);
    blas::gemm(false, true, N, hid, d, Real(1), xn2, d, W1, d, Real(0), g, hid);
    blas::gemm(false, true, N, hid, d, Real(1), xn2, d, W3, d, Real(0), u, hid);
    if (auto* hk = I.hook(l, Module::gate)) hk->forward(xn2, g, N, training);
    if (auto* hk = I.hook(l, Module::up)) hk->forward(xn2, u, N, training);
    swiglu_forward(g, u, h, static_cast<long>(Nh));
    std::copy_n(xm, Nd, xnext);
    blas::gemm(false, true, N, d, hid, Real(1), h, hid, W2, hid, Real(1), xnext, d);
    if (auto* hk = I.hook(l, Module::down)) hk->forward(h, xnext, N, training);
  }

  /// Input: I.dres = dLoss/d(output of layer l). Output: I.dres = dLoss/d(input of layer l).
  static void layer_backward(const Weights& w, Impl& I, int l, Weights* gr) {
    const auto& c = w.config;
    const long N = I.N;
    const int d = c.dim, kv = c.kv_dim(), hid = c.hidden_dim, hs = c.head_dim(), H = c.n_heads, KVH = c.n_kv_heads;
    const int rep = H / KVH, T = I.T;
    const std::size_t Nd = N * static_cast<std::size_t>(d), Nkv = N * static_cast<std::size_t>(kv),
                      Nh = N * static_cast<std::size_t>(hid);
    const Real* x = I.x_res.data() + l * Nd;
    const Real* xn = I.xn1.data() + l * Nd;
    const Real* q = I.qb.data() + l * Nd;
    const Real* k = I.kb.data() + l * Nkv;
    const Real* v = I.vb.data() + l * Nkv;
    const Real* P = I.P.data() + static_cast<std::size_t>(l) * I.B * H * T * T;
    const Real* att = I.attb.data() + l * Nd;
    const Real* xm = I.xmid.data() + l * Nd;
    const Real* xn2 = I.xn2.data() + l * Nd;
    const Real* g = I.gb.data() + l * Nh;
    const Real* u = I.ub.data() + l * Nh;
    const Real* h = I.hact.data() + l * Nh;
    const std::size_t od = static_cast<std::size_t>(l) * d * d, okv = static_cast<std::size_t>(l) * kv * d,
                      oh = static_cast<std::size_t>(l) * hid * d;
    const Real *Wq = w.wq.data() + od, *Wk = w.wk.data() + okv, *Wv = w.wv.data() + okv, *Wo = w.wo.data() + od;
    const Real *W1 = w.w1.data() + oh, *W2 = w.w2.data() + oh, *W3 = w.w3.data() + oh;
    Real* dres = I.dres.data();
    Real* dxn = I.dxn.data();
    Real *dq = I.dq.data(), *dk = I.dk.data(), *dv = I.dv.data(), *datt = I.datt.data();
    Real *dh = I.dh.data(), *dg = I.dg.data(), *du = I.du.data();

    // down: out += h W2^T  ->  dh = dres W2,  dW2 += dres^T h
    blas::gemm(false, false, N, hid, d, Real(1), dres, d, W2, hid, Real(0), dh, hid);
    if (gr) blas::gemm(true, false, d, hid, N, Real(1), dres, d, h, hid, Real(1), gr->w2.data() + oh, hid);
    if (auto* hk = I.hook(l, Module::down)) hk->backward(h, dres, dh, N);
    swiglu_backward(g, u, dh, dg, du, static_cast<long>(Nh));
    // gate / up
    blas::gemm(false, false, N, d, hid, Real(1), dg, hid, W1, d, Real(0), dxn, d);
    blas::gemm(false, false, N, d, hid, Real(1), du, hid, W3, d, Real(1), dxn, d);
    if (gr) {
      blas::gemm(true, false, hid, d, N, Real(1), dg, hid, xn2, d, Real(1), gr->w1.data() + oh, d);
      blas::gemm(true, false, hid, d, N, Real(1), du, hid, xn2, d, Real(1), gr->w3.data() + oh, d);
    }
    if (auto* hk = I.hook(l, Module::gate)) hk->backward(xn2, dg, dxn, N);
    if (auto* hk = I.hook(l, Module::up)) hk->backward(xn2, du, dxn, N);
    // ffn norm; dres becomes dLoss/d(xm) (residual path plus the norm's contribution)
    rmsnorm_backward(xm, w.rms_ffn.data() + static_cast<std::size_t>(l) * d, I.r2.data() + l * N, dxn, dres,
                     gr ? gr->rms_ffn.data() + static_cast<std::size_t>(l) * d : nullptr, N, d);
    // o: xm = x + att Wo^T
    blas::gemm(false, false, N, d, d, Real(1), dres, d, Wo, d, Real(0), datt, d);
    if (gr) blas::gemm(true, false, d, d, N, Real(1), dres, d, att, d, Real(1), gr->wo.data() + od, d);
    if (auto* hk = I.hook(l, Module::o)) hk->backward(att, dres, datt, N);

    // attention backward per (sequence, kv head):
    //   dP = dA V^T, dV += P^T dA, dS = P (dP - rowsum(P dP)) scale, dQ = dS K, dK += dS^T Q
    const Real scale = Real(1) / std::sqrt(Real(hs));
    {
      blas::SingleThreadedScope single;
#pragma omp parallel for schedule(dynamic, 1)
      for (int task = 0; task < I.B * KVH; ++task) {
        const int b = task / KVH, gk = task % KVH;
        Real* dS = I.dPs.data() + static_cast<std::size_t>(omp_get_thread_num()) * T * T;
        const std::size_t kvo = static_cast<std::size_t>(b) * T * kv + gk * hs;
        const Real* kg = k + kvo;
        const Real* vg = v + kvo;
        Real* dkg = dk + kvo;
        Real* dvg = dv + kvo;
        for (int t = 0; t < T; ++t) {
          std::fill_n(dkg + static_cast<std::size_t>(t) * kv, hs, Real(0));
          std::fill_n(dvg + static_cast<std::size_t>(t) * kv, hs, Real(0));
        }
        for (int hh = gk * rep; hh < (gk + 1) * rep; ++hh) {
          const std::size_t qo = static_cast<std::size_t>(b) * T * d + hh * hs;
          const Real* Ph = P + (static_cast<std::size_t>(b) * H + hh) * T * T;
          const Real* dAh = datt + qo;
          for (int t0 = 0; t0 < T; t0 += kAttentionBlock) {  // the forward's causal blocks
            const int t1 = std::min(T, t0 + kAttentionBlock), bt = t1 - t0;
            const std::size_t ro = static_cast<std::size_t>(t0) * T, qro = static_cast<std::size_t>(t0) * d;
            const Real* Pb = Ph + ro;
            Real* dSb = dS + ro;
            blas::gemm(false, true, bt, t1, hs, Real(1), dAh + qro, d, vg, kv, Real(0), dSb, T);
            blas::gemm(true, false, t1, hs, bt, Real(1), Pb, T, dAh + qro, d, Real(1), dvg, kv);
            for (int t = t0; t < t1; ++t) {
              const Real* pr = Ph + static_cast<std::size_t>(t) * T;
              Real* dr = dS + static_cast<std::size_t>(t) * T;
              Real dot = 0;
              for (int s = 0; s <= t; ++s) dot += pr[s] * dr[s];
              for (int s = 0; s <= t; ++s) dr[s] = pr[s] * (dr[s] - dot) * scale;
              std::fill(dr + t + 1, dr + t1, Real(0));
            }
            blas::gemm(false, false, bt, hs, t1, Real(1), dSb, T, kg, kv, Real(0), dq + qo + qro, d);
            blas::gemm(true, false, t1, hs, bt, Real(1), dSb, T, q + qo + qro, d, Real(1), dkg, kv);
          }
        }
      }
    }
    // RoPE is a rotation: its backward is the inverse rotation
    rope_rows(I, dq, d, hs, Real(-1));
    rope_rows(I, dk, kv, hs, Real(-1));
    // q, k, v
    blas::gemm(false, false, N, d, d, Real(1), dq, d, Wq, d, Real(0), dxn, d);
    blas::gemm(false, false, N, d, kv, Real(1), dk, kv, Wk, d, Real(1), dxn, d);
    blas::gemm(false, false, N, d, kv, Real(1), dv, kv, Wv, d, Real(1), dxn, d);
    if (gr) {
      blas::gemm(true, false, d, d, N, Real(1), dq, d, xn, d, Real(1), gr->wq.data() + od, d);
      blas::gemm(true, false, kv, d, N, Real(1), dk, kv, xn, d, Real(1), gr->wk.data() + okv, d);
      blas::gemm(true, false, kv, d, N, Real(1), dv, kv, xn, d, Real(1), gr->wv.data() + okv, d);
    }
    if (auto* hk = I.hook(l, Module::q)) hk->backward(xn, dq, dxn, N);
    if (auto* hk = I.hook(l, Module::k)) hk->backward(xn, dk, dxn, N);
    if (auto* hk = I.hook(l, Module::v)) hk->backward(xn, dv, dxn, N);
    rmsnorm_backward(x, w.rms_att.data() + static_cast<std::size_t>(l) * d, I.r1.data() + l * N, dxn, dres,
                     gr ? gr->rms_att.data() + static_cast<std::size_t>(l) * d : nullptr, N, d);
  }

  static void forward_trunk(const Weights& w, Impl& I, const int* tokens, bool training) {
    check_tokens(tokens, I.N, w.config.vocab_size, "tokens");
    embed(w, I, tokens);
    for (int l = 0; l < w.config.n_layers; ++l) layer_forward(w, I, l, training);
    const std::size_t Nd = static_cast<std::size_t>(I.N) * w.config.dim;
    rmsnorm_forward(I.x_res.data() + w.config.n_layers * Nd, w.rms_final.data(), I.xf.data(), I.rf.data(), I.N,
                    w.config.dim, Real(w.config.norm_eps));
  }

  /// Masked mean cross-entropy over chunks of rows; with backward, dxf = dLoss/d(xf) and the
  /// classifier gradient (into the embedding when tied) accumulate.
  static Real classifier_loss(const Weights& w, Impl& I, const int* targets, const Real* mask, bool backward,
                              Weights* gr, double denominator = 0) {
    const auto& c = w.config;
    const int d = c.dim, V = c.vocab_size;
    const long N = I.N;
    double msum = 0;
    for (long i = 0; i < N; ++i) {
      const double m = mask ? double(mask[i]) : 1.0;
      if (!std::isfinite(m) || m < 0)
        throw std::invalid_argument("LlamaModel: mask[" + std::to_string(i) + "] is negative or not finite");
      if (m != 0 && (targets[i] < 0 || targets[i] >= V))
        throw std::out_of_range("LlamaModel: targets[" + std::to_string(i) + "] = " + std::to_string(targets[i]) +
                                " outside the vocabulary [0, " + std::to_string(V) + ")");
      msum += m;
    }
    if (backward) std::fill(I.dxf.begin(), I.dxf.end(), Real(0));
    if (msum == 0) return Real(0);
    if (denominator > 0) msum = denominator;  // the step's mask sum (gradient accumulation)
    const Real* Wc = w.output_weights().data();
    Real* gWc = gr ? (c.shared_classifier ? gr->token_embedding.data() : gr->classifier.data()) : nullptr;
    double loss = 0;
    for (long r0 = 0; r0 < N; r0 += I.chunk) {
      const int rows = static_cast<int>(std::min<long>(I.chunk, N - r0));
      const Real* xf = I.xf.data() + static_cast<std::size_t>(r0) * d;
      Real* z = I.zchunk.data();
      blas::gemm(false, true, rows, V, d, Real(1), xf, d, Wc, d, Real(0), z, V);
      double chunk_loss = 0;
#pragma omp parallel for schedule(static) reduction(+ : chunk_loss)
      for (int i = 0; i < rows; ++i) {
        const long row = r0 + i;
        Real* zi = z + static_cast<std::size_t>(i) * V;
        const Real m = mask ? mask[row] : Real(1);
        if (m == 0) {
          if (backward) std::fill_n(zi, V, Real(0));
          continue;
        }
        // CE = logsumexp(z) - z[target]; zi is overwritten with exp(z - max)
        const Real z_target = zi[targets[row]];
        const Real mx = row_max(zi, V);
        const Real sum = Real(exp_shifted_sum(zi, V, mx));
        chunk_loss += double(m) * double(mx + std::log(sum) - z_target);
        if (backward) {
          // dz = m / msum (softmax(z) - onehot(target))
          const Real wgt = Real(double(m) / msum);
          const Real scale = wgt / sum;
          for (int j = 0; j < V; ++j) zi[j] *= scale;
          zi[targets[row]] -= wgt;
        }
      }
      loss += chunk_loss;
      if (backward) {
        blas::gemm(false, false, rows, d, V, Real(1), z, V, Wc, d, Real(0), I.dxf.data() + static_cast<std::size_t>(r0) * d, d);
        if (gWc) blas::gemm(true, false, V, d, rows, Real(1), z, V, xf, d, Real(1), gWc, d);
      }
    }
    return Real(loss / msum);
  }
};

template <class Real>
void BasicLlamaModel<Real>::forward_logits(const int* tokens, int B, int T, Real* logits) {
  reserve(B, T);
  auto& I = *impl_;
  BatchedPasses<Real>::forward_trunk(w_, I, tokens, false);
  const int d = w_.config.dim, V = w_.config.vocab_size;
  blas::gemm(false, true, I.N, V, d, Real(1), I.xf.data(), d, w_.output_weights().data(), d, Real(0), logits, V);
}

template <class Real>
Real BasicLlamaModel<Real>::evaluate_loss(const int* tokens, const int* targets, const Real* mask, int B, int T) {
  reserve(B, T);
  auto& I = *impl_;
  BatchedPasses<Real>::forward_trunk(w_, I, tokens, false);
  return BatchedPasses<Real>::classifier_loss(w_, I, targets, mask, false, nullptr);
}

template <class Real>
Real BasicLlamaModel<Real>::forward_backward(const int* tokens, const int* targets, const Real* mask, int B, int T,
                                             Weights* gr, double loss_denominator) {
  if (!(loss_denominator >= 0) || !std::isfinite(loss_denominator))
    throw std::invalid_argument("LlamaModel::forward_backward: loss_denominator = " + std::to_string(loss_denominator) +
                                " is negative or not finite");
  reserve(B, T);
  auto& I = *impl_;
  const auto& c = w_.config;
  if (gr) validate_weight_shapes(*gr, "LlamaModel::forward_backward gradient buffer");
  BatchedPasses<Real>::forward_trunk(w_, I, tokens, true);
  const Real loss = BatchedPasses<Real>::classifier_loss(w_, I, targets, mask, true, gr, loss_denominator);
  const int d = c.dim;
  const std::size_t Nd = static_cast<std::size_t>(I.N) * d;
  std::fill(I.dres.begin(), I.dres.end(), Real(0));
  rmsnorm_backward(I.x_res.data() + c.n_layers * Nd, w_.rms_final.data(), I.rf.data(), I.dxf.data(), I.dres.data(),
                   gr ? gr->rms_final.data() : nullptr, I.N, d);
  for (int l = c.n_layers - 1; l >= 0; --l) BatchedPasses<Real>::layer_backward(w_, I, l, gr);
  std::copy(I.dres.begin(), I.dres.end(), I.dx0.begin());
  if (gr) {
    for (long i = 0; i < I.N; ++i) {
      Real* ge = gr->token_embedding.data() + static_cast<std::size_t>(tokens[i]) * d;
      const Real* di = I.dx0.data() + static_cast<std::size_t>(i) * d;
      for (int j = 0; j < d; ++j) ge[j] += di[j];
    }
  }
  return loss;
}

template class BasicLlamaModel<float>;
template class BasicLlamaModel<double>;
template void validate_weight_shapes<float>(const BasicModelWeights<float>&, const char*);
template void validate_weight_shapes<double>(const BasicModelWeights<double>&, const char*);

}  // namespace hyplora::llm
