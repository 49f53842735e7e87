// dataset/export.cpp: see export.h.
#include "dataset/export.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "common/errors.h"
#include "common/fs.h"
#include "common/sha256.h"
#include "common/utf8.h"
#include "dataset/answer.h"
#include "dataset/jsonl.h"
#include "dataset/text_rules.h"

namespace distill::dataset {

using ojson = nlohmann::ordered_json;

ExportFormat parse_export_format(std::string_view name) {
  if (name == "jsonl") return ExportFormat::jsonl;
  if (name == "sharegpt") return ExportFormat::sharegpt;
  if (name == "openai-chat") return ExportFormat::openai_chat;
  throw InputError("export format '" + std::string(name) + "' is not known (expected jsonl, sharegpt or openai-chat)");
}

const char* export_format_name(ExportFormat f) {
  switch (f) {
    case ExportFormat::sharegpt: return "sharegpt";
    case ExportFormat::openai_chat: return "openai-chat";
    default: return "jsonl";
  }
}

namespace {

std::string user_turn(const std::string& problem, std::string_view instruction) {
  return instruction.empty() ? problem : problem + "\n" + std::string(instruction);
}

// The problem text of a user turn: the turn without the trailing "\n" + instruction, when it has one.
std::string problem_of_turn(const std::string& turn, std::string_view instruction) {
  const std::string suffix = "\n" + std::string(instruction);
  if (!instruction.empty() && turn.size() >= suffix.size() && turn.compare(turn.size() - suffix.size(), suffix.size(), suffix) == 0)
    return turn.substr(0, turn.size() - suffix.size());
  return turn;
}

ojson record(ExportFormat f, const ImportedSample& r, std::string_view instruction) {
  const auto user = user_turn(r.problem.prompt, instruction);
  if (f == ExportFormat::openai_chat)
    return {{"messages", ojson::array({{{"role", "user"}, {"content", user}}, {{"role", "assistant"}, {"content", r.sample.completion}}})}};
  if (f == ExportFormat::sharegpt)
    return {{"conversations", ojson::array({{{"from", "human"}, {"value", user}}, {{"from", "gpt"}, {"value", r.sample.completion}}})},
            {"answer", r.problem.answer}};
  const auto& p = r.problem;
  const auto& s = r.sample;
  ojson problem = {{"source", p.source}, {"split", p.split}, {"prompt", p.prompt}, {"answer", p.answer},
                   {"solution", p.solution ? ojson(*p.solution) : ojson(nullptr)},
                   {"difficulty", p.difficulty ? ojson(*p.difficulty) : ojson(nullptr)},
                   {"meta", ojson::parse(p.meta_json)}};
  ojson model = {{"role", r.model.role}, {"path", r.model.path}, {"arch", r.model.arch}, {"n_params", r.model.n_params},
                 {"n_active_params", r.model.n_active_params}, {"sha256", r.model.sha256}};
  return {{"problem", problem},
          {"completion", s.completion},
          {"extracted_answer", s.extracted_answer ? ojson(*s.extracted_answer) : ojson(nullptr)},
          {"verdict", s.verdict},
          {"extract_rule", s.extract_rule ? ojson(*s.extract_rule) : ojson(nullptr)},
          {"verifier", s.verifier ? ojson(*s.verifier) : ojson(nullptr)},
          {"n_tokens", s.n_tokens ? ojson(*s.n_tokens) : ojson(nullptr)},
          {"finish_reason", s.finish_reason},
          {"sample_idx", s.sample_idx},
          {"seed", s.seed},
          {"temperature", s.temperature},
          {"top_p", s.top_p},
          {"max_tokens", s.max_tokens},
          {"model", model},
          {"messages", ojson::array({{{"role", "user"}, {"content", user}}, {{"role", "assistant"}, {"content", s.completion}}})}};
}

}  // namespace

ExportStats export_samples(Store& s, const ExportOptions& o, const std::string& out) {
  const auto path = output_target(out);  // through a link; never a folder or device
  std::set<std::string> wanted;
  for (auto st : o.statuses) wanted.insert(status_name(st));
  auto q = s.db().prepare(std::string(
      "SELECT p.source, p.split, p.prompt, p.answer, p.solution, p.difficulty, p.meta_json, s.completion, "
      "s.extracted_answer, s.verdict, s.n_tokens, s.finish_reason, s.sample_idx, s.seed, s.temperature, s.top_p, "
      "s.max_tokens, m.role, m.path, m.arch, m.n_params, m.n_active_params, m.sha256, (SELECT status FROM sample_states WHERE sample_id = s.id), "
      "s.problem_id, s.extract_rule, s.verifier FROM samples s JOIN problems p ON p.id = s.problem_id "
      "JOIN models m ON m.id = s.model_id WHERE (?1 = '' OR p.split = ?1) ORDER BY s.id"));
  q.bind(1, o.split);
  const auto tmp = path + ".tmp-" + std::to_string(::getpid());
  ExportStats st;
  struct RemoveUnlessRenamed {  // any throw below (bad meta_json, bad UTF-8, a full disk) leaves no temp file
    std::string path;
    ~RemoveUnlessRenamed() {
      std::error_code ec;
      if (!path.empty()) std::filesystem::remove(path, ec);
    }
  } cleanup{tmp};
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw InputError(path + ": cannot write the export (" + std::strerror(errno) + ")");
    std::set<std::int64_t> problems;
    while (q.step()) {
      if (!wanted.count(q.col_text(23))) continue;
      ImportedSample r;
      r.problem.source = q.col_text(0);
      r.problem.split = q.col_text(1);
      r.problem.prompt = q.col_text(2);
      r.problem.answer = q.col_text(3);
      if (!q.col_null(4)) r.problem.solution = q.col_text(4);
      if (!q.col_null(5)) r.problem.difficulty = int(q.col_int(5));
      r.problem.meta_json = q.col_text(6);
      r.sample.completion = q.col_text(7);
      if (!q.col_null(8)) r.sample.extracted_answer = q.col_text(8);
      r.sample.verdict = q.col_text(9);
      r.sample.n_tokens = q.col_opt_int(10);
      r.sample.extract_rule = q.col_opt_text(25);
      r.sample.verifier = q.col_opt_text(26);
      r.sample.finish_reason = q.col_text(11);
      r.sample.sample_idx = q.col_int(12);
      r.sample.seed = q.col_int(13);
      r.sample.temperature = q.col_double(14);
      r.sample.top_p = q.col_double(15);
      r.sample.max_tokens = q.col_int(16);
      r.model = {q.col_text(17), q.col_text(18), q.col_text(19), q.col_int(20), q.col_int(21), q.col_text(22)};
      out << record(o.format, r, o.instruction).dump() << '\n';
      ++st.samples;
      st.tokens += r.sample.n_tokens.value_or(0);
      ++st.by_split[r.problem.split];
      ++st.by_verdict[r.sample.verdict];
      problems.insert(q.col_int(24));
    }
    st.problems = std::int64_t(problems.size());
    out.close();
    if (!out) throw RuntimeFailure(path + ": writing the export failed");
  }
  if (st.samples == 0) {  // an empty training file is a mistyped filter far more often than a wish
    std::string statuses;
    for (auto x : o.statuses) statuses += std::string(statuses.empty() ? "" : ", ") + status_name(x);
    throw InputError("no samples are " + statuses + (o.split.empty() ? std::string() : " in split '" + o.split + "'") +
                     "; nothing exported to " + out);
  }
  std::filesystem::rename(tmp, path);
  cleanup.path.clear();
  st.sha256 = sha256_file_hex(path);
  return st;
}

