// common/interrupt.h: a graceful stop for long runs. While an InterruptGuard lives, the first SIGINT (Ctrl-C) or
// SIGTERM only sets a flag, which the run polls between steps to checkpoint and end cleanly; a second signal of
// the same kind acts as usual (the handler resets itself), so a stuck run can still be killed. A signal the
// process inherited as ignored (a background job, nohup) stays ignored. Guards nest (the demo holds one around
// the commands it runs, each of which may hold its own): only the outermost clears the flag, so a signal that
// arrives between two inner guards is still seen, and each restores the handlers it found.
#pragma once

#include <csignal>
#include <stdexcept>
#include <string>

namespace distill {

// Thrown by a command that stopped on such a signal after saving its state; the CLI exits 130 (128 + SIGINT).
struct Interrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class InterruptGuard {
 public:
  InterruptGuard();   // installs the handlers and clears the flag
  ~InterruptGuard();  // restores the handlers that were there before
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  bool requested() const;     // a signal arrived since the outermost guard was made
  const char* signal_name() const;  // "SIGINT" or "SIGTERM" once requested

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

}  // namespace distill
