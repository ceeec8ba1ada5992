#include "train/signals.hpp"

#include <atomic>
#include <csignal>
#include <unistd.h>

namespace hyplora::train {
namespace {
volatile std::sig_atomic_t g_stop = 0;
struct sigaction g_old_int, g_old_term;

extern "C" void on_stop_signal(int) {
  if (g_stop) {
    const char msg[] = "\nhyplora: second interrupt, exiting without saving\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(130);
  }
  g_stop = 1;
  const char msg[] = "\nhyplora: interrupt received, stopping after this step (saving state)...\n";
  (void)!::write(2, msg, sizeof msg - 1);
}
}  // namespace

StopSignalScope::StopSignalScope() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

StopSignalScope::~StopSignalScope() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

bool stop_requested() { return g_stop != 0; }
void request_stop() { g_stop = 1; }
void clear_stop_request() { g_stop = 0; }

}  // namespace hyplora::train
