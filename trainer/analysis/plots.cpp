#include "analysis/plots.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "util/plot.hpp"

namespace hyplora::analysis_cli {

namespace fs = std::filesystem;

namespace {
std::string g(double v) {
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}
}  // namespace

RenderedPlot render_gnuplot(const std::string& name, const fs::path& image, const std::string& body) {
  const auto p = util::render_gnuplot(image, "set terminal pngcairo size 800,560 font \",11\"", body);
  RenderedPlot r;
  r.name = name;
  r.image = p.image;
  r.script = p.script;
  r.rendered = p.rendered;
  r.message = p.message;
  return r;
}

std::vector<RenderedPlot> make_analysis_plots(const fs::path& dir, const std::vector<std::uint64_t>& counts,
                                              const analysis::NormFrequency* nf_ptr, const analysis::PowerLawFit* fit,
                                              const std::vector<double>* rel_ptr) {
  std::vector<RenderedPlot> out;
  // 1. frequency against rank, log-log; the fitted law as expected rank of each count in the tail:
  //    rank(x) = n_tail * P(X >= x) = n_tail * zeta(alpha, x) / zeta(alpha, x_min).
  {
    std::vector<std::uint64_t> c;
    for (auto v : counts)
      if (v > 0) c.push_back(v);
    std::sort(c.rbegin(), c.rend());
    std::ostringstream s;
    s << "$data << EOD\n";
    for (std::size_t r = 0; r < c.size(); ++r) s << r + 1 << " " << c[r] << "\n";
    s << "EOD\n";
    std::string fit_plot;
    if (fit && fit->n_tail > 1) {
      s << "$fit << EOD\n";
      const double zmin = analysis::hurwitz_zeta(fit->alpha, double(fit->x_min));
      const double xmax = double(c.front());
      for (int k = 0; k <= 200; ++k) {
        const double x = std::round(double(fit->x_min) * std::pow(xmax / double(fit->x_min), k / 200.0));
        const double rank = double(fit->n_tail) * analysis::hurwitz_zeta(fit->alpha, x) / zmin;
        s << g(rank) << " " << g(x) << "\n";
      }
      s << "EOD\n";
      std::ostringstream t;
      t << ", $fit using 1:2 with lines lw 2 lc rgb '#d62728' title sprintf('power law fit: alpha = %.3f, x_{min} = %d', "
        << g(fit->alpha) << ", " << fit->x_min << ")";
      fit_plot = t.str();
    }
    s << "set logscale xy\nset xlabel 'rank'\nset ylabel 'count'\nset grid\nset key top right\n"
         "set title 'Token frequency against rank'\n"
         "plot $data using 1:2 with points pt 7 ps 0.5 lc rgb '#1f77b4' title 'token types'"
      << fit_plot << "\n";
    out.push_back(render_gnuplot("frequency_rank", dir / "frequency_rank.png", s.str()));
  }
  if (!nf_ptr) return out;
  const auto& nf = *nf_ptr;
  // 2. norm against frequency: every token (count, norm) and the bin means +- std.
  {
    std::ostringstream s;
    s << "$tokens << EOD\n";
    for (std::size_t t = 0; t < counts.size(); ++t)
      if (counts[t] > 0) s << counts[t] << " " << g(nf.norms[t]) << "\n";
    s << "EOD\n$bins << EOD\n";
    for (const auto& b : nf.bins)
      if (b.tokens > 0) s << g(b.mean_count) << " " << g(b.mean_norm) << " " << g(b.std_norm) << "\n";
    s << "EOD\n";
    s << "set logscale x\nset xlabel 'token count in the corpus'\nset ylabel 'L2 norm of the input embedding'\nset grid\n"
         "set title sprintf('Embedding norm against frequency (Spearman %.3f)', "
      << g(nf.spearman)
      << ")\nplot $tokens using 1:2 with points pt 7 ps 0.4 lc rgb '#aec7e8' title 'token types', "
         "$bins using 1:2:3 with yerrorlines lw 2 pt 7 lc rgb '#d62728' title 'log-spaced bin mean +- std'\n";
    out.push_back(render_gnuplot("norm_frequency", dir / "norm_frequency.png", s.str()));
  }
  // 3. distribution of the per-prompt relative delta (histogram), with the paper's range shaded;
  // none when no prompt was long enough for a delta (an empty histogram at "mean 0" read as a tree)
  if (!rel_ptr || rel_ptr->empty()) return out;
  const auto& rel = *rel_ptr;
  {
    std::ostringstream s;
    const double mean = std::accumulate(rel.begin(), rel.end(), 0.0) / double(rel.size());
    const double lo = std::min(0.0, *std::min_element(rel.begin(), rel.end()));
    const double hi = std::max(0.13, *std::max_element(rel.begin(), rel.end()) * 1.05);
    const int nb = 40;
    const double w = (hi - lo) / nb;
    std::vector<int> h(nb, 0);
    for (double v : rel) h[std::size_t(std::clamp(int((v - lo) / w), 0, nb - 1))]++;
    s << "$hist << EOD\n";
    for (int b = 0; b < nb; ++b) s << g(lo + (b + 0.5) * w) << " " << h[std::size_t(b)] << "\n";
    s << "EOD\n";
    s << "set xlabel 'relative delta 2 delta / diam (per prompt)'\nset ylabel 'prompts'\nset grid\n"
         "set style fill transparent solid 0.5\nset boxwidth "
      << g(w * 0.9)
      << "\nset xrange [" << g(lo) << ":" << g(hi) << "]\nset obj 1 rect from 0.06, graph 0 to 0.12, graph 1 fc rgb '#2ca02c' fs transparent solid 0.15 noborder\n"
         "set arrow 1 from " << g(mean) << ", graph 0 to " << g(mean) << ", graph 1 nohead lw 2 lc rgb '#d62728'\n"
         "set title sprintf('Relative delta per prompt: mean %.3f, %d prompts (green: paper, LLaMA 0.06-0.12)', "
      << g(mean) << ", " << rel.size() << ")\nplot $hist using 1:2 with boxes lc rgb '#1f77b4' title 'prompts'\n";
    out.push_back(render_gnuplot("delta_distribution", dir / "delta_distribution.png", s.str()));
  }
  return out;
}

}  // namespace hyplora::analysis_cli
