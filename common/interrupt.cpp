// common/interrupt.cpp: see interrupt.h.
#include "common/interrupt.h"

#include <csignal>

namespace distill {

namespace {
volatile std::sig_atomic_t g_signal = 0;
struct sigaction g_old_int, g_old_term;

extern "C" void on_signal(int sig) { g_signal = sig; }
}  // namespace

InterruptGuard::InterruptGuard() {
  g_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;  // once: the next signal takes the default action
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

bool InterruptGuard::requested() const { return g_signal != 0; }

const char* InterruptGuard::signal_name() const { return g_signal == SIGTERM ? "SIGTERM" : "SIGINT"; }

}  // namespace distill
