// cli/cmd_data_import.cpp: `distill data import`: a GSM8K / MATH / JSONL file -> problems, or a sample export
// (distill jsonl, sharegpt, openai-chat) -> problems + samples; each in one transaction.
#include <iostream>

#include "cli/command.h"
#include "cli/common.h"
#include "common/errors.h"
#include "common/fs.h"
#include "dataset/export.h"
#include "dataset/import.h"
#include "model/tokenizer.h"
#include "teacher/prompt_format.h"

namespace distill::cli {

namespace {
struct Args {
  std::string db, format, file, split = "train", prompt_field = "prompt", answer_field = "answer", solution_field,
                                   source, gold_field, tokenizer;
};

// The first 10 warnings, then how many more there were.
void print_warnings(const std::vector<std::string>& lines) {
  for (std::size_t i = 0; i < lines.size() && i < 10; ++i) std::cerr << "warning: " << lines[i] << "\n";
  if (lines.size() > 10) std::cerr << "warning: ... and " << lines.size() - 10 << " more\n";
}

// Imports exported samples (a distill jsonl export, sharegpt or openai-chat): parsed and checked whole, token
// counts taken with --tokenizer where the file has none, then one transaction.
void import_sample_file(const Args& a, const std::string& bytes, const std::string& config) {
  auto rows = dataset::parse_sample_export(bytes, a.file, dataset::parse_export_format(a.format), teacher::kR1Instruction,
                                           a.split, a.gold_field);
  std::int64_t unknown = 0;
  if (!a.tokenizer.empty()) {
    const auto tok = model::load_tokenizer(a.tokenizer);
    for (auto& r : rows)
      if (!r.sample.n_tokens) r.sample.n_tokens = std::int64_t(tok->encode(r.sample.completion).size());
  }
  for (const auto& r : rows) unknown += !r.sample.n_tokens;
  auto store = dataset::Store::open(a.db, dataset::OpenMode::create);
  auto res = dataset::import_samples(*store, rows, config);
  std::cout << "import: " << rows.size() << " samples read from " << a.file << " (" << a.format << "), "
            << res.samples_new << " new, " << res.samples_present << " already present; " << res.problems_new
            << " new problems\n";
  if (res.unverified > 0)
    std::cout << "  " << res.unverified << " new samples are unverified: no gold answer to check them against"
              << (a.format == "openai-chat" && a.gold_field.empty() ? " (openai-chat carries none: --gold-field names a field that does)" : "")
              << "\n";
  if (res.golds_added > 0)
    std::cout << "  " << res.golds_added << " problems stored without a gold answer got one; `distill data verify --db "
              << a.db << "` checks their earlier samples\n";
  if (unknown > 0)
    std::cout << "  " << unknown << " samples have no token count (--tokenizer DIR counts them); length filters skip them\n";
  print_warnings(res.unreadable_golds);
}
}  // namespace

void register_data_import(CLI::App& data, Registry& reg) {
  auto a = std::make_shared<Args>();
  CLI::App* c = data.add_subcommand("import", "import problems (gsm8k, math, jsonl) or exported samples (jsonl, sharegpt, openai-chat)");
  c->add_option("--db", a->db, "store file (created if missing)");
  c->add_option("--format", a->format,
                 "gsm8k | math | jsonl (problems, or a `data export` jsonl file, recognised by its records) | "
                 "sharegpt | openai-chat (exported samples)");
  c->add_option("file", a->file, "the .jsonl file to import");
  c->add_option("--split", a->split, "split name for the imported problems (train, eval, or a benchmark name)");
  c->add_option("--prompt-field", a->prompt_field, "jsonl: the field holding the problem text");
  c->add_option("--answer-field", a->answer_field, "jsonl: the field holding the final answer");
  c->add_option("--solution-field", a->solution_field, "jsonl: the field holding a worked solution (optional)");
  c->add_option("--source", a->source, "source label stored with each problem (default: the format name)");
  c->add_option("--gold-field", a->gold_field,
                "sharegpt/openai-chat: the record's field holding the gold answer (default: sharegpt's \"answer\"; "
                "openai-chat has none, so its samples are unverified unless the store knows the problem)");
  c->add_option("--tokenizer", a->tokenizer, "sharegpt/openai-chat: count each completion's tokens with this tokenizer (a model directory)");
  reg.add(c, [c, a] {
    require(*c, "--db");
    require(*c, "--format");
    require(*c, "file");
    if (a->format == "sharegpt" || a->format == "openai-chat" || a->format == "jsonl") {
      const auto bytes = read_file(a->file);
      if (a->format != "jsonl" || dataset::looks_like_sample_export(bytes)) {
        const std::string config = resolved_config_toml(*c);
        print_config(config);
        return import_sample_file(*a, bytes, config);
      }
    }
    if (!a->gold_field.empty() || !a->tokenizer.empty())
      throw InputError(std::string(!a->gold_field.empty() ? "--gold-field" : "--tokenizer") +
                       " applies to sample files (sharegpt, openai-chat); problem files name their answer with "
                       "--answer-field");
    dataset::ImportOptions o;
    o.format = dataset::parse_import_format(a->format);
    o.split = a->split;
    o.prompt_field = a->prompt_field;
    o.answer_field = a->answer_field;
    o.solution_field = a->solution_field;
    o.source = a->source;
    const std::string config = resolved_config_toml(*c);
    print_config(config);
    // Parse and validate the whole file before the store is opened: a bad line imports nothing.
    std::vector<std::string> warnings;
    auto rows = dataset::parse_import(read_file(a->file), a->file, o, &warnings);
    print_warnings(warnings);
    auto store = dataset::Store::open(a->db, dataset::OpenMode::create);
    auto res = store_problems(*store, rows, "data import", config);
    std::cout << "import: " << rows.size() << " records read from " << a->file << ", " << res.inserted << " new, "
              << res.duplicates << " already present (split " << o.split << ")\n";
    if (res.golds_added > 0)
      std::cout << "  " << res.golds_added << " problems stored without a gold answer got one; `distill data verify --db "
                << a->db << "` checks their samples\n";
  });
}

}  // namespace distill::cli
