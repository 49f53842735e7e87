// cli/train_watch.h: what `distill train` and `distill pretrain` show while they run. On a terminal, a progress
// bar (steps, rate, ETA, the loss); otherwise (a log piped to a file, a job under a scheduler) a line every
// --log-every steps with step, loss, lr, tokens/s and ETA, and a line for every validation loss.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/progress.h"
#include "distill/trainer.h"

namespace distill::cli {

class TrainWatch {
 public:
  // `label` prefixes every line ("train", "pretrain"); log_every 0 turns the piped lines off.
  TrainWatch(std::string label, std::int64_t log_every) : label_(std::move(label)), log_every_(log_every) {}
  void step(const train::TrainStep& s);
  // Before any other output line: ends the bar's line so the two do not share one.
  void interject();
  void finish();

 private:
  void line(const train::TrainStep& s);
  std::string label_;
  std::int64_t log_every_, first_ = -1, last_ = 0;
  std::unique_ptr<Progress> bar_;
  bool piped_ = false;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace distill::cli
