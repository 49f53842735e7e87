// fuzz/fuzz_toml_config.cpp: a --config TOML file (cli/config.cpp) applied to a command with options of every
// kind the CLI uses: text, integers, floats, a flag and a checked range.
#include <CLI/CLI.hpp>

#include "cli/command.h"
#include "fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  CLI::App app("fuzz");
  std::string db, split;
  std::int64_t steps = 0;
  double lr = 0;
  bool force = false;
  int seed = 0;
  app.add_option("--db", db);
  app.add_option("--split", split)->check(CLI::IsMember({"train", "eval"}));
  app.add_option("--steps", steps)->check(CLI::PositiveNumber);
  app.add_option("--lr", lr);
  app.add_option("--seed", seed)->check(CLI::Range(0, 1000));
  app.add_flag("--force", force);
  distill::fuzz::refusing([&] { distill::cli::apply_config_text(app, distill::fuzz::bytes(data, size), "fuzz.toml"); });
  return 0;
}
