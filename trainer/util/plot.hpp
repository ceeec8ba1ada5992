#pragma once
// Plots through gnuplot (pngcairo or svg, chosen by the file extension). The script is written
// next to the image (<image>.gp, data inline), so a plot can be redrawn or edited by hand; the
// image itself is rendered to a temporary file and renamed (atomic). Without gnuplot the script
// is still written and render() says so instead of failing the run.
#include <filesystem>
#include <string>
#include <vector>

namespace hyplora::util {

struct PlotSeries {
  std::string title;
  std::vector<double> x, y;
  std::vector<double> y_error;  // optional: error bars (same length as y)
};

struct PlotPanel {
  std::string title, xlabel, ylabel;
  std::vector<PlotSeries> series;
  bool log_y = false;
  double y_min = 0, y_max = 0;  // both 0: automatic
  double x_tics = 0;            // spacing of x tics; 0: automatic
};

struct PlotResult {
  bool rendered = false;
  std::filesystem::path image, script;
  std::string message;  // why it was not rendered
};

/// Renders `body` (a gnuplot script without terminal and output lines) to `image` with the
/// gnuplot terminal line `terminal` ("set terminal pngcairo ..."). Keeps the script as <image>.gp,
/// which names the image by its file name alone: `cd <folder> && gnuplot <image>.gp` redraws it.
/// gnuplot runs without a shell; the image appears whole (temporary file, then rename) or not at all.
PlotResult render_gnuplot(const std::filesystem::path& image, const std::string& terminal, const std::string& body);

/// Panels side by side (one row). `image` ends in .png or .svg.
PlotResult render_plot(const std::filesystem::path& image, const std::vector<PlotPanel>& panels,
                       int width_px_per_panel = 640, int height_px = 440);

/// The gnuplot script for the panels (terminal and output set by render_plot).
std::string gnuplot_script(const std::vector<PlotPanel>& panels);

}  // namespace hyplora::util
