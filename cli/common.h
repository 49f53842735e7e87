// cli/common.h: small helpers shared by subcommand files (argument parsing, printing). No logic of stages.
#pragma once

#include <string>
#include <utility>

namespace distill::cli {

// "3" -> (3, 3); "1-3" -> (1, 3). Throws InputError naming `flag`.
std::pair<int, int> parse_int_range(const std::string& s, const std::string& flag);

// The resolved config, on stderr, so stdout stays clean for --json.
void print_config(const std::string& toml);

std::string fmt_fixed(double v, int digits);

}  // namespace distill::cli
