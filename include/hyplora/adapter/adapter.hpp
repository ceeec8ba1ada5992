#pragma once
// Adapter<Variant, T, Backend>: a low-rank branch on a frozen linear layer (SPEC section 3),
//
//   Y = X W^T + b + (alpha/r) Delta(X),   Delta(X) = lower( B A lift( dropout(X) / s ) ),
//
// with hand-written backward. X is n x d_in, Y n x d_out, row-major, in the backend's memory.
//
// Parameters and gradients are flat buffers in the backend's memory, laid out as
//   [ A (r x d_in, row-major) | B (d_out x r, row-major) | raw curvature k (1, if learnable per
//     adapter) | norm scale s (1, if learnable) ]
// (layout() gives the offsets; -1 when absent). K = softplus(k) + K_min (LearnableCurvature).
// A shared curvature lives outside (SharedCurvature<T>, set_shared_curvature()).
//
// Activations kept for backward are buffers sized once for the largest n seen: no allocation per
// step while n does not grow. backward() must follow the forward() of the same X and n (and the
// same parameters).
//
// The radial variants (all lift/lower maps are radial) are evaluated in rank space when no dropout
// mask is active: z = (f(|x|/s)/s) A x and |B z|^2 = z^T (B^T B) z, so no n x d intermediate is
// formed and HypLoRA costs LoRA's GEMMs plus one pass over X in each direction
// (Backend::row_dots, kernels::RankFactorRows / RankScaleRows, RankVjpRows). With dropout the masked
// input is formed explicitly. Where the backend runs row programs (backend::Thrust under CUDA) and
// the rows are short, each branch pass is one kernel (row_programs.hpp), for LoRA too.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "hyplora/adapter/config.hpp"
#include "hyplora/adapter/row_kernels.hpp"
#include "hyplora/adapter/row_programs.hpp"
#include "hyplora/adapter/variants.hpp"
#include "hyplora/core/config.hpp"
#include "hyplora/core/format.hpp"
#include "hyplora/curvature.hpp"
#include "hyplora/manifold/vector_ops.hpp"

namespace hyplora::adapter {

/// Offsets of the parameters in the flat buffers (-1: not present).
struct ParamLayout {
  index_t A = 0, A_size = 0;
  index_t B = 0, B_size = 0;
  index_t curvature = -1;
  index_t scale = -1;
  index_t total = 0;
};

/// A named view of one parameter of the flat buffer (PEFT names: lora_A, lora_B).
struct NamedParam {
  std::string name;
  index_t offset;
  index_t rows;
  index_t cols;
};

/// Whether a backend wants the rank-space forward rows in one kernel (RankForwardRows): true where
/// it says so (backend::Thrust under CUDA), false otherwise.
template <class Backend>
inline constexpr bool fuses_rank_rows = [] {
  if constexpr (requires { Backend::fuse_rank_rows; }) return bool(Backend::fuse_rank_rows);
  else return false;
}();
/// Whether a backend runs a row functor in the same kernel as the row pass before or after it
/// (Backend::row_dots_then_rows, Backend::rows_then_add_scaled: backend::Thrust under CUDA, for rows
/// up to Backend::row_pass_fuse_max values): one kernel fewer each way for short rows.
template <class Backend>
inline constexpr bool fuses_row_passes = requires { Backend::row_pass_fuse_max; };
template <class Backend>
constexpr index_t row_pass_fuse_max() {
  if constexpr (fuses_row_passes<Backend>) return Backend::row_pass_fuse_max;
  else return 0;
}
// The adapters' thin products with the rank space: Backend's own version where it has one and it
// applies (backend::Cpu's AVX-512 kernels return true), GEMMs and row passes otherwise.
/// Z = alpha X A^T (n x r) and, where n2 is not null, n2[i] = |x_i|^2.
template <class Backend, class T>
void project_rows(const T* X, index_t n, index_t d, const T* A, index_t r, T alpha, T* Z, T* n2) {
  if constexpr (requires { Backend::project_rows(X, n, d, A, r, alpha, Z, n2); })
    if (Backend::project_rows(X, n, d, A, r, alpha, Z, n2)) return;
  Backend::gemm(false, true, n, r, d, alpha, X, d, A, d, T(0), Z, r);
  if (n2) Backend::row_dots(X, X, n, d, n2);
}
/// Y += (alpha Z) A (Z n x r, A r x d) and, where e is not null, e_i X_i per row.
template <class Backend, class T>
void expand_rows_add(const T* Z, index_t n, index_t r, T alpha, const T* A, index_t d, const T* X, const T* e, T* Y) {
  if constexpr (requires { Backend::expand_rows_add(Z, n, r, alpha, A, d, X, e, Y); })
    if (Backend::expand_rows_add(Z, n, r, alpha, A, d, X, e, Y)) return;
  Backend::gemm(false, false, n, d, r, alpha, Z, r, A, d, T(1), Y, d);
  if (e) Backend::add_scaled_rows(X, e, Y, n, d);
}
/// Y += alpha Z B^T (Z n x r, B d x r: the branch's output product).
template <class Backend, class T>
void expand_rows_add_transposed(const T* Z, index_t n, index_t r, T alpha, const T* B, index_t d, T* Y) {
  if constexpr (requires { Backend::expand_rows_add_transposed(Z, n, r, alpha, B, d, Y); })
    if (Backend::expand_rows_add_transposed(Z, n, r, alpha, B, d, Y)) return;
  Backend::gemm(false, true, n, d, r, alpha, Z, r, B, r, T(1), Y, d);
}
/// Pa = Z G (n x r; G r x r) and q2[i] = Z_i . Pa_i.
template <class Backend, class T>
void quadratic_rows(const T* Z, index_t n, index_t r, const T* G, T* Pa, T* q2) {
  if constexpr (requires { Backend::quadratic_rows(Z, n, r, G, Pa, q2); })
    if (Backend::quadratic_rows(Z, n, r, G, Pa, q2)) return;
  Backend::gemm(false, false, n, r, r, T(1), Z, r, G, r, T(0), Pa, r);
  Backend::row_dots(Z, Pa, n, r, q2);
}
/// out[i] = U_i . V_i for n rows of r values.
template <class Backend, class T>
void rank_dots(const T* U, const T* V, index_t n, index_t r, T* out) {
  if constexpr (requires { Backend::rank_dots(U, V, n, r, out); })
    if (Backend::rank_dots(U, V, n, r, out)) return;
  Backend::row_dots(U, V, n, r, out);
}
/// G = Z^T Z (r x r; Z n x r: the lift's G = B^T B).
template <class Backend, class T>
void gram_rows(const T* Z, index_t n, index_t r, T* G) {
  if constexpr (requires { Backend::gram_rows(Z, n, r, G); })
    if (Backend::gram_rows(Z, n, r, G)) return;
  Backend::gemm(true, false, r, r, n, T(1), Z, r, Z, r, T(0), G, r);
}
/// P += Z G (Z, P n x r; G r x r: the lift's dB += B M).
template <class Backend, class T>
void rows_times_add(const T* Z, index_t n, index_t r, const T* G, T* P) {
  if constexpr (requires { Backend::rows_times_add(Z, n, r, G, P); })
    if (Backend::rows_times_add(Z, n, r, G, P)) return;
  Backend::gemm(false, false, n, r, r, T(1), Z, r, G, r, T(1), P, r);
}
/// Largest rank at which the fused rows and the row programs are used (kernels::max_program_rank).
inline constexpr index_t fused_rank_max = kernels::max_program_rank;
/// Whether a backend runs row programs (row_programs.hpp: a whole branch pass for rows of up to
/// Backend::row_program_max values in one kernel; backend::Thrust under CUDA).
template <class Backend>
inline constexpr bool runs_row_programs = requires { Backend::row_program_max; };
/// Whether a backend's buffers live on a CUDA device (a read of them is a synchronising copy).
template <class Backend>
inline constexpr bool backend_on_cuda = [] {
  if constexpr (requires { Backend::is_cuda; }) return bool(Backend::is_cuda);
  else return false;
}();

template <class Variant, class T, class Backend>
class Adapter {
 public:
  using variant_type = Variant;
  using scalar_type = T;
  using backend_type = Backend;
  using vector_type = typename Backend::template vector<T>;

