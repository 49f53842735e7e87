// cli/sampling_flags.cpp: the sampling filters generate and complete share (distill-torch only: SamplingParams
// is LibTorch's side).
#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "teacher/sampling.h"

namespace distill::cli {

void add_sampling_filters(CLI::App& app, teacher::SamplingParams& s) {
  app.add_option("--temperature", s.temperature, "sampling temperature (0: greedy)");
  app.add_option("--top-p", s.top_p, "nucleus sampling mass (1: off)");
  app.add_option("--top-k", s.top_k, "keep the k most likely tokens (0: off)");
  app.add_option("--min-p", s.min_p, "drop tokens below min-p x the most likely one (0: off)");
}

}  // namespace distill::cli
