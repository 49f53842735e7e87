// common/progress.h: a terminal progress bar with rate and ETA, for long work (synthesis, import, training).
// Draws on stderr only when stderr is a terminal (or DISTILL_PROGRESS=1), so logs and --json stay clean.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace distill {

// Seconds as a clock: "mm:ss", or "h:mm:ss" from an hour; "--:--" when negative or absurd (an unknown ETA).
std::string duration_text(double seconds);

class Progress {
 public:
  // total == 0 means unknown; `unit` names what is counted ("problems", "tok").
  Progress(std::string label, std::uint64_t total, std::string unit);
  ~Progress();
  void add(std::uint64_t n = 1);
  void set_suffix(std::string s) { suffix_ = std::move(s); }
  void finish();  // draws the final line and a newline; idempotent
  bool enabled() const { return enabled_; }  // drawing: stderr is a terminal, or DISTILL_PROGRESS says so

 private:
  void draw(bool force);
  std::string label_, unit_, suffix_;
  std::uint64_t total_, done_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool enabled_, finished_ = false;
};

}  // namespace distill
