// cli/cmd_data_import.cpp: `distill data import`: a GSM8K / MATH / JSONL file -> problems, in one transaction.
#include <iostream>

#include "cli/command.h"
#include "cli/common.h"
#include "common/fs.h"
#include "dataset/import.h"

namespace distill::cli {

namespace {
struct Args {
  std::string db, format, file, split = "train", prompt_field = "prompt", answer_field = "answer", solution_field,
                                   source;
};
}  // namespace

void register_data_import(CLI::App& data, Registry& reg) {
  auto a = std::make_shared<Args>();
  CLI::App* c = data.add_subcommand("import", "import problems from a GSM8K, MATH or generic JSONL file");
  c->add_option("--db", a->db, "store file (created if missing)");
  c->add_option("--format", a->format, "gsm8k | math | jsonl");
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