  explicit Adapter(const AdapterConfig& config) : cfg_(config) {
    cfg_.validate();
    d_in_ = cfg_.d_in; d_out_ = cfg_.d_out; r_ = cfg_.rank;
    // alpha / r in T: a float adapter took alpha = 1e39 as scaling inf (a NaN layer even at B = 0),
    // and alpha = 1e-50 as 0 (the branch silently off)
    scaling_ = T(cfg_.scaling());
    if (!std::isfinite(double(scaling_)) || (cfg_.alpha != 0.0 && scaling_ == T(0)))
      throw std::invalid_argument("AdapterConfig: alpha / rank = " + format_number(cfg_.scaling()) +
                                  " (alpha " + format_number(cfg_.alpha) + ", rank " + std::to_string(cfg_.rank) +
                                  ") is out of range for the adapter's scalar type");
    // input norm scale
    ScaleMode sm = cfg_.scale;
    if (sm == ScaleMode::automatic)
      sm = Variant::paper ? ScaleMode::learnable : (Variant::scaled ? ScaleMode::fixed : ScaleMode::none);
    scale_mode_ = sm;
    fixed_s_ = sm == ScaleMode::none ? T(1) : T(cfg_.resolved_scale_init());
    // curvature
    curv_mode_ = cfg_.curvature;
    if (Variant::paper && curv_mode_ == CurvatureMode::fixed) curv_mode_ = CurvatureMode::learnable;
    if (!Variant::uses_curvature) curv_mode_ = CurvatureMode::fixed;
    // K_init in T: an error naming it where the variant uses K (RuntimeCurvature's own message did not
    // say which setting); variants without a curvature keep it for K() only, or 1 where it does not fit
    const T K_init = T(cfg_.K_init);
    const bool K_fits = K_init > T(0) && std::isfinite(double(K_init));
    if (Variant::uses_curvature && !Variant::paper && curv_mode_ != CurvatureMode::shared && !K_fits)
      throw std::invalid_argument("AdapterConfig: K_init = " + format_number(cfg_.K_init) +
                                  " is out of range for the adapter's scalar type");
    fixed_K_ = K_fits ? RuntimeCurvature<T>(K_init).K() : T(1);
    ms_.sinh_clamp = T(cfg_.paper_sinh_clamp);
    ms_.theta_eps = T(cfg_.paper_theta_eps);
    // layout
    layout_.A = 0; layout_.A_size = r_ * d_in_;
    layout_.B = layout_.A_size; layout_.B_size = d_out_ * r_;
    index_t off = layout_.B + layout_.B_size;
    if (curv_mode_ == CurvatureMode::learnable) layout_.curvature = off++;
    if (scale_mode_ == ScaleMode::learnable) layout_.scale = off++;
    layout_.total = off;
    Backend::resize(params_, off);
    Backend::resize(grads_, off);
    reset_parameters();
    zero_grad();
  }

