// dataset/import.cpp: see import.h.
#include "dataset/import.h"

#include <nlohmann/json.hpp>
#include <regex>

#include "common/errors.h"
#include "dataset/answer.h"
#include "dataset/jsonl.h"
#include "dataset/math_equiv.h"

namespace distill::dataset {

using nlohmann::json;

ImportFormat parse_import_format(std::string_view name) {
  if (name == "gsm8k") return ImportFormat::gsm8k;
  if (name == "math") return ImportFormat::math;
  if (name == "jsonl") return ImportFormat::jsonl;
  throw InputError("unknown import format '" + std::string(name) + "' (expected gsm8k, math, jsonl, sharegpt or openai-chat)");
}

namespace {

const char* format_name(ImportFormat f) {
  return f == ImportFormat::gsm8k ? "gsm8k" : f == ImportFormat::math ? "math" : "jsonl";
}

// GSM8K solutions carry calculator annotations "<<48/2=24>>"; they are not part of the reasoning.
std::string strip_calculator(const std::string& s) {
  static const std::regex calc("<<[^>]*>>");
  return std::regex_replace(s, calc, "");
}

}  // namespace

std::vector<ProblemRow> parse_import(std::string_view bytes, const std::string& filename, const ImportOptions& opt,
                                     std::vector<std::string>* warnings) {
  std::vector<ProblemRow> rows;
  const std::string source = opt.source.empty() ? format_name(opt.format) : opt.source;
  if (opt.split.empty()) throw InputError("--split must not be empty");
  for_each_line(bytes, filename, [&](std::string_view line, const LineError& fail) {
    const json obj = parse_object_line(line, fail);
    ProblemRow r;
    r.source = source;
    r.split = opt.split;
    json meta = json::object();
    std::vector<std::string> used;
    if (opt.format == ImportFormat::gsm8k) {
      const char* hint = "GSM8K records have 'question' and 'answer' with a final '#### n' line";
      r.prompt = string_field(obj, "question", fail, hint);
      const std::string full = string_field(obj, "answer", fail, hint);
      const std::size_t h = full.rfind("####");
      if (h == std::string::npos) fail("field 'answer' has no '#### n' final answer");
      std::string ans = full.substr(h + 4);
      ans.erase(0, ans.find_first_not_of(" \t"));
      while (!ans.empty() && std::isspace(static_cast<unsigned char>(ans.back()))) ans.pop_back();
      if (ans.empty()) fail("field 'answer' has an empty '####' final answer");
      std::string steps = strip_calculator(full.substr(0, h));
      while (!steps.empty() && std::isspace(static_cast<unsigned char>(steps.back()))) steps.pop_back();
      r.answer = ans;
      r.solution = steps + (steps.empty() ? "" : "\n") + "\\boxed{" + ans + "}";
      used = {"question", "answer"};
    } else if (opt.format == ImportFormat::math) {
      const char* hint = "MATH records have 'problem' and 'solution' with a \\boxed{} answer";
      r.prompt = string_field(obj, "problem", fail, hint);
      const std::string sol = string_field(obj, "solution", fail, hint);
      auto boxed = last_boxed(sol);
      if (!boxed || boxed->empty()) fail("field 'solution' has no well-formed \\boxed{...} answer");
      r.answer = *boxed;
      r.solution = sol;
      used = {"problem", "solution"};
      if (auto it = obj.find("level"); it != obj.end() && it->is_string()) {
        // "Level 3" -> 3 (MATH uses 1..5, and "Level ?" for a few)
        const std::string lv = it->get<std::string>();
        if (lv.size() > 6 && lv.rfind("Level ", 0) == 0 && std::isdigit(static_cast<unsigned char>(lv[6])))
          r.difficulty = lv[6] - '0';
      }
    } else {
      const std::string hint = "set --prompt-field/--answer-field to the record's field names";
      r.prompt = string_field(obj, opt.prompt_field, fail, hint);
      r.answer = string_field(obj, opt.answer_field, fail, hint);
      used = {opt.prompt_field, opt.answer_field};
      if (!opt.solution_field.empty()) {
        r.solution = string_field(obj, opt.solution_field, fail, hint);
        used.push_back(opt.solution_field);
      }
      if (auto it = obj.find("difficulty"); it != obj.end() && it->is_number_integer()) r.difficulty = it->get<int>();
    }
    if (r.prompt.find_first_not_of(" \t\r\n") == std::string::npos) fail("field '" + used[0] + "' is empty");
    if (r.answer.find_first_not_of(" \t\r\n") == std::string::npos) fail("field '" + used[1] + "' is empty");
    for (auto& [k, v] : obj.items())
      if (std::find(used.begin(), used.end(), k) == used.end()) meta[k] = v;
    meta["line"] = fail.line;
    if (warnings && !math::Gold(r.answer).checkable())
      warnings->push_back(filename + ":" + std::to_string(fail.line) + ": the verifier cannot read the gold answer '" +
                          r.answer + "'; its samples will be unverified");
    r.meta_json = meta.dump();
    rows.push_back(std::move(r));
  });
  return rows;
}

}  // namespace distill::dataset
