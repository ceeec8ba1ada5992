#pragma once
// Runs the cells of a sweep in this process: the model is loaded once, the shared task sets are made
// once, each cell trains (train/trainer.hpp), its best adapter (by validation loss) is evaluated on the
// validation and test sets, and the cell is recorded atomically in DIR/cells/<cell-id>.json. Cells
// already recorded with the same settings are skipped, so an interrupted sweep resumes where it
// stopped. Progress (cells done, time per cell, ETA) goes to stderr.
// A cell whose training diverges (the trainer stops it: parameters diverged, or the NaN/Inf policy)
// is recorded as diverged (cell_result.hpp) and the sweep goes on with the other cells; any other
// error of a cell (data, I/O, ...) stops the sweep with that error. SIGINT / SIGTERM stops the sweep
// after the current training step or cell, with SweepInterrupted (the cell is not recorded).
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "sweep/cell_result.hpp"
#include "sweep/grid.hpp"

namespace hyplora::sweep {

struct RunOptions {
  std::filesystem::path out;  ///< DIR: cells/, runs/<cell-id>/ (training folders), grid.json
  int threads = 0;            ///< OpenMP / BLAS threads (0 = leave defaults)
  long max_cells = -1;        ///< run at most this many new cells in this invocation (-1: all)
  int shard_index = 0, shard_count = 1;  ///< run only cells with position % count == index
  bool quiet = false;
};

struct RunStats {
  long cells_total = 0;       ///< cells of the grid (this shard)
  long cells_reused = 0;      ///< recorded before, not run again
  long cells_run = 0;         ///< run and recorded by this invocation
  long cells_left = 0;        ///< still not recorded (max_cells reached)
  long cells_diverged = 0;    ///< of cells_run: recorded as diverged
  double seconds = 0;
};

/// A stop by SIGINT / SIGTERM (or train::request_stop()): `hyplora sweep` exits 130 like `train`.
struct SweepInterrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Runs what is missing. Throws std::runtime_error when a recorded cell's settings differ from the
/// grid's (use a new DIR or delete that cell file), SweepInterrupted on a stop signal, and on the
/// errors of training / evaluation (a divergence is not one: that cell is recorded as diverged).
RunStats run_sweep(const SweepGrid& grid, const RunOptions& options);

/// Reads every data set the grid names (task.train_data, task.validation_data, task.test_data,
/// eval_data) as a run does before its first cell, so that `sweep --dry-run` reports a missing or bad
/// one. Errors name the grid key and the data set; nothing is written. `report`: print the loaders'
/// skipped records, notes and repeats (a run passes false: it reads the sets again and reports then).
void check_data_sources(const SweepGrid& grid, bool report = true);

/// Response tokens seen by `steps` optimiser steps of batch*grad_accum examples drawn in the trainer's
/// seeded order (train/dataset.hpp ExampleOrder): the token budget of a cell.
long count_target_tokens(const std::vector<int>& response_tokens_per_example, long steps, long examples_per_step,
                         std::uint64_t seed);

}  // namespace hyplora::sweep