  // ---- settings and shapes ---------------------------------------------------------------------
  const AdapterConfig& config() const { return cfg_; }
  index_t d_in() const { return d_in_; }
  index_t d_out() const { return d_out_; }
  index_t rank() const { return r_; }
  T scaling() const { return scaling_; }
  CurvatureMode curvature_mode() const { return curv_mode_; }
  ScaleMode scale_mode() const { return scale_mode_; }
  static constexpr const char* variant_name() { return Variant::name; }
  static_assert(Variant::has_lift == Variant::has_lower, "a variant lifts and lowers, or does neither");

  /// Dropout masks are drawn from (seed, call counter); tests rewind the counter to replay a mask.
  std::uint64_t dropout_calls() const { return dropout_calls_; }
  void set_dropout_calls(std::uint64_t c) { dropout_calls_ = c; }

  /// Current curvature scale K (>0). Variants that do not use it report the configured K_init,
  /// which enters none of their maps.
  T K() const {
    if (curv_mode_ == CurvatureMode::learnable)
      return LearnableCurvature<T>::from_raw(Backend::read(cptr() + layout_.curvature), T(cfg_.K_min)).K();
    if (curv_mode_ == CurvatureMode::shared) return shared_policy().K();
    return fixed_K_;
  }
  /// Current input norm scale s (1 when the variant has none).
  T norm_scale() const {
    return scale_mode_ == ScaleMode::learnable ? Backend::read(cptr() + layout_.scale) : fixed_s_;
  }
  /// Use a curvature shared by several adapters (the config must say CurvatureMode::shared). A
  /// variant without a curvature (lora, lora_scaled) accepts the call and ignores it, so that code
  /// looping over variants with one config needs no case for them.
  void set_shared_curvature(SharedCurvature<T>* shared) {
    if (cfg_.curvature != CurvatureMode::shared)
      throw std::logic_error(std::string("Adapter<") + Variant::name +
                             ">::set_shared_curvature: adapter was not configured with CurvatureMode::shared");
    if (!shared) throw std::invalid_argument("Adapter::set_shared_curvature: null pointer");
    if (curv_mode_ == CurvatureMode::shared) shared_ = shared;
  }

  // ---- flat parameter / gradient buffers ---------------------------------------------------------
  T* params() { return Backend::data(params_); }
  const T* params() const { return Backend::data(params_); }
  T* grads() { return Backend::data(grads_); }
  const T* grads() const { return Backend::data(grads_); }
  index_t num_params() const { return layout_.total; }
  const ParamLayout& layout() const { return layout_; }
  T* A() { return params() + layout_.A; }
  T* B() { return params() + layout_.B; }
  T* dA() { return grads() + layout_.A; }
  T* dB() { return grads() + layout_.B; }
  std::vector<NamedParam> named_params() const {
    std::vector<NamedParam> v{{"lora_A", layout_.A, r_, d_in_}, {"lora_B", layout_.B, d_out_, r_}};
    if (layout_.curvature >= 0) v.push_back({"curvature_raw", layout_.curvature, 1, 1});
    if (layout_.scale >= 0) v.push_back({"norm_scale", layout_.scale, 1, 1});
    return v;
  }
  void zero_grad() { Backend::fill(grads(), layout_.total, T(0)); }
  std::vector<T> params_to_host() const { return to_host(params(), layout_.total); }
  std::vector<T> grads_to_host() const { return to_host(grads(), layout_.total); }
  void params_from_host(const std::vector<T>& p) {
    if (index_t(p.size()) != layout_.total)
      throw std::invalid_argument("Adapter::params_from_host: expected " + std::to_string(layout_.total) +
                                  " values, got " + std::to_string(p.size()));
    for (T x : p)
      if (!std::isfinite(double(x))) throw std::invalid_argument("Adapter::params_from_host: non-finite parameter");
    if (layout_.scale >= 0 && !scale_usable(p[layout_.scale]))
      throw std::invalid_argument("Adapter::params_from_host: norm scale must be positive with a finite 1/s, got " +
                                  format_number(double(p[layout_.scale])));
    Backend::copy_from_host(p.data(), layout_.total, params());
  }

  /// A Kaiming-uniform as PEFT (a = sqrt(5): bound = 1/sqrt(d_in)), B = 0, k and s at their initial values.
  void reset_parameters() {
    std::vector<T> p(std::size_t(layout_.total), T(0));
    const double bound = 1.0 / std::sqrt(double(d_in_));
    for (index_t i = 0; i < layout_.A_size; ++i)
      p[std::size_t(layout_.A + i)] = T((2.0 * uniform01(cfg_.seed, ~std::uint64_t(0), std::uint64_t(i)) - 1.0) * bound);
    if (layout_.curvature >= 0)
      p[std::size_t(layout_.curvature)] =
          Variant::paper ? T(cfg_.paper_k_init) : LearnableCurvature<T>(T(cfg_.K_init), T(cfg_.K_min)).raw();
    if (layout_.scale >= 0) p[std::size_t(layout_.scale)] = T(cfg_.resolved_scale_init());
    Backend::copy_from_host(p.data(), layout_.total, params());
  }

