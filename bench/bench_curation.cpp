// bench/bench_curation.cpp: curation at scale, against the budgets on 2 cores. Fills a store with
// 1,000,000 synthetic samples directly (no teacher), then times the real CLI: `data stats` (budget 2 s),
// a length + verdict filter (10 s) dry and applied, `data list` with a full-text search, and `data dedup`
// (exact + near) over 100,000 samples (60 s). Prints seconds and the share of each budget; asserts nothing.
// Usage: bench_curation [--samples N] [--dedup-samples N] [--keep DIR]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include "dataset/samples.h"
#include "distill_version.h"

using namespace distill::dataset;
namespace fs = std::filesystem;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A chain-of-thought-shaped completion: 3..12 arithmetic steps, an answer; ~40% of the problems' samples
// repeat or nearly repeat an earlier sample, as a low-temperature teacher's do.
std::string completion(std::mt19937_64& rng, int steps, std::int64_t* n_tokens) {
  std::string s = "<think>\n";
  std::int64_t v = std::int64_t(rng() % 100);
  for (int i = 0; i < steps; ++i) {
    const auto x = std::int64_t(rng() % 50);
    const bool add = rng() % 2;
    const auto w = add ? v + x : v - x;
    s += "Step " + std::to_string(i + 1) + ": " + std::to_string(v) + (add ? " + " : " - ") + std::to_string(x) + " = " +
         std::to_string(w) + ", so the running value is now " + std::to_string(w) + ".\n";
    v = w;
  }
  s += "</think>\nThe answer is \\boxed{" + std::to_string(v) + "}";
  *n_tokens = 6 + 18 * steps;
  return s;
}

void fill(const std::string& path, std::int64_t n_samples, std::uint64_t seed) {
  auto s = Store::open(path, OpenMode::create);
  const std::int64_t per_problem = 4, n_problems = (n_samples + per_problem - 1) / per_problem;
  std::vector<ProblemRow> probs;
  for (std::int64_t p = 0; p < n_problems; ++p) {
    ProblemRow r;
    r.source = "bench";
    r.split = p % 10 == 0 ? "eval" : "train";
    r.prompt = "Bench problem " + std::to_string(p) + ": start with a number and apply the listed steps.";
    r.answer = "0";
    r.difficulty = int(1 + p % 5);
    probs.push_back(std::move(r));
  }
  s->insert_problems(probs, "bench", "");
  const auto model = upsert_model(*s, {"teacher", "/bench", "DeepseekV3ForCausalLM", 1, 1, std::string(64, 'c')});
  const auto run = s->begin_run("generate", "");
  std::mt19937_64 rng(seed);
  const std::int64_t batch = 50000;
  std::vector<SampleRow> rows;
  std::string prev;
  for (std::int64_t i = 0; i < n_samples; ++i) {
    SampleRow r;
    r.problem_id = 1 + i / per_problem;
    r.model_id = model;
    r.run_id = run;
    r.sample_idx = i % per_problem;
    r.seed = i;
    r.temperature = 0.6;
    r.top_p = 0.95;
    r.max_tokens = 256;
    const auto roll = rng() % 10;
    if (r.sample_idx > 0 && roll < 2) {
      r.completion = prev;  // an exact repeat
      r.n_tokens = 6 + 18 * std::int64_t(std::count(prev.begin(), prev.end(), '\n') - 2);
    } else if (r.sample_idx > 0 && roll < 4) {
      r.completion = prev;  // a near repeat: the last step's wording changes
      r.completion.replace(r.completion.rfind("running value"), 13, "current total");
      r.n_tokens = 6 + 18 * std::int64_t(std::count(prev.begin(), prev.end(), '\n') - 2);
    } else {
      std::int64_t n_tokens = 0;
      r.completion = completion(rng, 3 + int(rng() % 10), &n_tokens);
      r.n_tokens = n_tokens;
    }
    prev = r.completion;
    r.verdict = rng() % 10 < 7 ? "correct" : "incorrect";
    r.extracted_answer = "0";
    r.finish_reason = "eos";
    rows.push_back(std::move(r));
    if (std::int64_t(rows.size()) == batch || i + 1 == n_samples) {
      insert_samples(*s, rows);
      rows.clear();
      std::fprintf(stderr, "\r  filled %lld / %lld samples", (long long)(i + 1), (long long)n_samples);
    }
  }
  std::fprintf(stderr, "\n");
}

double timed(const std::string& cmd) {
  const double t0 = now_s();
  const int rc = std::system((cmd + " > /dev/null").c_str());
  const double dt = now_s() - t0;
  if (rc != 0) std::printf("  (command failed with %d: %s)\n", rc, cmd.c_str());
  return dt;
}

void row(const char* what, double seconds, double budget) {
  std::printf("%-52s %9.2f s", what, seconds);
  if (budget > 0) std::printf("   budget %5.1f s   %5.0f%% of it", budget, 100.0 * seconds / budget);
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t n = 1000000, n_dedup = 100000;
  std::string keep;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--samples" && i + 1 < argc) n = std::stoll(argv[++i]);
    else if (a == "--dedup-samples" && i + 1 < argc) n_dedup = std::stoll(argv[++i]);
    else if (a == "--keep" && i + 1 < argc) keep = argv[++i];
  }
  const auto dir = keep.empty() ? fs::temp_directory_path() / ("distill-bench-curation-" + std::to_string(::getpid()))
                                : fs::path(keep);
  fs::create_directories(dir);
  const std::string big = (dir / "big.db").string(), small = (dir / "dedup.db").string();
  const std::string bin = (fs::read_symlink("/proc/self/exe").parent_path() / "distill").string();  // this build's
  std::printf("curation bench: %lld samples (stats, filter, list), %lld for dedup; the real CLI, 2 cores budgets\n",
              (long long)n, (long long)n_dedup);
  double t0 = now_s();
  if (!fs::exists(big)) fill(big, n, 1);
  row("fill the store directly (not budgeted)", now_s() - t0, 0);
  std::printf("  store size %.0f MB\n", double(fs::file_size(big)) / 1e6);
  row("distill data stats", timed(bin + " data stats --db " + big), 2);
  row("distill data stats --json", timed(bin + " data stats --json --db " + big), 2);
  const std::string filt = bin + " data filter --db " + big + " --correct-only --min-tokens 60 --max-tokens 200";
  row("data filter --correct-only --min/max-tokens (dry)", timed(filt), 10);
  row("data filter ... --apply (records ~40% rejects)", timed(filt + " --apply"), 10);
  row("distill data stats (after the filter)", timed(bin + " data stats --db " + big), 2);
  row("data list --search '\"current total\"' --limit 20", timed(bin + " data list --db " + big + " --search '\"current total\"' --limit 20"), 0);
  row("data list --status rejected --limit 20", timed(bin + " data list --db " + big + " --status rejected --limit 20"), 0);
  t0 = now_s();
  if (!fs::exists(small)) fill(small, n_dedup, 2);
  row("fill the dedup store (not budgeted)", now_s() - t0, 0);
  row("data dedup (exact + near, dry run)", timed(bin + " data dedup --db " + small), 60);
  row("data dedup --apply", timed(bin + " data dedup --apply --db " + small), 60);
  if (keep.empty()) fs::remove_all(dir);
}
