// common/config_text.h: reading back the resolved config a run stored (runs.config_toml: `key = value` lines as
// cli/config.cpp writes them), to tell whether a later run repeats its settings (eval --resume, compare,
// generate's resume), and comma lists in option values. Pure.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace distill {

// `key = value` lines of a resolved config (comments and blank lines skipped, string quotes removed; arrays and
// other values kept as written).
std::map<std::string, std::string> config_values(const std::string& toml);

// `toml` with KEY's line set to the string VALUE (appended when absent): a stage records what it resolved, such as
// the prompt format `auto` chose.
std::string with_config_value(const std::string& toml, const std::string& key, const std::string& value);

// Equal as text, or as numbers ("0.6" and "0.60").
bool same_value(const std::string& a, const std::string& b);

// "a,b,c" -> {"a", "b", "c"}: option values that take a comma list (--status kept,rejected; --runs 3,5). Empty
// items are kept ("a,,b" has three), so the caller can refuse them; "" gives none.
std::vector<std::string> split_list(const std::string& list, char sep = ',');

// A whole decimal number >= 0 given as text (a filter, an id in a URL or a list); InputError naming `what`.
std::int64_t whole_number(const std::string& what, const std::string& v);

}  // namespace distill