  // ---- forward / backward ---------------------------------------------------------------------
  /// Y += (alpha/r) Delta(X) for n rows. `training` applies dropout (seeded, fresh mask per call).
  void forward_branch(const T* X, T* Y, index_t n, bool training) {
    check_ptrs(X, Y, n, "forward_branch");
    reserve(n);
    const T Kv = current_K();
    in_ = input_map(training);
    last_n_ = n;
    const bool drop = in_.p > T(0);
    const T* Uin = X;
    T zalpha = in_.inv_s;
    rank_space_ = Variant::has_lift && !drop;
    if (n == 0) return;  // no rows: Y is untouched (and no r x r product is formed)
    programs_ = uses_row_programs() && !drop && (Variant::has_lift || (!Variant::has_lower && scale_mode_ != ScaleMode::learnable));
    if (programs_) {
      forward_programs(X, Y, n, Kv);
      return;
    }
    if constexpr (Variant::has_lift) {
      if (!drop) {  // rank-space evaluation (row_kernels.hpp): no d-sized intermediate
        // G = B^T B (r x r);  Za = X A^T;  Pa = Za G;  per row: m, W = scale h z;  Y += W B^T
        gram_rows<Backend>(B(), d_out_, r_, buf(G_));
        // per row: |x|^2 and q2 = a.(G a) (row data);  lift and lower factors (two scalars per row);  W
        const bool fused = fuses_rank_rows<Backend> && r_ <= fused_rank_max;
        const bool norms_fused = fused && d_in_ <= row_pass_fuse_max<Backend>();  // |x|^2 in the rows' kernel
        project_rows<Backend>(X, n, d_in_, A(), r_, T(1), buf(Za_), norms_fused ? nullptr : buf(rowN_));  // Za, |x|^2
        const kernels::RankFactorRows<Variant, T> factor{buf(rowN_), buf(rowQ2_), buf(liftF_), buf(lowerF_),
                                                         buf(rowW_), n, in_.inv_s, scaling_, Kv, ms_};
        // W (and under fusion Pa, q2, the factors) by row functors with the rank unrolled (8/16/32)
        kernels::with_rank(r_, [&](auto R) {
          const kernels::RankScaleRows<T, decltype(R)::value> scale{buf(Za_), buf(rowW_), buf(W_), r_};
          if (fused) {
            const kernels::RankForwardRows<Variant, T, decltype(R)::value> rows{buf(Za_), buf(G_), buf(Pa_), buf(rowQ2_), r_, factor, scale};
            if constexpr (fuses_row_passes<Backend>) {
              if (norms_fused) {
                Backend::row_dots_then_rows(X, n, d_in_, buf(rowN_), rows);
                return;
              }
            }
            Backend::for_rows(n, rows, r_ * r_);
          } else {
            quadratic_rows<Backend>(buf(Za_), n, r_, buf(G_), buf(Pa_), buf(rowQ2_));
            Backend::for_rows_simd(n, factor);
            Backend::for_rows(n, scale, r_);
          }
        });
        if (rank_space_in_range(n)) {
          expand_rows_add_transposed<Backend>(buf(W_), n, r_, T(1), B(), d_out_, Y);  // Y += W B^T
          return;
        }
        // A row beyond the rank-space form's range (|x|^2 or q2 = |A x|_G^2 overflows T: |x| > ~1e19
        // in float): this call takes the explicit lift, whose norms are rescaled (row_norm); Y is
        // untouched so far. It returned a branch of 0 for such a row (and a NaN dX in float).
        rank_space_ = false;
        widen(n);
      }
      Backend::for_rows(n, kernels::LiftRows<Variant, T>{X, buf(U_), d_in_, in_, Kv, ms_}, d_in_);
      Uin = buf(U_);
      zalpha = T(1);
    } else if (drop) {
      Backend::for_rows(n, kernels::DropoutRows<T>{X, buf(U_), d_in_, in_}, d_in_);
      Uin = buf(U_);
    }
    last_zalpha_ = zalpha;
    // Z = zalpha U A^T  (n x r)
    project_rows<Backend>(Uin, n, d_in_, A(), r_, zalpha, buf(Z_), static_cast<T*>(nullptr));
    if constexpr (Variant::has_lower) {
      Backend::gemm(false, true, n, d_out_, r_, T(1), buf(Z_), r_, B(), r_, T(0), buf(Yb_), d_out_);
      Backend::for_rows(n, kernels::LowerRows<Variant, T>{buf(Yb_), Y, d_out_, scaling_, Kv, ms_}, d_out_);
    } else {
      expand_rows_add_transposed<Backend>(buf(Z_), n, r_, scaling_, B(), d_out_, Y);  // Y += scaling Z B^T
    }
  }

