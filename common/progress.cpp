// common/progress.cpp: see progress.h. Redraws at most ten times a second.
#include "common/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace distill {

std::string duration_text(double s) {
  char buf[32];
  if (!(s >= 0) || s > 1e7) return "--:--";  // negative, NaN or absurd: unknown
  int t = int(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%02d:%02d", t / 60, t % 60);
  return buf;
}

Progress::Progress(std::string label, std::uint64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
  const char* env = std::getenv("DISTILL_PROGRESS");
  enabled_ = env ? std::strcmp(env, "0") != 0 : isatty(STDERR_FILENO);
}

Progress::~Progress() { finish(); }

void Progress::add(std::uint64_t n) {
  done_ += n;
  draw(false);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
  if (enabled_) std::fputc('\n', stderr);
}

void Progress::draw(bool force) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  double el = std::chrono::duration<double>(now - start_).count();
  double rate = el > 0 ? double(done_) / el : 0.0;
  std::string bar;
  if (total_) {
    const int W = 28;
    int fill = int(double(W) * double(std::min(done_, total_)) / double(total_));
    bar = "[" + std::string(std::size_t(fill), '#') + std::string(std::size_t(W - fill), '.') + "] ";
  }
  char line[256];
  if (total_)
    std::snprintf(line, sizeof line, "%llu/%llu %s, %.1f %s/s, %s elapsed, ETA %s",
                  (unsigned long long)done_, (unsigned long long)total_, unit_.c_str(), rate, unit_.c_str(),
                  duration_text(el).c_str(),
                  duration_text(rate > 0 ? double(total_ - std::min(done_, total_)) / rate : -1).c_str());
  else
    std::snprintf(line, sizeof line, "%llu %s, %.1f %s/s, %s elapsed", (unsigned long long)done_,
                  unit_.c_str(), rate, unit_.c_str(), duration_text(el).c_str());
  std::fprintf(stderr, "\r\033[K%s %s%s%s%s", label_.c_str(), bar.c_str(), line,
               suffix_.empty() ? "" : "  ", suffix_.c_str());
  std::fflush(stderr);
}

}  // namespace distill
