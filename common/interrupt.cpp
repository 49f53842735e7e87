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
int g_depth = 0;  // guards alive (made and ended on the main thread)

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
  if (g_depth++ == 0) g_signal.store(0);
  install(SIGINT, &old_int_);
  install(SIGTERM, &old_term_);
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
  --g_depth;
}

bool InterruptGuard::requested() const { return g_signal.load(std::memory_order_relaxed) != 0; }

const char* InterruptGuard::signal_name() const { return g_signal.load() == SIGTERM ? "SIGTERM" : "SIGINT"; }

}  // namespace distill
