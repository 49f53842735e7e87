// tests/test_interrupt.cpp: the graceful-stop guard in-process: a signal only sets the flag while a guard lives,
// nested guards keep a signal that arrived between them, and each guard restores the handlers it found.
#include <csignal>
#include <string>

#include <catch2/catch.hpp>

#include "common/interrupt.h"

using namespace distill;

namespace {
void (*handler_of(int sig))(int) {
  struct sigaction now {};
  sigaction(sig, nullptr, &now);
  return now.sa_handler;
}
}  // namespace

TEST_CASE("interrupt: nested guards keep a signal seen between them and restore the handlers they found") {
  struct sigaction dfl {}, saved_int {}, saved_term {};  // default handlers to start from, whatever ran the tests
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGINT, &dfl, &saved_int);
  sigaction(SIGTERM, &dfl, &saved_term);
  {
    InterruptGuard outer;
    CHECK_FALSE(outer.requested());
    CHECK(handler_of(SIGTERM) != SIG_DFL);
    std::raise(SIGTERM);  // between two commands the demo runs: only the flag is set
    CHECK(outer.requested());
    CHECK(std::string(outer.signal_name()) == "SIGTERM");
    {
      InterruptGuard inner;  // the next command's guard: it must see the signal, not clear it
      CHECK(inner.requested());
    }
    CHECK(outer.requested());
  }
  CHECK(handler_of(SIGTERM) == SIG_DFL);  // the outermost guard put back the default
  {
    InterruptGuard fresh;  // a later run starts clean
    CHECK_FALSE(fresh.requested());
  }
  CHECK(handler_of(SIGINT) == SIG_DFL);
  CHECK(handler_of(SIGTERM) == SIG_DFL);
  sigaction(SIGINT, &saved_int, nullptr);
  sigaction(SIGTERM, &saved_term, nullptr);
}

TEST_CASE("interrupt: a signal the process inherited as ignored stays ignored") {
  struct sigaction ignore {}, before {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGTERM, &ignore, &before);
  {
    InterruptGuard g;
    CHECK(handler_of(SIGTERM) == SIG_IGN);
    std::raise(SIGTERM);
    CHECK_FALSE(g.requested());
  }
  CHECK(handler_of(SIGTERM) == SIG_IGN);
  sigaction(SIGTERM, &before, nullptr);
}
