#pragma once
// SIGINT / SIGTERM during training: the first signal asks the loop to stop after the current step
// (it saves a checkpoint and the adapter, then returns); a second one exits at once.
namespace hyplora::train {

/// Installs the handlers while alive (restores the previous ones on destruction).
class StopSignalScope {
 public:
  StopSignalScope();
  ~StopSignalScope();
  StopSignalScope(const StopSignalScope&) = delete;
  StopSignalScope& operator=(const StopSignalScope&) = delete;
};

bool stop_requested();
/// For tests and callers that stop a run programmatically.
void request_stop();
void clear_stop_request();

}  // namespace hyplora::train
