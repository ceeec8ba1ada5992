#pragma once
// Adam's bias corrections, shared by AdamW (adamw.hpp), RiemannianAdam (riemannian.hpp) and the
// trainer's adapter optimiser.

#include <cmath>

namespace hyplora::optim {

/// Adam's bias corrections 1 - beta1^t and 1 - beta2^t, from the betas the moments are updated with,
/// T(beta): with the setting's own double beta they disagree with the moments in float where 1 - beta
/// is near float's rounding (beta2 = 1 - 1e-7 is 1 - 1.19e-7 in float: the first step was 0.92 lr).
template <class T>
struct BiasCorrections {
  T first, second;
};
template <class T>
inline BiasCorrections<T> bias_corrections(T beta1, T beta2, long step) {
  return {T(1 - std::pow(double(beta1), double(step))), T(1 - std::pow(double(beta2), double(step)))};
}

}  // namespace hyplora::optim
