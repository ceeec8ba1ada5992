#pragma once
// How an adapter attaches to a linear layer of the model. The model owns the frozen W; an
// attached hook adds its branch:  Y (n x d_out) += Delta(X),  X (n x d_in), row-major.
// The trainer wraps the library's adapter templates (include/hyplora/adapter/) in this interface.
// BasicLinearAdapterHook<T> is the same interface over another scalar (double, for gradient
// checks against finite differences); LinearAdapterHook = BasicLinearAdapterHook<float>.
#include <string>

namespace hyplora::llm {

enum class Module { q, k, v, o, gate, up, down };
inline constexpr int kModuleCount = 7;

inline const char* module_name(Module m) {
  switch (m) {
    case Module::q: return "q_proj";
    case Module::k: return "k_proj";
    case Module::v: return "v_proj";
    case Module::o: return "o_proj";
    case Module::gate: return "gate_proj";
    case Module::up: return "up_proj";
    case Module::down: return "down_proj";
  }
  return "?";
}

template <class T>
class BasicLinearAdapterHook {
 public:
  virtual ~BasicLinearAdapterHook() = default;
  /// Y += Delta(X) for n rows. `training` enables dropout; the hook keeps what backward needs
  /// (the model calls backward with the same X, once per forward, in reverse order of layers).
  virtual void forward(const T* X, T* Y, long n, bool training) = 0;
  /// Given dY (n x d_out): accumulate the hook's parameter gradients, and dX (n x d_in) += dDelta/dX^T dY.
  virtual void backward(const T* X, const T* dY, T* dX, long n) = 0;
};

using LinearAdapterHook = BasicLinearAdapterHook<float>;

}  // namespace hyplora::llm
