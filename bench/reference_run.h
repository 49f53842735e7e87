// bench/reference_run.h: runs one of bench/'s Python reference scripts with the project venv and reads the
// tokens/s it reports on its last line ({"tokens": N, "seconds": S, ...}). Header-only, for the benchmarks.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "distill_version.h"

namespace distill::bench {

// `script_and_args`: e.g. "reference_train.py DIR FILE --steps 10". Returns 0 (and says why) when it fails.
inline double reference_tokens_per_s(const std::string& script_and_args) {
  const std::string cmd = std::string(DISTILL_SOURCE_TREE) + "/.venv/bin/python " + DISTILL_SOURCE_TREE + "/bench/" +
                          script_and_args;
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[512] = {};
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  try {
    auto j = nlohmann::json::parse(out.substr(out.rfind('{')));
    return j["tokens"].get<double>() / j["seconds"].get<double>();
  } catch (...) {
    std::fprintf(stderr, "reference failed: %s\n", out.c_str());
    return 0;
  }
}

}  // namespace distill::bench