  /// Accumulates dA, dB, dk, ds from dY (n x d_out) and adds the branch's part to dX (n x d_in;
  /// nullptr: not needed). X must be the X of the preceding forward_branch (same n).
  void backward_branch(const T* X, const T* dY, T* dX, index_t n) {
    check_ptrs(X, dY, n, "backward_branch");
    require_forward_of(n, "backward_branch");
    if (n == 0) return;  // no rows: nothing to accumulate
    const T Kv = current_K();
    T* rowK = buf(rowK_);
    T* rows = buf(rows_);
    if (programs_) {
      backward_programs(X, dY, dX, n);
      return;
    }
    if constexpr (Variant::has_lift) {
      if (rank_space_) {
        backward_rank_space(X, dY, dX, n);
        return;
      }
    }
    const T* G = dY;
    T galpha = scaling_;
    if constexpr (Variant::has_lower) {
      Backend::for_rows(n, kernels::LowerVjpRows<Variant, T>{buf(Yb_), dY, buf(dYb_), rowK, d_out_, scaling_, Kv, ms_}, d_out_);
      G = buf(dYb_);
      galpha = T(1);
    }
    // dB += galpha G^T Z;  dZ = galpha G B
    Backend::gemm(true, false, d_out_, r_, n, galpha, G, d_out_, buf(Z_), r_, T(1), dB(), r_);
    Backend::gemm(false, false, n, r_, d_out_, galpha, G, d_out_, B(), r_, T(0), buf(dZ_), r_);
    const T* Uin = (Variant::has_lift || in_.p > T(0)) ? buf(U_) : X;
    // dA += zalpha dZ^T U
    Backend::gemm(true, false, r_, d_in_, n, last_zalpha_, buf(dZ_), r_, Uin, d_in_, T(1), dA(), d_in_);
    T dK_total = T(0), ds_total = T(0);
    if constexpr (Variant::has_lift) {
      Backend::gemm(false, false, n, d_in_, r_, T(1), buf(dZ_), r_, A(), d_in_, T(0), buf(dU_), d_in_);
      Backend::for_rows(n, kernels::LiftVjpRows<Variant, T>{X, buf(dU_), dX, rowK, rows, d_in_, in_, Kv, ms_}, d_in_);
      dK_total = Backend::sum(rowK, n);
      ds_total = Backend::sum(rows, n);
    } else {
      if (scale_mode_ == ScaleMode::learnable) {  // Z = U A^T / s: ds = -(1/s) <dZ, Z>
        Backend::for_rows(n, kernels::RowDotRows<T>{buf(dZ_), buf(Z_), rows, r_, -in_.inv_s}, r_);
        ds_total = Backend::sum(rows, n);
      }
      if (dX) {
        if (in_.p > T(0)) {
          Backend::gemm(false, false, n, d_in_, r_, T(1), buf(dZ_), r_, A(), d_in_, T(0), buf(dU_), d_in_);
          Backend::for_rows(n, kernels::MaskedAddRows<T>{buf(dU_), dX, d_in_, in_}, d_in_);
        } else {
          expand_rows_add<Backend>(buf(dZ_), n, r_, in_.inv_s, A(), d_in_, X, static_cast<const T*>(nullptr), dX);
        }
      }
    }
    accumulate_scalar_grads(dK_total, ds_total);
  }

  /// Full layer: Y = X W^T + bias + (alpha/r) Delta(X). W is d_out x d_in (frozen), bias may be null.
  void forward(const T* W, const T* bias, const T* X, T* Y, index_t n, bool training) {
    check_ptrs(X, Y, n, "forward");
    if (!W) throw std::invalid_argument("Adapter::forward: W is null");
    if (n == 0) {
      forward_branch(X, Y, n, training);
      return;
    }
    Backend::set_rows(Y, bias, n, d_out_);
    Backend::gemm(false, true, n, d_out_, d_in_, T(1), X, d_in_, W, d_in_, T(1), Y, d_out_);
    forward_branch(X, Y, n, training);
  }
  /// Full layer backward: dX += dY W + branch part (dX may be null); dW += dY^T X and dbias += sum
  /// of dY rows when given (full fine-tuning); adapter grads accumulated.
  void backward(const T* W, const T* X, const T* dY, T* dX, index_t n, T* dW = nullptr, T* dbias = nullptr) {
    check_ptrs(X, dY, n, "backward");
    require_forward_of(n, "backward");  // before any output is touched
    if (n == 0) return;
    // and the curvature, which backward_branch needs: a raw curvature made NaN between forward and
    // backward threw there after dX and dW had taken dY W and dY^T X
    if constexpr (Variant::uses_curvature) (void)current_K();
    if (dX) {
      if (!W) throw std::invalid_argument("Adapter::backward: W is null but dX was requested");
      Backend::gemm(false, false, n, d_in_, d_out_, T(1), dY, d_out_, W, d_in_, T(1), dX, d_in_);
    }
    if (dW) Backend::gemm(true, false, d_out_, d_in_, n, T(1), dY, d_out_, X, d_in_, T(1), dW, d_in_);
    if (dbias) Backend::for_rows(d_out_, kernels::ColumnSum<T>{dY, dbias, n, d_out_}, n);
    backward_branch(X, dY, dX, n);
  }

