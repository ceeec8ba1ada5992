#pragma once
// Progress / ETA: a single updating status line on a terminal (a plain line per update otherwise)
// with elapsed time, rate and time left from the mean rate since start.
#include <chrono>
#include <string>

namespace hyplora::util {

/// "1h02m", "3m07s", "12s".
std::string format_duration(double seconds);

class Progress {
 public:
  /// total: the number of units the task has (steps, examples); label leads the line.
  Progress(std::string label, long total, long first = 0);
  /// Seconds since construction (or since reset_clock()).
  double elapsed() const;
  /// Estimated seconds left after `done` units (mean rate over the units done in this run).
  double eta(long done) const;
  /// Prints "label done/total detail | elapsed, left ETA" to stderr (\r-updated on a TTY, at most
  /// every `min_interval` seconds unless `force`).
  void update(long done, const std::string& detail, bool force = false);
  /// Ends the line on a terminal.
  void finish();

 private:
  std::string label_;
  long total_, first_;
  std::chrono::steady_clock::time_point start_, last_print_;
  bool tty_;
  bool printed_ = false;
  double min_interval_ = 0.25;
};

}  // namespace hyplora::util
