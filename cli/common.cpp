// cli/common.cpp: see common.h.
#include "cli/common.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "common/errors.h"
#include "common/progress.h"

namespace distill::cli {

std::pair<int, int> parse_int_range(const std::string& s, const std::string& flag) {
  auto parse = [&](const std::string& t) {
    if (t.empty() || t.size() > 6 || t.find_first_not_of("0123456789") != std::string::npos)
      throw InputError(flag + " '" + s + "' is not a level or a range (expected e.g. 3 or 1-3)");
    return std::stoi(t);
  };
  const auto dash = s.find('-');
  if (dash == std::string::npos) {
    int v = parse(s);
    return {v, v};
  }
  return {parse(s.substr(0, dash)), parse(s.substr(dash + 1))};
}

void print_config(const std::string& toml) {
  if (const char* q = std::getenv("DISTILL_QUIET"); q && *q && *q != '0') return;
  std::cerr << toml;
}

std::string fmt_fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

dataset::InsertResult store_problems(dataset::Store& store, const std::vector<dataset::ProblemRow>& rows,
                                     const std::string& kind, const std::string& config) {
  Progress bar(kind + ": storing", rows.size(), "problems");
  std::size_t shown = 0;
  auto res = store.insert_problems(rows, kind, config, [&](std::size_t done) {
    bar.add(done - shown);
    shown = done;
  });
  bar.finish();
  return res;
}

}  // namespace distill::cli
