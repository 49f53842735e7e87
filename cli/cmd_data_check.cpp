// cli/cmd_data_check.cpp: `distill data check-answers`: the verifier run over a JSONL file of (gold, completion)
// pairs, outside any store: one JSON line out per line in, with the verdict, the extracted answer and the rule
// that found it. For checking the verifier against another one (tests/verify/score.py) and for auditing a dataset
// before import. --timing adds one JSON line on stderr with the wall time of each verification (bench/bench_verify.py).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/fs.h"
#include "dataset/answer.h"
#include "dataset/jsonl.h"

namespace distill::cli {

namespace {
struct CheckArgs {
  std::string jsonl, gold_field = "gold", completion_field = "completion";
  bool timing = false;
};

// Wall time of each verify_completion call, with the input line it was for.
struct Timings {
  std::vector<double> ms;
  std::vector<std::size_t> lines;
};

// {"cases","total_ms","worst_ms","worst_line","p99_ms"} over the timed calls (the p99 is the nearest-rank one).
nlohmann::json timing_summary(const Timings& t) {
  nlohmann::json o = {{"cases", t.ms.size()}, {"total_ms", 0.0}, {"worst_ms", 0.0}, {"worst_line", nullptr},
                      {"p99_ms", 0.0}};
  if (t.ms.empty()) return o;
  const auto worst = std::max_element(t.ms.begin(), t.ms.end());
  std::vector<double> sorted = t.ms;
  std::sort(sorted.begin(), sorted.end());
  const auto rank = static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(sorted.size())));
  double total = 0;
  for (double x : t.ms) total += x;
  o["total_ms"] = total;
  o["worst_ms"] = *worst;
  o["worst_line"] = t.lines[static_cast<std::size_t>(worst - t.ms.begin())];
  o["p99_ms"] = sorted[std::max<std::size_t>(rank, 1) - 1];
  return o;
}
}  // namespace

void register_data_check(CLI::App& data, Registry& reg) {
  auto a = std::make_shared<CheckArgs>();
  CLI::App* c = data.add_subcommand("check-answers", "verify (gold, completion) pairs from a JSONL file, one JSON line out each");
  c->add_option("--jsonl", a->jsonl, "input: one JSON object a line");
  c->add_option("--gold-field", a->gold_field, "the field holding the gold answer");
  c->add_option("--completion-field", a->completion_field, "the field holding the completion");
  c->add_flag("--timing", a->timing, "after all rows, print one JSON line on stderr: cases, total_ms, worst_ms, "
              "worst_line, p99_ms (wall time of each verification)");
  reg.add(c, [c, a] {
    require(*c, "--jsonl");
    const std::string bytes = read_file(a->jsonl);
    // Every line is checked before anything is printed: a bad line 900 does not leave 899 results behind.
    std::vector<nlohmann::json> rows;
    Timings timings;
    dataset::for_each_line(bytes, a->jsonl, [&](std::string_view line, const dataset::LineError& fail) {
      const nlohmann::json j = dataset::parse_object_line(line, fail);
      const char* hint = "--gold-field and --completion-field name the fields";
      const auto gold = dataset::string_field(j, a->gold_field, fail, hint);
      const auto completion = dataset::string_field(j, a->completion_field, fail, hint);
      const auto t0 = std::chrono::steady_clock::now();
      const auto v = dataset::verify_completion(completion, gold);
      timings.ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      timings.lines.push_back(fail.line);
      nlohmann::json o;
      if (j.contains("id")) o["id"] = j["id"];
      o["line"] = fail.line;
      o["verdict"] = dataset::to_string(v.verdict);
      o["extracted"] = v.extracted ? nlohmann::json(*v.extracted) : nlohmann::json(nullptr);
      o["rule"] = v.rule ? nlohmann::json(v.rule) : nlohmann::json(nullptr);
      rows.push_back(std::move(o));
    });
    for (const auto& o : rows) std::cout << o.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    if (a->timing) {
      std::cout.flush();
      std::cerr << timing_summary(timings).dump() << "\n";
    }
  });
}

}  // namespace distill::cli
