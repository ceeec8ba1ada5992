#pragma once
// Plots of `hyplora analyze` through gnuplot (pngcairo): frequency against rank on log axes with
// the fitted power law, mean embedding norm against frequency (log x, per-token points behind), and
// the distribution of the per-prompt relative delta. Each plot's script is kept next to it
// (<name>.png.gp, data inline); images are rendered to a temporary file and renamed.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "hyplora/analysis/norm_frequency.hpp"
#include "hyplora/analysis/power_law.hpp"

namespace hyplora::analysis_cli {

struct RenderedPlot {
  std::string name;
  bool rendered = false;
  std::filesystem::path image, script;
  std::string message;
};

/// Renders a gnuplot script body (no terminal / output lines) to `image` (.png).
RenderedPlot render_gnuplot(const std::string& name, const std::filesystem::path& image, const std::string& body);

std::vector<RenderedPlot> make_analysis_plots(const std::filesystem::path& dir, const std::vector<std::uint64_t>& counts,
                                              const analysis::NormFrequency* nf, const analysis::PowerLawFit* fit,
                                              const std::vector<double>* relative_deltas);
// nf / relative_deltas null: those plots are skipped (frequency-only analysis).

}  // namespace hyplora::analysis_cli
