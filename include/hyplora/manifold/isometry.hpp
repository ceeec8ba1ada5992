#pragma once
// Isometries between the Lorentz model H^d_K and the Poincare ball B^d_c, c = 1/K (SPEC section 1):
//   Lorentz -> ball:  p = sqrt K x_s / (sqrt K + x_0)
//   ball -> Lorentz:  x_0 = sqrt K (K + |p|^2) / (K - |p|^2),  x_s = 2 K p / (K - |p|^2)
// d = intrinsic dimension: x has d+1 coordinates (time first), p has d. K - |p|^2 is clamped to
// >= K eps so the map stays finite on the boundary. VJPs accumulate and return dL/dK.

#include <cmath>

#include "hyplora/core/config.hpp"
#include "hyplora/core/constants.hpp"
#include "hyplora/manifold/lorentz.hpp"
#include "hyplora/manifold/poincare.hpp"
#include "hyplora/manifold/vector_ops.hpp"

namespace hyplora {

template <class T>
HYPLORA_INLINE void lorentz_to_poincare(T K, const T* x, T* p, index_t d) {
  const T sK = std::sqrt(K), s = sK / (sK + x[0]);
  for (index_t i = 0; i < d; ++i) p[i] = s * x[i + 1];
}
/// gx_s += s g, gx_0 -= sK (x_s.g)/(sK+x_0)^2; dL/dK = (x_s.g) x_0 / (2 sK (sK+x_0)^2).
/// Divided one factor of den at a time: den^2 overflows float for points ~45 sqrt K out, inside the
/// supported range (the K gradient came out NaN there).
template <class T>
HYPLORA_INLINE T lorentz_to_poincare_vjp(T K, const T* x, const T* g, T* gx, index_t d) {
  const T sK = std::sqrt(K), den = sK + x[0], s = sK / den;
  const T xg_den = vec::dot(x + 1, g, d) / den;
  if (gx) {
    gx[0] -= s * xg_den;
    vec::axpy(s, g, gx + 1, d);
  }
  return xg_den * (x[0] / den) / (T(2) * sK);
}

template <class T>
HYPLORA_INLINE void poincare_to_lorentz(T K, const T* p, T* x, index_t d) {
  const T P = vec::sqnorm(p, d), minden = K * Constants<T>::epsilon();
  const T den = K - P > minden ? K - P : minden;
  const T s = T(2) * K / den;
  x[0] = std::sqrt(K) * (K + P) / den;
  for (index_t i = 0; i < d; ++i) x[i + 1] = s * p[i];
}
/// x_0 = sK (K+P)/Den, x_s = 2K p/Den, P = |p|^2, Den = K - P:
/// dx_0/dp = 4 K sK p / Den^2, dx_0/dK = (K+P)/(2 sK Den) - 2 sK P/Den^2;
/// dx_s/dp = 2K/Den I + 4K p p^T/Den^2, dx_s/dK = -2 P p/Den^2.
template <class T>
HYPLORA_INLINE T poincare_to_lorentz_vjp(T K, const T* p, const T* g, T* gp, index_t d) {
  const T P = vec::sqnorm(p, d), minden = K * Constants<T>::epsilon();
  const bool clamped = !(K - P > minden);
  const T den = clamped ? minden : K - P, sK = std::sqrt(K);
  const T pg = vec::dot(p, g + 1, d);
  if (clamped) {  // Den = K eps: x_0 = (K+P)/(sK eps), x_s = 2 p/eps (no K in x_s)
    if (gp)
      for (index_t i = 0; i < d; ++i) gp[i] += T(2) * K / den * g[i + 1] + g[0] * sK * T(2) * p[i] / den;
    // d/dK (K+P)/(sK eps) = (K-P)/(2 K sK eps) = (K-P)/(2 sK Den)
    return g[0] * (K - P) / (T(2) * sK * den);
  }
  if (gp)
    for (index_t i = 0; i < d; ++i)
      gp[i] += T(2) * K / den * g[i + 1] + (T(4) * K * pg / (den * den) + g[0] * T(4) * K * sK / (den * den)) * p[i];
  return g[0] * ((K + P) / (T(2) * sK * den) - T(2) * sK * P / (den * den)) - pg * T(2) * P / (den * den);
}

// Overloads taking the manifolds (their K).
template <class T, class C>
HYPLORA_INLINE void to_poincare(const Lorentz<T, C>& L, const T* x, T* p, index_t d) {
  lorentz_to_poincare(L.K(), x, p, d);
}
template <class T, class C>
HYPLORA_INLINE void to_lorentz(const PoincareBall<T, C>& B, const T* p, T* x, index_t d) {
  poincare_to_lorentz(B.K(), p, x, d);
}

}  // namespace hyplora
