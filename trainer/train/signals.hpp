#pragma once
// SIGINT / SIGTERM during training: the first signal asks the loop to stop after the current step
// (it saves a checkpoint and the adapter, then returns); a second one exits at once.
#include <csignal>
#include <cstddef>

namespace hyplora::train {

/// Installs the handlers while alive and restores the previous ones (and their notice) on
/// destruction, so scopes nest: the sweep's scope around the trainer's.
class StopSignalScope {
 public:
  /// `notice`: what the first signal prints (the caller's words for what stopping means).
  explicit StopSignalScope(const char* notice = "hyplora: interrupt received, stopping after this step (saving state)...");
  ~StopSignalScope();
  StopSignalScope(const StopSignalScope&) = delete;
  StopSignalScope& operator=(const StopSignalScope&) = delete;

 private:
  struct sigaction old_int_ {}, old_term_ {};
  const char* old_notice_;
  std::size_t old_notice_length_;
};

bool stop_requested();
/// For tests and callers that stop a run programmatically.
void request_stop();
void clear_stop_request();

}  // namespace hyplora::train
