// cli/train_watch.cpp: see train_watch.h.
#include "cli/train_watch.h"

#include <cstdio>
#include <iostream>

#include "cli/common.h"

namespace distill::cli {

namespace {

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  return buf;
}

}  // namespace

void TrainWatch::step(const train::TrainStep& s) {
  if (first_ < 0) {  // the first step of this invocation (a resumed run starts past 1)
    first_ = s.step;
    t0_ = std::chrono::steady_clock::now();
    bar_ = std::make_unique<Progress>(label_, std::uint64_t(s.steps), "steps");
    piped_ = !bar_->enabled();
    bar_->add(std::uint64_t(s.step - 1));
    last_ = s.step - 1;
  }
  bar_->add(std::uint64_t(s.step - last_));
  last_ = s.step;
  bar_->set_suffix("loss " + fmt_fixed(s.loss, 4) + (s.val_loss >= 0 ? "  val " + fmt_fixed(s.val_loss, 4) : "") + "  lr " +
                   sci(s.lr) + "  " + fmt_fixed(s.tokens_per_s, 0) + " tok/s");
  if (piped_) line(s);
}

void TrainWatch::line(const train::TrainStep& s) {
  if (log_every_ <= 0) return;
  const bool due = s.step % log_every_ == 0 || s.step == first_ || s.step == s.steps;
  if (!due && s.val_loss < 0) return;
  // t0_ is the end of this invocation's first step: the steps timed since are the ones after it
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  const double per_step = s.step > first_ ? el / double(s.step - first_) : -1;
  std::string out = label_ + ": step " + std::to_string(s.step) + "/" + std::to_string(s.steps);
  if (due)
    out += "  loss " + fmt_fixed(s.loss, 4) + "  lr " + sci(s.lr) + "  " + fmt_fixed(s.tokens_per_s, 0) + " tok/s  ETA " +
           duration_text(per_step < 0 ? -1 : per_step * double(s.steps - s.step));
  if (s.val_loss >= 0) out += "  val loss " + fmt_fixed(s.val_loss, 4);
  std::cerr << out << std::endl;
}

void TrainWatch::interject() {
  if (bar_ && !piped_) std::cerr << "\n";
}

void TrainWatch::finish() {
  if (bar_) bar_->finish();
}

}  // namespace distill::cli
