#pragma once
// Embedding norm against token frequency (SPEC section 4): the L2 norm of each input-embedding row,
// grouped in log-spaced bins of the token's count over a corpus. In a hyperbolic reading, frequent
// (general) tokens sit near the origin and rare (specific) ones far out; the paper shows the mean
// norm falling as frequency rises.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "hyplora/core/config.hpp"

namespace hyplora::analysis {

struct FrequencyBin {
  double count_lo = 0, count_hi = 0;  // bin [count_lo, count_hi) (last bin closed)
  index_t tokens = 0;                 // token types in the bin
  double mean_count = 0;
  double mean_norm = 0, std_norm = 0;  // population standard deviation within the bin
};

struct NormFrequency {
  std::vector<FrequencyBin> bins;  // empty bins are kept (tokens = 0) so edges stay log-spaced
  index_t unseen_tokens = 0;       // tokens with count 0
  double unseen_mean_norm = 0, unseen_std_norm = 0;
  double spearman = 0;             // rank correlation of count and norm over seen tokens
  std::vector<double> norms;       // per token
};

namespace detail {
inline std::vector<double> average_ranks(const std::vector<double>& v) {
  std::vector<std::size_t> idx(v.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (std::size_t i = 0; i < idx.size();) {
    std::size_t j = i;
    while (j < idx.size() && v[idx[j]] == v[idx[i]]) ++j;
    const double avg = 0.5 * double(i + j - 1);  // ties share the mean rank
    for (std::size_t k = i; k < j; ++k) r[idx[k]] = avg;
    i = j;
  }
  return r;
}
inline double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = double(a.size());
  double ma = 0, mb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) ma += a[i], mb += b[i];
  ma /= n, mb /= n;
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}
}  // namespace detail

/// Spearman rank correlation (average ranks for ties); 0 when either side is constant.
inline double spearman_correlation(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) throw std::invalid_argument("spearman_correlation: sizes differ");
  if (a.size() < 2) return 0.0;
  return detail::pearson(detail::average_ranks(a), detail::average_ranks(b));
}

/// embeddings: vocab x dim row-major; counts: one per token. Bins: n_bins log-spaced between the
/// smallest and largest positive count.
template <class T>
NormFrequency norm_by_frequency(const T* embeddings, index_t vocab, index_t dim, const std::vector<std::uint64_t>& counts,
                                index_t n_bins = 12) {
  if (index_t(counts.size()) != vocab)
    throw std::invalid_argument("norm_by_frequency: " + std::to_string(counts.size()) + " counts for a vocabulary of " +
                                std::to_string(vocab));
  if (n_bins < 1) throw std::invalid_argument("norm_by_frequency: n_bins must be at least 1");
  if (vocab < 1 || dim < 1) throw std::invalid_argument("norm_by_frequency: empty embedding matrix");
  NormFrequency out;
  out.norms.resize(std::size_t(vocab));
  for (index_t t = 0; t < vocab; ++t) {
    double s = 0;
    for (index_t k = 0; k < dim; ++k) s += double(embeddings[t * dim + k]) * double(embeddings[t * dim + k]);
    if (!std::isfinite(s))
      throw std::invalid_argument("norm_by_frequency: embedding row " + std::to_string(t) + " is not finite");
    out.norms[std::size_t(t)] = std::sqrt(s);
  }
  std::uint64_t cmin = 0, cmax = 0;
  for (auto c : counts)
    if (c > 0) cmin = cmin == 0 ? c : std::min(cmin, c), cmax = std::max(cmax, c);
  const double llo = cmin > 0 ? std::log(double(cmin)) : 0.0, lhi = cmax > 0 ? std::log(double(cmax)) : 0.0;
  // The edges are computed once and a token goes to the bin whose reported edges hold its count.
  // Before, the bin came from its own formula, which rounded differently: count 4 of {1, 4, 1024}
  // in 5 bins went to the bin reported as [1, 4), and the first and last edges missed the smallest
  // and largest counts by an ulp (audit of 2026-11-29). The outer edges are those counts; an inner
  // edge within rounding of an integer is that integer (exp(log 1024 / 5) = 4 up to rounding).
  std::vector<double> edges(std::size_t(n_bins) + 1);
  for (index_t b = 0; b <= n_bins; ++b) {
    double e = std::exp(llo + (lhi - llo) * double(b) / double(n_bins));
    const double r = std::round(e);
    if (std::abs(e - r) <= 1e-12 * e) e = r;
    edges[std::size_t(b)] = e;
  }
  edges.front() = double(cmin);
  edges.back() = double(cmax);
  out.bins.resize(std::size_t(n_bins));
  for (index_t b = 0; b < n_bins; ++b) {
    out.bins[std::size_t(b)].count_lo = edges[std::size_t(b)];
    out.bins[std::size_t(b)].count_hi = edges[std::size_t(b) + 1];
  }
  std::vector<double> sum(std::size_t(n_bins), 0), sum2(std::size_t(n_bins), 0), csum(std::size_t(n_bins), 0);
  double us = 0, us2 = 0;
  std::vector<double> seen_counts, seen_norms;
  for (index_t t = 0; t < vocab; ++t) {
    const double nv = out.norms[std::size_t(t)];
    const auto c = counts[std::size_t(t)];
    if (c == 0) {
      ++out.unseen_tokens, us += nv, us2 += nv * nv;
      continue;
    }
    seen_counts.push_back(double(c));
    seen_norms.push_back(nv);
    // the last bin whose lower edge is <= c (bins [lo, hi), the last one closed); all in bin 0
    // when every seen token has the same count
    const index_t b = lhi > llo ? index_t(std::upper_bound(edges.begin() + 1, edges.end() - 1, double(c)) -
                                          (edges.begin() + 1))
                                : 0;
    auto& bin = out.bins[std::size_t(b)];
    ++bin.tokens;
    sum[std::size_t(b)] += nv, sum2[std::size_t(b)] += nv * nv, csum[std::size_t(b)] += double(c);
  }
  for (index_t b = 0; b < n_bins; ++b) {
    auto& bin = out.bins[std::size_t(b)];
    if (bin.tokens == 0) continue;
    const double k = double(bin.tokens);
    bin.mean_norm = sum[std::size_t(b)] / k;
    bin.std_norm = std::sqrt(std::max(0.0, sum2[std::size_t(b)] / k - bin.mean_norm * bin.mean_norm));
    bin.mean_count = csum[std::size_t(b)] / k;
  }
  if (out.unseen_tokens > 0) {
    out.unseen_mean_norm = us / double(out.unseen_tokens);
    out.unseen_std_norm =
        std::sqrt(std::max(0.0, us2 / double(out.unseen_tokens) - out.unseen_mean_norm * out.unseen_mean_norm));
  }
  out.spearman = spearman_correlation(seen_counts, seen_norms);
  return out;
}

}  // namespace hyplora::analysis