bool looks_like_sample_export(std::string_view bytes) {
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    auto nl = bytes.find('\n', pos);
    auto line = bytes.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? bytes.size() : nl + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    try {
      auto j = nlohmann::json::parse(line);
      return j.is_object() && (j.contains("completion") || j.contains("conversations") || j.contains("messages"));
    } catch (const nlohmann::json::exception&) {
      return false;
    }
  }
  return false;
}

std::vector<ImportedSample> parse_sample_export(std::string_view bytes, const std::string& filename, ExportFormat format,
                                                std::string_view instruction, const std::string& split,
                                                const std::string& gold_field) {
  if (format == ExportFormat::jsonl && !gold_field.empty())
    throw InputError("--gold-field applies to sharegpt and openai-chat files; a distill jsonl export carries its gold answers");
  std::vector<ImportedSample> out;
  for_each_line(bytes, filename, [&](std::string_view line, const LineError& fail) {
    const std::string at = filename + ":" + std::to_string(fail.line) + ": ";
    if (auto bad = first_invalid_utf8(line)) throw InputError(at + "invalid UTF-8 at byte " + std::to_string(*bad + 1));
    ojson j;  // ordered: `meta` keeps its key order through a round trip
    try {
      j = ojson::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw InputError(at + "not valid JSON (" + e.what() + ")");
    }
    auto str = [&](const ojson& obj, const char* key) -> std::string {
      if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string())
        throw InputError(at + "expected a string field \"" + key + "\"");
      return obj[key].get<std::string>();
    };
    auto num = [&](const ojson& obj, const char* key) -> const ojson& {
      if (!obj.contains(key) || !obj[key].is_number()) throw InputError(at + "expected a number field \"" + key + "\"");
      return obj[key];
    };
    auto opt_str = [&](const ojson& obj, const char* key) -> std::optional<std::string> {
      if (!obj.contains(key) || obj[key].is_null()) return std::nullopt;
      return str(obj, key);
    };
    ImportedSample r;
    r.where = filename + ":" + std::to_string(fail.line);
    if (format == ExportFormat::jsonl) {
      if (!j.is_object() || !j.contains("problem") || !j["problem"].is_object())
        throw InputError(at + "expected a distill export record with a \"problem\" object");
      const auto& p = j["problem"];
      r.problem.source = str(p, "source");
      r.problem.split = str(p, "split");
      r.problem.prompt = str(p, "prompt");
      r.problem.answer = str(p, "answer");
      if (p.contains("solution") && !p["solution"].is_null()) r.problem.solution = str(p, "solution");
      if (p.contains("difficulty") && !p["difficulty"].is_null()) r.problem.difficulty = num(p, "difficulty").get<int>();
      r.problem.meta_json = p.contains("meta") ? p["meta"].dump() : "{}";
      r.sample.completion = str(j, "completion");
      r.sample.extracted_answer = opt_str(j, "extracted_answer");
      r.sample.verdict = str(j, "verdict");
      if (r.sample.verdict != "correct" && r.sample.verdict != "incorrect" && r.sample.verdict != "unparsable" &&
          r.sample.verdict != "unverified")
        throw InputError(at + "verdict '" + r.sample.verdict + "' is not correct, incorrect, unparsable or unverified");
      r.sample.extract_rule = opt_str(j, "extract_rule");
      r.sample.verifier = opt_str(j, "verifier");
      r.sample.n_tokens = std::nullopt;
      if (!j.contains("n_tokens") || !j["n_tokens"].is_null()) r.sample.n_tokens = num(j, "n_tokens").get<std::int64_t>();
      r.sample.finish_reason = str(j, "finish_reason");
      if (r.sample.finish_reason != "eos" && r.sample.finish_reason != "stop" && r.sample.finish_reason != "length")
        throw InputError(at + "finish_reason '" + r.sample.finish_reason + "' is not eos, stop or length");
      r.sample.sample_idx = num(j, "sample_idx").get<std::int64_t>();
      r.sample.seed = num(j, "seed").get<std::int64_t>();
      r.sample.temperature = num(j, "temperature").get<double>();
      r.sample.top_p = num(j, "top_p").get<double>();
      r.sample.max_tokens = num(j, "max_tokens").get<std::int64_t>();
      if (!j.contains("model") || !j["model"].is_object()) throw InputError(at + "expected a \"model\" object");
      const auto& m = j["model"];
      r.model = {str(m, "role"), str(m, "path"), str(m, "arch"), num(m, "n_params").get<std::int64_t>(),
                 num(m, "n_active_params").get<std::int64_t>(), str(m, "sha256")};
    } else {
      const bool sg = format == ExportFormat::sharegpt;
      const char* list = sg ? "conversations" : "messages";
      if (!j.is_object() || !j.contains(list) || !j[list].is_array() || j[list].size() != 2)
        throw InputError(at + "expected \"" + list + "\" with a user turn and an assistant turn");
      const auto& turns = j[list];
      const char* who = sg ? "from" : "role";
      const char* text = sg ? "value" : "content";
      if (str(turns[0], who) != (sg ? "human" : "user") || str(turns[1], who) != (sg ? "gpt" : "assistant"))
        throw InputError(at + "expected the turns " + (sg ? "human, gpt" : "user, assistant"));
      r.problem.prompt = problem_of_turn(str(turns[0], text), instruction);
      r.sample.completion = str(turns[1], text);
      r.problem.source = std::string("import:") + export_format_name(format);
      r.problem.split = split;
      // The gold answer: sharegpt's "answer" (ours writes it), or the field --gold-field names. openai-chat has
      // none of its own: without --gold-field its samples are verified against a gold answer the store already
      // holds for the problem, or stay unverified. Never the completion's own answer.
      const std::string field = !gold_field.empty() ? gold_field : sg ? "answer" : "";
      if (!field.empty()) {
        if (!j.contains(field))
          throw InputError(at + "no gold answer field \"" + field + "\"" + (gold_field.empty() ? "" : " (--gold-field)"));
        if (!j[field].is_string())
          throw InputError(at + "gold answer field \"" + field + "\" holds a JSON " + j[field].type_name() + ", expected a string");
        r.problem.answer = j[field].get<std::string>();
      }
      r.reverify = true;
      r.sample.n_tokens = std::nullopt;  // unknown, unless the caller counts them with a tokenizer
      r.sample.finish_reason = "eos";
      r.sample.sample_idx = 0;
      r.sample.seed = std::int64_t(hash64(r.sample.completion) >> 1);
      r.model = {"teacher", filename, "unknown", 0, 0, std::string("import:") + export_format_name(format) + ":" + filename};
    }
    out.push_back(std::move(r));
  });
  return out;
}