  /// Rows the activation buffers currently hold without reallocating.
  index_t capacity() const { return capacity_; }
  /// Sizes the buffers for n rows (done automatically by forward when n grows).
  /// Growing the buffers drops the activations of the last forward: a backward must follow a new
  /// forward then (it throws otherwise).
  void reserve(index_t n) {
    if (n <= capacity_) return;
    last_n_ = -1;
    // d-sized buffers only where dropout needs the masked input (rank-space evaluation otherwise)
    if (cfg_.dropout > 0.0) widen(n);
    Backend::resize(Z_, n * r_);
    Backend::resize(dZ_, n * r_);
    if (Variant::has_lift) {
      Backend::resize(Za_, n * r_);
      Backend::resize(Pa_, n * r_);
      Backend::resize(W_, n * r_);
      Backend::resize(Zc_, n * r_);
      Backend::resize(dZs_, n * r_);
      Backend::resize(rowN_, n);
      Backend::resize(rowE_, n);
      Backend::resize(rowQ2_, n);
      if constexpr (!fuses_rank_rows<Backend>) {  // the three-pass VJP rows (kernels::RankVjpScalars)
        Backend::resize(rowZq_, n);
        Backend::resize(rowCa2_, n);
        Backend::resize(rowHa_, n);
      }
      Backend::resize(rowW_, n);
      Backend::resize(liftF_, 3 * n);
      Backend::resize(lowerF_, 3 * n);
      Backend::resize(G_, r_ * r_);
      Backend::resize(M_, r_ * r_);
      // the row programs' dB_rows (n x d_out; RankBackwardProgram)
      if (uses_row_programs()) Backend::resize(dYb_, n * d_out_);
    }
    Backend::resize(rowK_, n);
    Backend::resize(rows_, n);
    capacity_ = n;
  }

 private:
  /// The d-sized buffers of the explicit maps (the masked or lifted input U, the lower map's input
  /// Yb and their gradients) for n rows: with dropout, or for a call beyond the rank-space range.
  void widen(index_t n) {
    if (n <= wide_capacity_) return;
    Backend::resize(U_, n * d_in_);
    Backend::resize(dU_, n * d_in_);
    if (Variant::has_lower) { Backend::resize(Yb_, n * d_out_); Backend::resize(dYb_, n * d_out_); }
    wide_capacity_ = n;
  }
  /// Whether every row's n = |x|/s and q2 of the rank-space forward are finite. Not checked on a
  /// CUDA device: the read would synchronise (and break a graph capture).
  bool rank_space_in_range(index_t n) {
    if constexpr (backend_on_cuda<Backend>) {
      return true;
    } else {
      return vec::all_finite(buf(rowN_), n) && vec::all_finite(buf(rowQ2_), n);
    }
  }

 private:
  const T* cptr() const { return Backend::data(params_); }
  T* buf(vector_type& v) { return Backend::data(v); }
  static std::vector<T> to_host(const T* p, index_t n) {
    std::vector<T> h(static_cast<std::size_t>(n));
    Backend::copy_to_host(p, n, h.data());
    return h;
  }
  LearnableCurvature<T> shared_policy() const {
    if (!shared_) throw std::logic_error("Adapter: CurvatureMode::shared but set_shared_curvature() was not called");
    return LearnableCurvature<T>::from_raw(shared_->raw, shared_->K_min);
  }
  T current_K() const {
    T k;
    try {
      k = K();
    } catch (const std::invalid_argument& e) {  // a learned raw curvature that went NaN: name the parameter
      throw std::invalid_argument(std::string("Adapter<") + Variant::name + ">: " +
                                  (curv_mode_ == CurvatureMode::shared ? "the shared curvature's raw value"
                                                                       : "parameter curvature_raw") +
                                  " gives no curvature: " + e.what());
    }
    if (!(k > T(0)) || !std::isfinite(double(k)))
      throw std::invalid_argument(std::string("Adapter<") + Variant::name + ">: curvature K is not positive/finite");
    return k;
  }
  kernels::InputMap<T> input_map(bool training) {
    kernels::InputMap<T> m;
    const T s = norm_scale();
    if (!scale_usable(s))
      throw std::invalid_argument(std::string("Adapter<") + Variant::name +
                                  ">: norm scale s must be positive and finite with a finite 1/s, got " +
                                  format_number(double(s)));
    m.inv_s = T(1) / s;
    m.seed = cfg_.seed;
    if (training && cfg_.dropout > 0.0) {
      m.p = T(cfg_.dropout);
      m.stream = ++dropout_calls_;
    }
    return m;
  }
  // ---- row programs (row_programs.hpp): one kernel per branch pass for short rows ---------------
  /// Row length the programs' lanes are chosen for.
  index_t program_row_length() const { return std::max(d_in_, d_out_); }
  /// Whether this adapter's shapes take the backend's row programs (dropout and a learnable LoRA
  /// scale aside, which forward_branch checks).
  bool uses_row_programs() const {
    if constexpr (runs_row_programs<Backend>)
      return r_ <= kernels::max_program_rank && d_in_ <= Backend::row_program_max && d_out_ <= Backend::row_program_max;
    else
      return false;
  }
  /// f(rank) with the rank as kernels::with_rank gives it, for the ranks the programs take (the
  /// others, 32 at compile time, are not instantiated: uses_row_programs() excludes them).
  template <class F>
  void with_program_rank(F&& f) {
    kernels::with_rank(r_, [&](auto rank) {
      if constexpr (decltype(rank)::value <= kernels::max_program_rank) f(rank);
    });
  }
  /// Forward of the branch as one program: the rank-space forward (radial variants) or z = A x / s,
  /// y += scaling B z (LoRA-type variants).
  void forward_programs(const T* X, T* Y, index_t n, T Kv) {
    if constexpr (runs_row_programs<Backend>) {
      const index_t len = program_row_length();
      with_program_rank([&](auto rank) {
        constexpr index_t R = decltype(rank)::value;
        if constexpr (Variant::has_lift) {
          const kernels::RankFactorRows<Variant, T> factor{buf(rowN_), buf(rowQ2_), buf(liftF_), buf(lowerF_),
                                                           buf(rowW_), n, in_.inv_s, scaling_, Kv, ms_};
          Backend::run_row_program(n, len, kernels::RankForwardProgram<Variant, T, R>{X, A(), B(), Y, buf(Za_), buf(Pa_), buf(rowQ2_),
                                                                                      buf(W_), d_in_, d_out_, r_, factor});
        } else {
          Backend::run_row_program(
              n, len, kernels::LoraForwardProgram<T, R>{X, A(), B(), Y, buf(Z_), d_in_, d_out_, r_, in_.inv_s, scaling_});
        }
      });
    }
    last_zalpha_ = in_.inv_s;
  }
  /// Backward of forward_programs: the program, then dB += dB_rows^T Za (radial; the program's
  /// rows, see kernels::RankBackwardProgram) or dB += scaling dY^T Z (LoRA-type), and
  /// dA += dZs^T X or dA += dZ^T X / s: LoRA's GEMMs in both.
  void backward_programs(const T* X, const T* dY, T* dX, index_t n) {
    if constexpr (runs_row_programs<Backend>) {
      const index_t len = program_row_length();
      with_program_rank([&](auto rank) {
        constexpr index_t R = decltype(rank)::value;
        if constexpr (Variant::has_lift) {
          const kernels::RankVjpRows<Variant, T, R> rows{nullptr, buf(Za_), buf(Pa_), buf(rowQ2_), buf(rowN_),
                                                         buf(liftF_), buf(lowerF_), nullptr, buf(dZs_), buf(rowE_),
                                                         buf(rowK_), buf(rows_), r_, n, in_.inv_s};
          Backend::run_row_program(n, len, kernels::RankBackwardProgram<Variant, T, R>{X, dY, dX, A(), B(), buf(rowW_), buf(dYb_),
                                                                                       d_in_, d_out_, scaling_, rows});
        } else {
          Backend::run_row_program(
              n, len, kernels::LoraBackwardProgram<T, R>{dY, A(), B(), buf(dZ_), dX, d_in_, d_out_, r_, scaling_, in_.inv_s});
        }
      });
      if constexpr (Variant::has_lift) {
        Backend::gemm(true, false, d_out_, r_, n, T(1), buf(dYb_), d_out_, buf(Za_), r_, T(1), dB(), r_);
        Backend::gemm(true, false, r_, d_in_, n, T(1), buf(dZs_), r_, X, d_in_, T(1), dA(), d_in_);
        accumulate_rank_space_scalar_grads(n);
      } else {
        Backend::gemm(true, false, d_out_, r_, n, scaling_, dY, d_out_, buf(Z_), r_, T(1), dB(), r_);
        Backend::gemm(true, false, r_, d_in_, n, last_zalpha_, buf(dZ_), r_, X, d_in_, T(1), dA(), d_in_);
        // a learnable scale does not take the programs: no ds here
      }
    }
  }

