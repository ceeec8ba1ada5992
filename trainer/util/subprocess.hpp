#pragma once
// Running a helper program (gnuplot, curl) without a shell: the arguments go to the program as
// they are, so a path holding ' ; $ or a space is a path, never a command (an --out folder named
// "x';touch y;'" used to run `touch y` through popen).
#include <string>
#include <vector>

namespace hyplora::util {

struct ProcessResult {
  bool started = false;  ///< false: the program was not found or could not be started
  int status = -1;       ///< exit code, or 128 + signal number
  std::string output;    ///< stdout and stderr together
};

/// Runs argv[0] (looked up in PATH) with argv[1..], waits for it, and captures its output.
ProcessResult run_process(const std::vector<std::string>& argv);

/// True when `name` is an executable file in one of the PATH folders.
bool program_in_path(const std::string& name);

}  // namespace hyplora::util
