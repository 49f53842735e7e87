// cli/command.h: how a subcommand plugs into the CLI: a CLI11 app plus the function that runs it, and the
// shared --config handling (TOML keys = long option names; flags override the file).
// Only cli/ catches errors and chooses exit codes; commands throw distill::InputError for bad input.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace distill::cli {

struct Registry {
  std::map<const CLI::App*, std::function<void()>> run;  // leaf app -> its action
  void add(CLI::App* app, std::function<void()> fn);     // also adds --config to `app`
};

// Applies FILE.toml to the options of `app` that were not given on the command line. Keys are the long
// option names ("vocab-size" or "vocab_size"). Unknown keys, tables and arrays throw InputError naming
// the file and key. Returns the keys, as the file spells them, whose value it gave (the command line did not).
std::vector<std::string> apply_config_file(CLI::App& app, const std::string& path);
// The same for the file's bytes; `path` names it in messages. Pure: reads nothing else.
std::vector<std::string> apply_config_text(CLI::App& app, std::string_view text, const std::string& path);

// The resolved configuration of `app` (every long option, given or default) as TOML, for the runs table.
std::string resolved_config_toml(const CLI::App& app);

// "data synth" for the synth subcommand of data.
std::string command_path(const CLI::App& app);

// Throws InputError if option `name` (e.g. "--db") has no value from flags or config.
void require(const CLI::App& app, const std::string& name);

// Each subcommand file registers itself through one of these.
void register_data_synth(CLI::App& data, Registry& reg);
void register_data_import(CLI::App& data, Registry& reg);
void register_data_stats(CLI::App& data, Registry& reg);
void register_data_review(CLI::App& data, Registry& reg);  // show, review, undo, log
void register_data_curate(CLI::App& data, Registry& reg);  // filter, dedup, decontaminate, verify
void register_data_browse(CLI::App& data, Registry& reg);  // list, export
void register_data_check(CLI::App& data, Registry& reg);   // check-answers
void register_data_merge(CLI::App& data, Registry& reg);   // merge
void register_tokenizer(CLI::App& root, Registry& reg);
void register_compare(CLI::App& root, Registry& reg);
void register_studio(CLI::App& root, Registry& reg);
void register_runs(CLI::App& root, Registry& reg);

// The commands that need LibTorch live in a second binary, distill-torch, beside distill: `distill` hands them
// (and --version) over with exec before it parses anything, so the store's commands never load LibTorch.
struct TorchCommand {
  const char* name;
  const char* about;  // the one line of `distill --help`
};
const std::vector<TorchCommand>& torch_commands();
const char* torch_command_about(const std::string& name);

// Which half of the command line a binary has: the LibTorch commands' registration and --version's text.
struct CliParts {
  void (*register_torch)(CLI::App& root, Registry& reg);
  std::string (*version_text)();
};
// Runs the whole CLI on an argument vector (args[0] is the program name) and returns the exit code.
int run_cli_with(const std::vector<std::string>& args, const CliParts& parts);

// ---- distill-torch only ----
void register_demo(CLI::App& root, Registry& reg);
void register_generate(CLI::App& root, Registry& reg);
void register_pretrain(CLI::App& root, Registry& reg);
void register_train(CLI::App& root, Registry& reg);
void register_plan(CLI::App& root, Registry& reg);
void register_eval(CLI::App& root, Registry& reg);
void register_complete(CLI::App& root, Registry& reg);
void register_serve(CLI::App& root, Registry& reg);
void register_export(CLI::App& root, Registry& reg);
std::string version_text();  // for --version
// run_cli_with every command: `distill demo` uses it to run its steps exactly as a user would type them.
int run_cli(const std::vector<std::string>& args);

}  // namespace distill::cli