  /// Backward of the rank-space forward (see kernels::RankVjpRows for the formulas).
  void backward_rank_space(const T* X, const T* dY, T* dX, index_t n) {
    // Q = scaling dY B  (rows q_i = B^T g_i, g = scaling dY)
    Backend::gemm(false, false, n, r_, d_out_, scaling_, dY, d_out_, B(), r_, T(0), buf(dZ_), r_);
    // dX += e x in the VJP rows' kernel where the backend fuses short rows (otherwise a pass below)
    const bool ex_fused = dX && fuses_rank_rows<Backend> && d_in_ <= row_pass_fuse_max<Backend>();
    kernels::with_rank(r_, [&](auto R) {
      const kernels::RankVjpRows<Variant, T, decltype(R)::value> rows{buf(dZ_), buf(Za_), buf(Pa_), buf(rowQ2_), buf(rowN_),
                                                                      buf(liftF_), buf(lowerF_), buf(Zc_), buf(dZs_), buf(rowE_),
                                                                      buf(rowK_), buf(rows_), r_, n, in_.inv_s};
      bool have_M = false;
      if constexpr (fuses_rank_rows<Backend>) {  // one call per row (CUDA), with dX += e x for short rows
        bool done = false;
        if constexpr (fuses_row_passes<Backend>) {
          if (ex_fused) {
            Backend::rows_then_add_scaled(n, rows, X, buf(rowE_), dX, d_in_);
            done = true;
          }
        }
        if (!done) Backend::for_rows(n, rows, r_ * r_);
      } else {  // the dot, the scalars across rows on the vector unit, then the rank rows
        constexpr index_t Rc = decltype(R)::value;
        rank_dots<Backend>(buf(Za_), buf(dZ_), n, r_, buf(rowZq_));
        Backend::for_rows_simd(n, kernels::RankVjpScalars<Variant, T, Rc>{rows, buf(rowZq_), buf(rowCa2_), buf(rowHa_)});
        // dZs and M = Za^T Zc in one pass where the backend has the kernel (backend::Cpu; Zc not formed)
        if constexpr (requires { Backend::vjp_combine_rows(buf(dZ_), buf(Za_), buf(Pa_), buf(rowCa2_), buf(rowHa_), n, r_, buf(dZs_), buf(M_)); })
          have_M = Backend::vjp_combine_rows(buf(dZ_), buf(Za_), buf(Pa_), buf(rowCa2_), buf(rowHa_), n, r_, buf(dZs_), buf(M_));
        if (!have_M)
          Backend::for_rows(n, kernels::RankVjpCombineRows<T, Rc>{buf(dZ_), buf(Za_), buf(Pa_), buf(rowCa2_), buf(rowHa_), buf(Zc_), buf(dZs_), r_}, r_);
      }
      // M = Za^T Zc  (r x r)
      if (!have_M) Backend::gemm(true, false, r_, r_, n, T(1), buf(Za_), r_, buf(Zc_), r_, T(0), buf(M_), r_);
    });
    // dB += dY^T W + B M   (W = scaling h z, kept from the forward; M = Za^T Zc = Z^T (c Z), above)
    Backend::gemm(true, false, d_out_, r_, n, T(1), dY, d_out_, buf(W_), r_, T(1), dB(), r_);
    rows_times_add<Backend>(B(), d_out_, r_, buf(M_), dB());
    // dA += dZs^T X;  dX += dZs A + diag(e) X
    Backend::gemm(true, false, r_, d_in_, n, T(1), buf(dZs_), r_, X, d_in_, T(1), dA(), d_in_);
    if (dX) {
      expand_rows_add<Backend>(buf(dZs_), n, r_, T(1), A(), d_in_, X, ex_fused ? nullptr : buf(rowE_), dX);
    }
    accumulate_rank_space_scalar_grads(n);
  }
  /// The K and s gradients of the rank-space backward from its per-row terms (rowK_, rows_),
  /// summed only where a gradient takes them (a sum is a device round trip on a GPU).
  void accumulate_rank_space_scalar_grads(index_t n) {
    const bool need_dK = Variant::uses_curvature && curv_mode_ != CurvatureMode::fixed;
    const bool need_ds = layout_.scale >= 0;
    accumulate_scalar_grads(need_dK ? Backend::sum(buf(rowK_), n) : T(0), need_ds ? Backend::sum(buf(rows_), n) : T(0));
  }
  /// A norm scale the maps can divide by: positive, finite, 1/s finite (no subnormal s).
  static bool scale_usable(T s) { return s > T(0) && std::isfinite(double(s)) && std::isfinite(double(T(1) / s)); }
  /// backward must follow the forward of the same n, with the activations it kept still in place.
  void require_forward_of(index_t n, const char* who) const {
    if (last_n_ < 0)
      throw std::logic_error(std::string("Adapter::") + who +
                             ": no forward to go back through (none yet, or reserve() grew the buffers since)");
    if (n != last_n_)
      throw std::logic_error(std::string("Adapter::") + who + ": n = " + std::to_string(n) +
                             " differs from the preceding forward (" + std::to_string(last_n_) + ")");
  }
  void check_ptrs(const T* a, const T* b, index_t n, const char* who) const {
    if (n < 0) throw std::invalid_argument(std::string("Adapter::") + who + ": negative row count");
    if (n > 0 && (!a || !b)) throw std::invalid_argument(std::string("Adapter::") + who + ": null input/output pointer");
  }
  void accumulate_scalar_grads(T dK, T ds) {
    if (Variant::uses_curvature && curv_mode_ != CurvatureMode::fixed) {
      const auto pol = curv_mode_ == CurvatureMode::shared
                           ? shared_policy()
                           : LearnableCurvature<T>::from_raw(Backend::read(cptr() + layout_.curvature), T(cfg_.K_min));
      T dk = dK * pol.dK_dparam();
      if (Variant::paper) dk = math::clamp(dk, T(-cfg_.paper_k_grad_clip), T(cfg_.paper_k_grad_clip));
      if (curv_mode_ == CurvatureMode::shared) shared_->grad += dk;
      else Backend::write(grads() + layout_.curvature, Backend::read(grads() + layout_.curvature) + dk);
    }
    if (layout_.scale >= 0) Backend::write(grads() + layout_.scale, Backend::read(grads() + layout_.scale) + ds);
  }

