#pragma once
// Strict command lines for the bench programs: every argument is a known flag, every number parses
// whole and lies in its range, a flag that takes a value has one. Anything else is a message naming
// the flag and exit status 2 (atoi turned "abc" into 0 and --reps 0 into a crash; unknown flags
// were ignored, so `bench_model --help` started the full benchmark).
#include <charconv>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace hyplora::bench {

struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// --help / -h: the usage on stdout, exit 0.
struct HelpRequested {};

/// Walks argv once: `flag(name)` and `value(name)` claim the current argument when it matches.
class ArgReader {
 public:
  ArgReader(int argc, char** argv) : args_(argv + 1, argv + argc) {}
  /// True while arguments remain; the loop body must claim the current one or call unknown().
  bool more() const { return i_ < args_.size(); }
  bool flag(const char* name) {
    if (args_[i_] != name) return false;
    ++i_;
    return true;
  }
  /// The text after `name` (an error when it is missing).
  bool value(const char* name, std::string& out) {
    if (args_[i_] != name) return false;
    if (i_ + 1 >= args_.size()) throw ArgError(std::string(name) + " needs a value");
    out = args_[i_ + 1];
    i_ += 2;
    return true;
  }
  /// An integer in [lo, hi] after `name`.
  template <class Int>
  bool integer(const char* name, Int& out, long long lo, long long hi) {
    std::string text;
    if (!value(name, text)) return false;
    out = Int(parse_integer(name, text, lo, hi));
    return true;
  }
  [[noreturn]] void unknown() const {
    if (args_[i_] == "--help" || args_[i_] == "-h") throw HelpRequested{};
    throw ArgError("unknown option '" + args_[i_] + "'");
  }

  static long long parse_integer(const std::string& name, const std::string& text, long long lo, long long hi) {
    long long v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi)
      throw ArgError(name + " expects an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" +
                     text + "'");
    return v;
  }

 private:
  std::vector<std::string> args_;
  std::size_t i_ = 0;
};

/// Runs body(); an ArgError prints it with the usage (exit 2), any other exception prints
/// "program: error: ..." (exit 1): no std::terminate.
template <class Body>
int guarded_main(const char* program, const char* usage, Body&& body) {
  try {
    return body();
  } catch (const HelpRequested&) {
    std::printf("usage: %s %s\n", program, usage);
    return 0;
  } catch (const ArgError& e) {
    std::fprintf(stderr, "%s: %s\nusage: %s %s\n", program, e.what(), program, usage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", program, e.what());
    return 1;
  }
}

}  // namespace hyplora::bench
