#include "train/signals.hpp"

#include <cstring>
#include <unistd.h>

namespace hyplora::train {
namespace {
volatile std::sig_atomic_t g_stop = 0;
// the notice of the innermost scope (set before its handler is installed, restored after the outer
// one is back)
const char* volatile g_notice = "";
volatile std::size_t g_notice_length = 0;

extern "C" void on_stop_signal(int) {
  if (g_stop) {
    const char msg[] = "\nhyplora: second interrupt, exiting without saving\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(130);
  }
  g_stop = 1;
  (void)!::write(2, "\n", 1);
  (void)!::write(2, g_notice, g_notice_length);
  (void)!::write(2, "\n", 1);
}
}  // namespace

StopSignalScope::StopSignalScope(const char* notice) : old_notice_(g_notice), old_notice_length_(g_notice_length) {
  g_notice = notice;
  g_notice_length = std::strlen(notice);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int_);
  sigaction(SIGTERM, &sa, &old_term_);
}

StopSignalScope::~StopSignalScope() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
  g_notice = old_notice_;
  g_notice_length = old_notice_length_;
}

bool stop_requested() { return g_stop != 0; }
void request_stop() { g_stop = 1; }
void clear_stop_request() { g_stop = 0; }

}  // namespace hyplora::train
