// cli/cmd_data_import.cpp: `distill data import`: a GSM8K / MATH / JSONL file -> problems, or a sample export
// (distill jsonl, sharegpt, openai-chat) -> problems + samples; each in one transaction.
#include <iostream>

#include "cli/command.h"
#include "cli/common.h"
#include "common/fs.h"
#include "dataset/export.h"
#include "dataset/import.h"
#include "teacher/prompt_format.h"

namespace distill::cli {

namespace {
struct Args {
  std::string db, format, file, split = "train", prompt_field = "prompt", answer_field = "answer", solution_field,
                                   source;
};
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
  reg.add(c, [c, a] {
    require(*c, "--db");
    require(*c, "--format");
    require(*c, "file");
    if (a->format == "sharegpt" || a->format == "openai-chat" || a->format == "jsonl") {
      const auto bytes = read_file(a->file);
      if (a->format != "jsonl" || dataset::looks_like_sample_export(bytes)) {
        const std::string config = resolved_config_toml(*c);
        print_config(config);
        // The whole file is parsed and checked before the store is opened: a bad line imports nothing.
        auto rows = dataset::parse_sample_export(bytes, a->file, dataset::parse_export_format(a->format),
                                                 teacher::kR1Instruction, a->split);
        auto store = dataset::Store::open(a->db, dataset::OpenMode::create);
        auto res = dataset::import_samples(*store, rows, config);
        std::cout << "import: " << rows.size() << " samples read from " << a->file << ", " << res.samples_new
                  << " new, " << res.samples_present << " already present; " << res.problems_new << " new problems\n";
        return;
      }
    }
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
    auto rows = dataset::parse_import(read_file(a->file), a->file, o);
    auto store = dataset::Store::open(a->db, dataset::OpenMode::create);
    auto res = store_problems(*store, rows, "data import", config);
    std::cout << "import: " << rows.size() << " records read from " << a->file << ", " << res.inserted << " new, "
              << res.duplicates << " already present (split " << o.split << ")\n";
  });
}

}  // namespace distill::cli
