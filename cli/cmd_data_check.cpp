// cli/cmd_data_check.cpp: `distill data check-answers`: the verifier run over a JSONL file of (gold, completion)
// pairs, outside any store: one JSON line out per line in, with the verdict, the extracted answer and the rule
// that found it. For checking the verifier against another one (tests/verify/score.py) and for auditing a dataset
// before import.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/errors.h"
#include "dataset/answer.h"

namespace distill::cli {

namespace {
struct CheckArgs {
  std::string jsonl, gold_field = "gold", completion_field = "completion";
};

// The string field `name` of line `line_no`, refused with its place when missing or not a string.
std::string text_field(const nlohmann::json& j, const std::string& name, const std::string& file, std::size_t line_no) {
  auto it = j.find(name);
  if (it == j.end())
    throw InputError(file + ":" + std::to_string(line_no) + ": no \"" + name + "\" field (expected a string)");
  if (!it->is_string())
    throw InputError(file + ":" + std::to_string(line_no) + ": field \"" + name + "\" is a " + it->type_name() +
                     ", expected a string");
  return it->get<std::string>();
}
}  // namespace

void register_data_check(CLI::App& data, Registry& reg) {
  auto a = std::make_shared<CheckArgs>();
  CLI::App* c = data.add_subcommand("check-answers", "verify (gold, completion) pairs from a JSONL file, one JSON line out each");
  c->add_option("--jsonl", a->jsonl, "input: one JSON object a line");
  c->add_option("--gold-field", a->gold_field, "the field holding the gold answer");
  c->add_option("--completion-field", a->completion_field, "the field holding the completion");
  reg.add(c, [c, a] {
    require(*c, "--jsonl");
    std::ifstream in(a->jsonl, std::ios::binary);
    if (!in) throw InputError(a->jsonl + ": cannot open for reading");
    // Every line is checked before anything is printed: a bad line 900 does not leave 899 results behind.
    std::vector<nlohmann::json> rows;
    std::string line;
    for (std::size_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        throw InputError(a->jsonl + ":" + std::to_string(n) + ": not JSON (" + e.what() + ")");
      }
      if (!j.is_object()) throw InputError(a->jsonl + ":" + std::to_string(n) + ": expected a JSON object");
      const auto gold = text_field(j, a->gold_field, a->jsonl, n);
      const auto completion = text_field(j, a->completion_field, a->jsonl, n);
      const auto v = dataset::verify_completion(completion, gold);
      nlohmann::json o;
      if (j.contains("id")) o["id"] = j["id"];
      o["line"] = n;
      o["verdict"] = dataset::to_string(v.verdict);
      o["extracted"] = v.extracted ? nlohmann::json(*v.extracted) : nlohmann::json(nullptr);
      o["rule"] = v.rule ? nlohmann::json(v.rule) : nlohmann::json(nullptr);
      rows.push_back(std::move(o));
    }
    for (const auto& o : rows) std::cout << o.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  });
}

}  // namespace distill::cli
