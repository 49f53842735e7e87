// common/interrupt.cpp: see interrupt.h.
#include "common/interrupt.h"

#include <atomic>
#include <csignal>

namespace distill {

namespace {
// Written by the handler, which may run on any thread (LibTorch's workers too): a lock-free atomic, not a
// volatile sig_atomic_t, is what another thread may read.
std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free);
struct sigaction g_old_int, g_old_term;

extern "C" void on_signal(int sig) { g_signal.store(sig, std::memory_order_relaxed); }

// Installs the handler for `sig`, keeping the old disposition in `old`; a signal inherited as ignored (a
// background job, nohup) stays ignored.
void install(int sig, struct sigaction* old) {
  sigaction(sig, nullptr, old);
  if (old->sa_handler == SIG_IGN) return;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  // SA_RESETHAND: once, the next signal takes the default action; SA_RESTART: a write or read the signal lands in
  // continues instead of failing with EINTR (the run is about to write its checkpoint).
  sa.sa_flags = SA_RESETHAND | SA_RESTART;
  sigaction(sig, &sa, nullptr);
}
}  // namespace

InterruptGuard::InterruptGuard() {
  g_signal.store(0);
  install(SIGINT, &g_old_int);
  install(SIGTERM, &g_old_term);
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

bool InterruptGuard::requested() const { return g_signal.load(std::memory_order_relaxed) != 0; }

const char* InterruptGuard::signal_name() const { return g_signal.load() == SIGTERM ? "SIGTERM" : "SIGINT"; }

}  // namespace distill