  AdapterConfig cfg_;
  index_t d_in_ = 0, d_out_ = 0, r_ = 0;
  T scaling_ = T(1);
  ScaleMode scale_mode_ = ScaleMode::none;
  CurvatureMode curv_mode_ = CurvatureMode::fixed;
  T fixed_s_ = T(1), fixed_K_ = T(1);
  MapSettings<T> ms_;
  SharedCurvature<T>* shared_ = nullptr;
  ParamLayout layout_;
  vector_type params_, grads_;
  vector_type U_, dU_, Z_, dZ_, Yb_, dYb_, rowK_, rows_;
  // rank-space evaluation of the radial variants: Za = X A^T, Pa = Za G, W = scaling h z (forward and
  // backward), Zc = c a^2 Za, dZs = (f/s) dz, per-row n, e, q2 = Za_i.Pa_i, scale h f/s, the lift and
  // lower factors (f, f'(v)/v, df/dK: three arrays of n each, kernels::store_factor), and the r x r
  // matrices G = B^T B and Za^T Zc = Z^T (c Z)
  vector_type Za_, Pa_, W_, Zc_, dZs_, rowN_, rowE_, rowQ2_, rowW_, liftF_, lowerF_, G_, M_;
  vector_type rowZq_, rowCa2_, rowHa_;  // the three-pass VJP rows (backends without fuse_rank_rows)
  bool rank_space_ = false;
  bool programs_ = false;  // the last forward ran as row programs (the backward does too)
  index_t capacity_ = 0, wide_capacity_ = 0;
  index_t last_n_ = -1;
  T last_zalpha_ = T(1);
  kernels::InputMap<T> in_;
  std::uint64_t dropout_calls_ = 0;
};

}  // namespace hyplora::adapter
