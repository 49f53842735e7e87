// cli/common.cpp: see common.h.
#include "cli/common.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "common/errors.h"
#include "common/progress.h"

namespace distill::cli {

std::pair<int, int> parse_int_range(const std::string& s, const std::string& flag) {
  auto parse = [&](const std::string& t) {
    if (t.empty() || t.size() > 6 || t.find_first_not_of("0123456789") != std::string::npos)
      throw InputError(flag + " '" + s + "' is not a level or a range (expected e.g. 3 or 1-3)");
    return std::stoi(t);
  };
  const auto dash = s.find('-');
  if (dash == std::string::npos) {
    int v = parse(s);
    return {v, v};
  }
  return {parse(s.substr(0, dash)), parse(s.substr(dash + 1))};
}

void print_config(const std::string& toml) {
  if (const char* q = std::getenv("DISTILL_QUIET"); q && *q && *q != '0') return;
  std::cerr << toml;
}

std::string fmt_fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

dataset::InsertResult store_problems(dataset::Store& store, const std::vector<dataset::ProblemRow>& rows,
                                     const std::string& kind, const std::string& config) {
  Progress bar(kind + ": storing", rows.size(), "problems");
  std::size_t shown = 0;
  auto res = store.insert_problems(rows, kind, config, [&](std::size_t done) {
    bar.add(done - shown);
    shown = done;
  });
  bar.finish();
  return res;
}

namespace {
const std::vector<std::pair<const char*, const char*>> kFilters = {
    {"status", "pending | kept | rejected, or a comma list (kept,rejected)"},
    {"verdict", "correct | incorrect | unparsable | unverified"},
    {"split", "problems of this split only"},
    {"problem", "samples of this problem id"},
    {"run", "samples drawn by this run id (generate or data import)"},
    {"model", "samples written by this model id (the teacher)"},
    {"min_tokens", "completions at least this long"},
    {"max_tokens", "completions at most this long"},
    {"search", "SQLite FTS5 query over completions, e.g. 'carry' or '\"mod 10\" NOT subtract'"},
    {"sort", "id | -id | tokens | -tokens (- : descending; write --sort=-tokens)"},
    {"after", "the page after this row: the KEY:ID `data list` printed as next"}};
std::string dashed(std::string n) {
  std::replace(n.begin(), n.end(), '_', '-');
  return "--" + n;
}
}  // namespace

void add_list_filters(CLI::App& app, std::map<std::string, std::string>& values, bool paging) {
  for (const auto& [name, help] : kFilters) {
    if (!paging && (std::string(name) == "sort" || std::string(name) == "after")) continue;
    app.add_option(dashed(name), values[name], help);
  }
}

std::map<std::string, std::string> given_list_filters(const CLI::App& app, const std::map<std::string, std::string>& values) {
  std::map<std::string, std::string> out;
  for (const auto& [name, v] : values)
    if (const auto* o = app.get_option_no_throw(dashed(name)); o && o->count() > 0) out[name] = v;
  return out;
}

dataset::ListQuery list_filters(const CLI::App& app, const std::map<std::string, std::string>& values, dataset::Store& s) {
  const auto given = given_list_filters(app, values);
  auto q = dataset::parse_list_query(
      [&](const std::string& name) -> std::optional<std::string> {
        const auto it = given.find(name);  // not given, or not one of this command's filters (--limit is its own)
        if (it == given.end()) return std::nullopt;
        if (it->second.empty()) throw InputError(dashed(name) + " is empty");
        return it->second;
      },
      "--");
  dataset::check_split(s, q.split, "--split");
  return q;
}

}  // namespace distill::cli
