#include "util/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <unistd.h>

#include "formats/atomic_file.hpp"
#include "util/subprocess.hpp"

namespace fs = std::filesystem;

namespace hyplora::util {
namespace {

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') { out += "\\n"; continue; }
    out += c;
  }
  return out + "\"";
}

std::string number(double v) {
  if (!std::isfinite(v)) return "NaN";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

/// True when the series has a point gnuplot can place (x and y finite).
bool has_point(const PlotSeries& ser) {
  for (std::size_t i = 0; i < ser.x.size() && i < ser.y.size(); ++i)
    if (std::isfinite(ser.x[i]) && std::isfinite(ser.y[i])) return true;
  return false;
}

}  // namespace

std::string gnuplot_script(const std::vector<PlotPanel>& panels) {
  std::ostringstream s;
  // data blocks first
  for (std::size_t p = 0; p < panels.size(); ++p)
    for (std::size_t k = 0; k < panels[p].series.size(); ++k) {
      const auto& ser = panels[p].series[k];
      if (ser.x.size() != ser.y.size() || (!ser.y_error.empty() && ser.y_error.size() != ser.y.size()))
        throw std::invalid_argument("plot series '" + ser.title + "': x, y and error lengths differ");
      s << "$d" << p << "_" << k << " << EOD\n";
      for (std::size_t i = 0; i < ser.x.size(); ++i) {
        s << number(ser.x[i]) << " " << number(ser.y[i]);
        if (!ser.y_error.empty()) s << " " << number(ser.y_error[i]);
        s << "\n";
      }
      s << "EOD\n";
    }
  s << "set multiplot layout 1," << panels.size() << "\n";
  s << "set grid\nset key top right box opaque\n";
  for (std::size_t p = 0; p < panels.size(); ++p) {
    const auto& pan = panels[p];
    s << "set title " << quoted(pan.title) << "\nset xlabel " << quoted(pan.xlabel) << "\nset ylabel "
      << quoted(pan.ylabel) << "\n";
    s << (pan.log_y ? "set logscale y\n" : "unset logscale y\n");
    if (pan.y_min != 0 || pan.y_max != 0) s << "set yrange [" << number(pan.y_min) << ":" << number(pan.y_max) << "]\n";
    else s << "set autoscale y\n";
    if (pan.x_tics > 0) s << "set xtics " << number(pan.x_tics) << "\n";
    else s << "set xtics autofreq\n";
    if (std::none_of(pan.series.begin(), pan.series.end(), has_point)) {  // an empty frame that says so (gnuplot refuses to autoscale a range without points)
      s << "set xrange [0:1]\nset yrange [0:1]\nunset logscale y\n"
        << "set label 1 \"no data\" at graph 0.5, 0.5 center\nplot NaN notitle\nunset label 1\nset autoscale x\n";
      continue;
    }
    s << "set autoscale x\nplot ";
    bool first = true;
    for (std::size_t k = 0; k < pan.series.size(); ++k) {
      const auto& ser = pan.series[k];
      if (!has_point(ser)) continue;  // (gnuplot warns about an empty data block; the key would list it)
      if (!first) s << ", \\\n     ";
      first = false;
      if (ser.y_error.empty()) s << "$d" << p << "_" << k << " using 1:2 with linespoints lw 2 title " << quoted(ser.title);
      else s << "$d" << p << "_" << k << " using 1:2:3 with yerrorlines lw 2 title " << quoted(ser.title);
    }
    s << "\n";
  }
  s << "unset multiplot\n";
  return s.str();
}

PlotResult render_plot(const fs::path& image, const std::vector<PlotPanel>& panels, int width_px_per_panel,
                       int height_px) {
  const std::string ext = image.extension().string();
  std::string terminal;
  const int width = width_px_per_panel * int(std::max<std::size_t>(1, panels.size()));
  if (ext == ".png") terminal = "pngcairo size " + std::to_string(width) + "," + std::to_string(height_px) + " font \",10\"";
  else if (ext == ".svg") terminal = "svg size " + std::to_string(width) + "," + std::to_string(height_px) + " dynamic";
  else throw std::invalid_argument("plot file " + image.string() + ": extension must be .png or .svg");

  return render_gnuplot(image, "set terminal " + terminal, gnuplot_script(panels));
}

PlotResult render_gnuplot(const fs::path& image, const std::string& terminal, const std::string& body) {
  PlotResult r;
  r.image = image;
  r.script = fs::path(image.string() + ".gp");
  const std::string name = image.filename().string();
  // the kept script: run in the image's folder ("set output" holds the file name only)
  formats::write_file_atomically(r.script, "# redraw: cd <this folder> && gnuplot " + r.script.filename().string() + "\n" +
                                               terminal + "\nset output " + quoted(name) + "\n" + body);
  if (!program_in_path("gnuplot")) {
    r.message = "gnuplot not found: plot script written to " + r.script.string() + " (install gnuplot to render it)";
    return r;
  }
  const std::string pid = std::to_string(::getpid());
  const fs::path temp = image.parent_path() / ("." + name + ".tmp." + pid + image.extension().string());
  const fs::path run_script = image.parent_path() / ("." + name + ".run." + pid + ".gp");
  formats::write_file_atomically(run_script, terminal + "\nset output " + quoted(temp.string()) + "\n" + body);
  const ProcessResult p = run_process({"gnuplot", run_script.string()});
  std::error_code ec;
  fs::remove(run_script, ec);
  if (!p.started) {
    r.message = "could not start gnuplot";
  } else if (p.status == 0 && fs::exists(temp) && fs::file_size(temp, ec) > 0) {
    fs::rename(temp, image, ec);
    if (!ec) {
      r.rendered = true;
      return r;
    }
    r.message = "could not rename plot into place: " + ec.message();
  } else {
    r.message = "gnuplot failed: " + p.output;
  }
  fs::remove(temp, ec);
  return r;
}

}  // namespace hyplora::util