SampleImportResult import_samples(Store& s, const std::vector<ImportedSample>& rows, const std::string& config) {
  SampleImportResult res;
  Transaction tx(s.db());
  const auto run_id = s.insert_finished_run("data import", config);
  const auto now = now_iso8601();
  auto ins_p = s.db().prepare(
      "INSERT INTO problems(source, split, prompt, answer, solution, difficulty, meta_json, content_hash, run_id) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(content_hash) DO NOTHING");
  auto get_p = s.db().prepare("SELECT id, answer FROM problems WHERE content_hash = ?");
  auto set_gold = s.db().prepare("UPDATE problems SET answer = ? WHERE id = ? AND answer = ''");
  auto get_s = s.db().prepare(
      "SELECT completion FROM samples WHERE problem_id = ? AND model_id = ? AND sample_idx = ? AND seed = ?");
  auto ins_m = s.db().prepare(
      "INSERT INTO models(role, path, arch, n_params, n_active_params, sha256) VALUES (?, ?, ?, ?, ?, ?) "
      "ON CONFLICT(sha256) DO NOTHING");
  auto get_m = s.db().prepare("SELECT id FROM models WHERE sha256 = ?");
  auto ins_s = s.db().prepare(
      "INSERT INTO samples(problem_id, model_id, run_id, sample_idx, seed, temperature, top_p, max_tokens, "
      "completion, extracted_answer, verdict, n_tokens, finish_reason, created_at, extract_rule, verifier) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
      "ON CONFLICT(problem_id, model_id, sample_idx, seed) DO NOTHING");
  for (const auto& r : rows) {
    const auto& p = r.problem;
    const auto hash = content_hash(p.prompt);
    ins_p.bind(1, p.source).bind(2, p.split).bind(3, p.prompt).bind(4, p.answer).bind(5, p.solution);
    ins_p.bind(6, p.difficulty).bind(7, p.meta_json).bind(8, hash).bind(9, run_id);
    ins_p.run();
    res.problems_new += s.db().changes();
    ins_p.reset();
    get_p.bind(1, hash);
    get_p.step();
    const auto problem_id = get_p.col_int(0);
    auto gold = get_p.col_text(1);
    get_p.reset();
    if (gold.empty() && !p.answer.empty()) {  // a problem stored without a gold answer gets this one
      set_gold.bind(1, p.answer).bind(2, problem_id);
      set_gold.run();
      set_gold.reset();
      gold = p.answer;
      ++res.golds_added;
    }
    const auto& m = r.model;
    ins_m.bind(1, m.role).bind(2, m.path).bind(3, m.arch).bind(4, m.n_params).bind(5, m.n_active_params).bind(6, m.sha256);
    ins_m.run();
    ins_m.reset();
    get_m.bind(1, m.sha256);
    get_m.step();
    const auto model_id = get_m.col_int(0);
    get_m.reset();
    auto x = r.sample;
    if (r.reverify) {
      const auto v = verify_completion(x.completion, gold);
      set_verification(x, v);
      if (v.verdict == Verdict::unverified && !gold.empty() && res.unreadable_golds.size() < 10)
        res.unreadable_golds.push_back(r.where + ": gold answer '" + gold + "'");
    }
    ins_s.bind(1, problem_id).bind(2, model_id).bind(3, run_id).bind(4, x.sample_idx).bind(5, x.seed);
    ins_s.bind(6, x.temperature).bind(7, x.top_p).bind(8, x.max_tokens).bind(9, x.completion);
    ins_s.bind(10, x.extracted_answer).bind(11, x.verdict).bind(12, x.n_tokens).bind(13, x.finish_reason).bind(14, now);
    ins_s.bind(15, x.extract_rule).bind(16, x.verifier);
    ins_s.run();
    const bool fresh = s.db().changes() > 0;
    ins_s.reset();
    if (fresh) {
      ++res.samples_new;
      res.unverified += x.verdict == "unverified";
      continue;
    }
    get_s.bind(1, problem_id).bind(2, model_id).bind(3, x.sample_idx).bind(4, x.seed);
    get_s.step();
    const bool same = get_s.col_text(0) == x.completion;
    get_s.reset();
    if (!same)
      throw InputError(r.where + ": the store already holds a different completion for this problem, teacher, "
                       "sample index and seed; nothing was imported");
    ++res.samples_present;
  }
  tx.commit();
  return res;
}

}  // namespace distill::dataset
