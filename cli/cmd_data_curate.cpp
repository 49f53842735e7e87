// cli/cmd_data_curate.cpp: the bulk curation passes: `data filter`, `data dedup`, `data decontaminate`, and
// `data verify` (stored verdicts checked again by the current verifier).
// The passes are dry runs by default (counts per rule and examples); --apply records the rejects as one curation
// action, which `data undo` reverses whole. `data verify` records by default (--dry-run to look first). All take
// --json.
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "common/errors.h"
#include "common/fs.h"
#include "common/progress.h"
#include "dataset/answer.h"
#include "dataset/curate_runs.h"
#include "dataset/import.h"
#include "dataset/reverify.h"

namespace distill::cli {

namespace {

std::string default_actor() {
  const char* u = std::getenv("USER");
  return u && *u ? u : "cli";
}

struct Common {
  std::string db, split, actor = default_actor(), reason;
  bool apply = false, json = false;
};

void add_common(CLI::App* c, Common& a) {
  c->add_option("--db", a.db, "store file");
  c->add_option("--split", a.split, "only samples of problems in this split (default: all)");
  c->add_flag("--apply", a.apply, "record the rejects as one curation action (default: dry run)");
  c->add_option("--actor", a.actor, "who (default: $USER)");
  c->add_option("--reason", a.reason, "why (stored with the action)");
  c->add_flag("--json", a.json, "print JSON");
}

dataset::ProgressFn bar_for(std::unique_ptr<Progress>& bar, const std::string& label) {
  auto shown = std::make_shared<std::int64_t>(0);
  return [&bar, label, shown](std::int64_t done, std::int64_t total) {
    if (!bar) bar = std::make_unique<Progress>(label, std::uint64_t(total), "samples");
    bar->add(std::uint64_t(std::max<std::int64_t>(0, done - *shown)));
    *shown = std::max(*shown, done);
  };
}

void print_report(const std::string& what, const dataset::PassReport& r, const Common& a, const std::string& params) {
  if (a.json) {
    auto ex = nlohmann::json::array();
    for (const auto& [id, why] : r.examples) ex.push_back({{"sample_id", id}, {"reason", why}});
    nlohmann::json j = {{"pass", what},          {"applied", a.apply},          {"params", nlohmann::json::parse(params)},
                        {"considered", r.considered}, {"rejected", r.rejected}, {"passed", r.considered - r.rejected},
                        {"by_rule", r.by_rule},  {"examples", ex},
                        {"action_id", r.action_id ? nlohmann::json(*r.action_id) : nlohmann::json(nullptr)}};
    if (what == "decontaminate") j["matched_ngrams"] = r.matched, j["ignored_boilerplate_ngrams"] = r.ignored_ngrams;
    if (!r.compared.empty()) j["compared"] = r.compared;
    if (!r.skipped.empty()) j["skipped"] = r.skipped;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << what << (a.apply ? "" : " (dry run)") << ": " << r.considered << " samples considered, " << r.rejected
            << (a.apply ? " rejected, " : " would be rejected, ") << (r.considered - r.rejected) << " pass\n";
  for (const auto& [rule, n] : r.by_rule) {
    char line[128];
    std::snprintf(line, sizeof line, "  %-16s %8lld\n", rule.c_str(), (long long)n);
    std::cout << line;
  }
  for (const auto& line : r.compared) std::cout << "  " << line << "\n";
  for (const auto& [why, n] : r.skipped)
    std::cout << "  (" << n << " samples not judged by a rule: " << why << "; they were neither kept nor rejected for it)\n";
  if (what == "decontaminate")
    std::cout << "  (" << r.ignored_ngrams << " template n-grams, shared by many benchmark problems, were masked out)\n";
  if (!r.matched.empty()) {
    std::cout << "n-grams that matched (samples flagged):\n";
    for (const auto& [g, n] : r.matched) std::cout << "  " << n << "  \"" << g << "\"\n";
  }
  if (!r.examples.empty()) {
    std::cout << "examples:\n";
    for (const auto& [id, why] : r.examples) std::cout << "  #" << id << "  " << why << "\n";
  }
  if (r.action_id)
    std::cout << "recorded as curation action " << *r.action_id << " (reverse it with `distill data undo --db "
              << a.db << " " << *r.action_id << "`)\n";
  else if (r.rejected > 0)
    std::cout << "nothing written; run again with --apply to record this\n";
}

struct FilterArgs : Common {
  bool correct_only = false, format = false, single_script = false, no_code = false, r1 = false;
  std::int64_t min_tokens = -1, max_tokens = -1, max_paragraph = -1, max_per_problem = -1, max_foreign = 0;
  double max_repetition = -1;
  int repetition_n = 8;
  std::string pass_rate;
};

struct DedupArgs : Common {
  bool exact_only = false, near_only = false;
  double threshold = 0.8;
  int ngram = 5, num_perm = 128;
};

// Unlike the passes, verify writes by default: it decides on no sample's status but the ones whose rejection
// rested on a verdict it corrects, and one undo takes it back.
struct VerifyArgs : Common {
  std::int64_t run = -1;
  bool dry_run = false;
};

void print_verify(const dataset::VerifyReport& r, const VerifyArgs& a) {
  if (a.json) {
    auto ex = nlohmann::json::array();
    for (const auto& [id, what] : r.examples) ex.push_back({{"sample_id", id}, {"change", what}});
    nlohmann::json j = {{"pass", "verify"}, {"applied", a.apply}, {"verifier", dataset::kVerifierVersion},
                        {"considered", r.considered}, {"changed", r.changed}, {"transitions", r.transitions},
                        {"restamped", r.restamped}, {"reopened", r.reopened}, {"still_rejected", r.still_rejected},
                        {"kept_not_correct", r.kept_not_correct}, {"examples", ex},
                        {"action_id", r.action_id ? nlohmann::json(*r.action_id) : nlohmann::json(nullptr)}};
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << "verify" << (a.apply ? "" : " (dry run)") << " with " << dataset::kVerifierVersion << ": " << r.considered
            << " samples considered, " << r.changed << (a.apply ? " changed" : " would change") << "\n";
  for (const auto& [t, n] : r.transitions) std::cout << "  " << t << ": " << n << "\n";
  if (r.restamped) std::cout << "  " << r.restamped << " keep their verdict, now recorded with this verifier's version and rule\n";
  std::cout << "  " << r.reopened << " rejected only for their old verdict, now correct: back to pending\n";
  if (r.still_rejected)
    std::cout << "  " << r.still_rejected << " now correct stay rejected (another rule or a person rejected them)\n";
  if (r.kept_not_correct)
    std::cout << "  " << r.kept_not_correct << " kept samples are no longer correct: review them (data list --status kept --verdict incorrect)\n";
  if (!r.examples.empty()) {
    std::cout << "examples:\n";
    for (const auto& [id, what] : r.examples) std::cout << "  #" << id << "  " << what << "\n";
  }
  if (r.action_id)
    std::cout << "recorded as curation action " << *r.action_id << " (reverse it with `distill data undo --db " << a.db
              << " " << *r.action_id << "`)\n";
  else if (r.changed > 0)
    std::cout << "nothing written; run again without --dry-run to record this\n";
}

struct DecontamArgs : Common {
  std::string against = "eval", benchmark, format = "jsonl", prompt_field = "prompt", answer_field = "answer";
  int ngram = 8;
  double max_df = 0.01;
  bool completions = false;
};

}  // namespace

void register_data_curate(CLI::App& data, Registry& reg) {
  auto fa = std::make_shared<FilterArgs>();
  CLI::App* f = data.add_subcommand("filter", "reject samples by rules (verdict, length, format, R1 style, pass rate, cap)");
  add_common(f, *fa);
  f->add_flag("--correct-only", fa->correct_only, "reject samples whose verdict is not correct");
  f->add_option("--min-tokens", fa->min_tokens, "reject shorter completions");
  f->add_option("--max-tokens", fa->max_tokens, "reject longer completions");
  f->add_flag("--format", fa->format, "require one closed <think> block, then a final \\boxed{}");
  f->add_flag("--single-script", fa->single_script, "reject reasoning that mixes writing systems (Greek is not counted)");
  f->add_option("--max-foreign-letters", fa->max_foreign, "letters outside the main script that --single-script tolerates");
  f->add_option("--max-paragraph-chars", fa->max_paragraph, "reject reasoning with a longer paragraph");
  f->add_flag("--no-code-blocks", fa->no_code, "reject completions with a ``` or ~~~ code block");
  f->add_option("--max-repetition", fa->max_repetition, "reject reasoning whose repeated word n-gram share is above this (0..1)");
  f->add_option("--repetition-n", fa->repetition_n, "n of the repetition n-grams");
  f->add_option("--pass-rate", fa->pass_rate, "LO:HI: keep only problems whose pass rate (correct / samples) lies in it");
  f->add_option("--max-per-problem", fa->max_per_problem, "keep at most this many samples per problem (lowest index first)");
  f->add_flag("--r1", fa->r1,
              "the DeepSeek-R1 rules: --correct-only --format --single-script --no-code-blocks "
              "--max-paragraph-chars 2000 --max-repetition 0.5 (explicit flags still apply)");
  reg.add(f, [f, fa] {
    require(*f, "--db");
    for (const char* opt : {"--min-tokens", "--max-tokens", "--max-paragraph-chars", "--max-foreign-letters"})
      if (f->count(opt) && f->get_option(opt)->as<double>() < 0) throw InputError(std::string(opt) + " must not be negative");
    if (f->count("--max-per-problem") && fa->max_per_problem < 1) throw InputError("--max-per-problem must be at least 1");
    if (f->count("--max-repetition") && !(fa->max_repetition >= 0 && fa->max_repetition <= 1))
      throw InputError("--max-repetition must lie in [0, 1]");
    dataset::FilterRules r;
    r.correct_only = fa->correct_only || fa->r1;
    r.format = fa->format || fa->r1;
    r.single_script = fa->single_script || fa->r1;
    r.max_foreign_letters = fa->max_foreign;
    r.no_code_blocks = fa->no_code || fa->r1;
    if (fa->min_tokens >= 0) r.min_tokens = fa->min_tokens;
    if (fa->max_tokens >= 0) r.max_tokens = fa->max_tokens;
    if (fa->max_paragraph >= 0) r.max_paragraph_chars = fa->max_paragraph;
    else if (fa->r1) r.max_paragraph_chars = 2000;
    if (fa->max_repetition >= 0) r.max_repetition = fa->max_repetition;
    else if (fa->r1) r.max_repetition = 0.5;
    r.repetition_n = fa->repetition_n;
    if (fa->max_per_problem >= 0) r.max_per_problem = fa->max_per_problem;
    if (!fa->pass_rate.empty()) {
      const auto colon = fa->pass_rate.find(':');
      try {
        if (colon == std::string::npos) throw std::invalid_argument("no colon");
        std::size_t a = 0, b = 0;
        const double lo = std::stod(fa->pass_rate.substr(0, colon), &a);
        const double hi = std::stod(fa->pass_rate.substr(colon + 1), &b);
        if (a != colon || b != fa->pass_rate.size() - colon - 1) throw std::invalid_argument("trailing text");
        r.pass_rate = std::make_pair(lo, hi);
      } catch (const std::exception&) {
        throw InputError("--pass-rate '" + fa->pass_rate + "': expected LO:HI, e.g. 0.1:0.9");
      }
    }
    auto store = dataset::Store::open(fa->db, dataset::OpenMode::read);
    std::unique_ptr<Progress> bar;
    auto rep = dataset::run_filter(*store, r, {fa->split}, fa->apply, {fa->actor, fa->reason}, bar_for(bar, "filter"));
    if (bar) bar->finish();
    print_report("filter", rep, *fa, r.to_json());
  });

  auto da = std::make_shared<DedupArgs>();
  CLI::App* d = data.add_subcommand("dedup", "reject exact (normalised text) and near duplicates (MinHash + LSH); the lowest id survives");
  add_common(d, *da);
  d->add_flag("--exact-only", da->exact_only, "only exact duplicates");
  d->add_flag("--near-only", da->near_only, "only near duplicates");
  d->add_option("--threshold", da->threshold, "Jaccard similarity of word n-gram sets at which samples are near duplicates");
  d->add_option("--ngram", da->ngram, "tokens (words, digits, operators, symbols) per shingle");
  d->add_option("--num-perm", da->num_perm, "MinHash permutations (8..1024)");
  reg.add(d, [d, da] {
    require(*d, "--db");
    if (da->exact_only && da->near_only) throw InputError("--exact-only and --near-only exclude each other");
    dataset::DedupOptions o;
    o.exact = !da->near_only;
    o.near = !da->exact_only;
    o.threshold = da->threshold;
    o.ngram = da->ngram;
    o.num_perm = da->num_perm;
    auto store = dataset::Store::open(da->db, dataset::OpenMode::read);
    std::unique_ptr<Progress> bar;
    auto rep = dataset::run_dedup(*store, o, {da->split}, da->apply, {da->actor, da->reason}, bar_for(bar, "dedup"));
    if (bar) bar->finish();
    print_report("dedup", rep, *da, o.to_json());
  });

  auto va = std::make_shared<VerifyArgs>();
  CLI::App* v = data.add_subcommand("verify", "verify stored samples again with the current verifier (one undoable action)");
  v->add_option("--db", va->db, "store file");
  v->add_option("--run", va->run, "only the samples of this run (generate or import)");
  v->add_flag("--dry-run", va->dry_run, "only report what would change (default: record it as one undoable action)");
  v->add_option("--actor", va->actor, "who (default: $USER)");
  v->add_option("--reason", va->reason, "why (stored with the action)");
  v->add_flag("--json", va->json, "print JSON");
  reg.add(v, [v, va] {
    require(*v, "--db");
    dataset::VerifyOptions o;
    if (v->count("--run")) o.run_id = va->run;
    va->apply = !va->dry_run;
    auto store = dataset::Store::open(va->db, dataset::OpenMode::read);
    std::unique_ptr<Progress> bar;
    auto rep = dataset::reverify(*store, o, va->apply, {va->actor, va->reason}, bar_for(bar, "verify"));
    if (bar) bar->finish();
    print_verify(rep, *va);
  });

  auto ca = std::make_shared<DecontamArgs>();
  CLI::App* c = data.add_subcommand("decontaminate", "reject samples whose problem shares a word n-gram with a benchmark problem (default: the eval split)");
  add_common(c, *ca);
  c->add_option("--against", ca->against, "split whose problems are the benchmark");
  c->add_option("--benchmark", ca->benchmark, "or a benchmark file (gsm8k, math or jsonl; see data import)");
  c->add_option("--format", ca->format, "format of --benchmark: gsm8k, math or jsonl");
  c->add_option("--prompt-field", ca->prompt_field, "jsonl benchmark: field holding the problem");
  c->add_option("--answer-field", ca->answer_field, "jsonl benchmark: field holding the answer");
  c->add_option("--ngram", ca->ngram, "words per n-gram (8, as open-r1 and s1 use)");
  c->add_flag("--compare-completions", ca->completions,
              "also compare completions with the benchmark's problems and solutions (default: problems only)");
  c->add_option("--max-df", ca->max_df,
                "mask words of n-grams found in more than this share of benchmark problems (template text)");
  reg.add(c, [c, ca] {
    require(*c, "--db");
    if (ca->ngram < 1) throw InputError("--ngram " + std::to_string(ca->ngram) + ": expected >= 1");
    if (!(ca->max_df > 0 && ca->max_df <= 1))
      throw InputError("--max-df " + number_text(ca->max_df) + ": expected a share in (0, 1]");
    dataset::DecontamOptions o;
    o.ngram = ca->ngram;
    o.max_df = ca->max_df;
    o.against_split = ca->against;
    o.completions = ca->completions;
    if (!ca->benchmark.empty()) {
      dataset::ImportOptions io;
      io.format = dataset::parse_import_format(ca->format);
      io.prompt_field = ca->prompt_field;
      io.answer_field = ca->answer_field;
      o.benchmark = dataset::parse_import(read_file(ca->benchmark), ca->benchmark, io);
      o.benchmark_name = ca->benchmark;
      if (o.benchmark.empty()) throw InputError("--benchmark " + ca->benchmark + ": holds no problems");
    }
    auto store = dataset::Store::open(ca->db, dataset::OpenMode::read);
    std::unique_ptr<Progress> bar;
    auto rep = dataset::run_decontaminate(*store, o, {ca->split}, ca->apply, {ca->actor, ca->reason}, bar_for(bar, "decontaminate"));
    if (bar) bar->finish();
    print_report("decontaminate", rep, *ca, o.to_json());
  });
}

}  // namespace distill::cli
