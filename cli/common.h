// cli/common.h: small helpers shared by subcommand files (argument parsing, printing, storing with a progress
// bar). No logic of stages.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "dataset/browse.h"
#include "dataset/store.h"

namespace CLI {
class App;
}
namespace distill::teacher {
struct SamplingParams;
}

namespace distill::cli {

// --temperature, --top-p, --top-k and --min-p into `s`: the sampling filters generate and complete share
// (cli/sampling_flags.cpp, in distill-torch only).
void add_sampling_filters(CLI::App& app, teacher::SamplingParams& s);

// "3" -> (3, 3); "1-3" -> (1, 3). Throws InputError naming `flag`.
std::pair<int, int> parse_int_range(const std::string& s, const std::string& flag);

// The resolved config, on stderr, so stdout stays clean for --json.
void print_config(const std::string& toml);

std::string fmt_fixed(double v, int digits);

// Stores problem rows in one transaction with a progress bar; `kind` names the run ("data synth").
dataset::InsertResult store_problems(dataset::Store& store, const std::vector<dataset::ProblemRow>& rows,
                                     const std::string& kind, const std::string& config);

// The sample filters of `data list` and `data review --query` (--status as a comma list, --verdict, --split,
// --problem, --run, --model, --min-tokens, --max-tokens, --search; with `paging` also --sort and --after), kept as
// text in `values` and read by list_filters() through dataset::parse_list_query, as the studio reads its own.
void add_list_filters(CLI::App& app, std::map<std::string, std::string>& values, bool paging);
// The query those flags give (--split checked against the store). InputError for a bad value.
dataset::ListQuery list_filters(const CLI::App& app, const std::map<std::string, std::string>& values, dataset::Store& s);
// The filter flags given (on the command line or in --config), by name, with their text.
std::map<std::string, std::string> given_list_filters(const CLI::App& app, const std::map<std::string, std::string>& values);

}  // namespace distill::cli
