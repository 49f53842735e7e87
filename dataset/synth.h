// dataset/synth.h: synthetic reasoning task families with gold step-by-step solutions from a solver.
// Every problem is deterministic by (seed, index); a problem's split (train/eval) is a function of its
// content hash, so train and eval can never share a problem whatever seeds are used.
// Gold solutions are lines of steps whose last line is `\boxed{answer}`; the prompt format lives in teacher/.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataset/store.h"

namespace distill::dataset {


struct SynthTask {
  std::string name;
  std::string summary;  // one line for --help and errors
};

// All families, in a fixed order: chain (mod-10 running value), arith (+ - x with carries),
// word (templated word problems), lineq (linear equations), base (base conversion).
const std::vector<SynthTask>& synth_tasks();

struct SynthOptions {
  std::string task = "chain";   // a name from synth_tasks(), or "all" to mix families evenly
  std::int64_t n = 1000;        // problems to draw (duplicates of earlier draws are counted, not re-drawn)
  std::string split = "train";  // "train" or "eval"
  int difficulty_min = 1;       // 1..5; each problem draws its level uniformly in [min, max]
  int difficulty_max = 1;
  std::uint64_t seed = 0;
};

// The split a content hash belongs to: "eval" for 1 in 5 of all possible problems, "train" otherwise.
std::string split_of_hash(const std::string& content_hash_hex);

// Draws problems deterministically. Throws InputError for an unknown task, bad split or difficulty.
std::vector<ProblemRow> synthesize(const SynthOptions& opt);

// One problem of one family at one difficulty from a given stream (exposed for tests).
ProblemRow synth_one(const std::string& task, int difficulty, std::uint64_t stream_seed);

}  // namespace distill::dataset
