// A small program an outside project could have written against the installed hyplora package:
// map Euclidean vectors onto the hyperboloid and the Poincaré ball, measure distances in both
// models (they agree: the models are isometric), and check the exp/log round trip.
#include <cmath>
#include <cstdio>
#include <hyplora/hyplora.hpp>

int main() {
  using namespace hyplora;
  constexpr index_t d = 8;
  Lorentz<double, RuntimeCurvature<double>> lorentz{RuntimeCurvature<double>(2.0)};  // curvature -1/2
  PoincareBall<double, RuntimeCurvature<double>> ball{RuntimeCurvature<double>(2.0)};

  Rng rng(42);
  double v[d], w[d];
  for (index_t i = 0; i < d; ++i) { v[i] = rng.normal<double>(); w[i] = 0.5 * rng.normal<double>(); }

  // Lorentz: tangent vectors at the origin are stored with d+1 coordinates (time first, 0 here).
  double tv[d + 1] = {0}, tw[d + 1] = {0}, x[d + 1], y[d + 1];
  for (index_t i = 0; i < d; ++i) { tv[i + 1] = v[i]; tw[i + 1] = w[i]; }
  lorentz.expmap0(tv, x, d + 1);
  lorentz.expmap0(tw, y, d + 1);
  lorentz.check_point(x, d + 1, "x");

  // The same tangent vectors in the ball's coordinates at 0: the isometry's differential at o
  // halves them (the ball's metric at 0 is lambda_0^2 = 4 times the Euclidean one).
  double hv[d], hw[d], p[d], q[d];
  for (index_t i = 0; i < d; ++i) { hv[i] = v[i] / 2; hw[i] = w[i] / 2; }
  ball.expmap0(hv, p, d);
  ball.expmap0(hw, q, d);

  const double dl = lorentz.dist(x, y, d + 1), dp = ball.dist(p, q, d);
  double back[d + 1];
  lorentz.logmap0(x, back, d + 1);
  double err = 0;
  for (index_t i = 0; i < d; ++i) err = std::fmax(err, std::fabs(back[i + 1] - v[i]));

  std::printf("Lorentz distance %.12f, Poincare distance %.12f (same space, K = 2)\n", dl, dp);
  std::printf("exp/log round trip max error %.3e\n", err);
  const bool ok = std::fabs(dl - dp) < 1e-9 * (1 + dl) && err < 1e-12;
  std::printf("%s\n", ok ? "ok" : "MISMATCH");
  return ok ? 0 : 1;
}
