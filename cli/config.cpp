// cli/config.cpp: --config FILE.toml for every subcommand (toml++ parses; CLI11 options receive the values).
#include <toml++/toml.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "cli/command.h"
#include "common/errors.h"

namespace distill::cli {

namespace {

bool is_internal(const CLI::Option* o) {
  const auto& names = o->get_lnames();
  return names.empty() ? o->get_name(true, false).empty()
                       : (names[0] == "help" || names[0] == "config" || names[0] == "help-all");
}

std::string key_of(const CLI::Option* o) {
  if (!o->get_lnames().empty()) return o->get_lnames()[0];
  return o->get_name(true, false);  // positional
}

CLI::Option* find_option(CLI::App& app, std::string key) {
  for (auto& c : key)
    if (c == '_') c = '-';
  for (CLI::Option* o : app.get_options()) {
    if (is_internal(o)) continue;
    if (key_of(o) == key) return o;
  }
  return nullptr;
}

std::string known_keys(CLI::App& app) {
  std::string s;
  for (CLI::Option* o : app.get_options())
    if (!is_internal(o)) s += (s.empty() ? "" : ", ") + key_of(o);
  return s;
}

}  // namespace

std::string command_path(const CLI::App& app) {
  std::string path = app.get_name();
  for (const CLI::App* p = app.get_parent(); p && p->get_parent(); p = p->get_parent()) path = p->get_name() + " " + path;
  return path;
}

void Registry::add(CLI::App* app, std::function<void()> fn) {
  app->add_option("--config", "TOML file with defaults for this command's options (flags override it)");
  run[app] = std::move(fn);
}

void apply_config_file(CLI::App& app, const std::string& path) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) throw InputError("--config " + path + ": no such file");
  if (!fs::is_regular_file(path)) throw InputError("--config " + path + ": not a regular file");
  toml::table tbl;
  try {
    tbl = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    throw InputError(path + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) +
                     ": invalid TOML: " + std::string(e.description()));
  }
  for (auto&& [k, node] : tbl) {
    const std::string key(k.str());
    CLI::Option* opt = find_option(app, key);
    if (!opt)
      throw InputError(path + ": unknown key '" + key + "' for `distill " + command_path(app) +
                       "` (expected one of: " + known_keys(app) + ")");
    std::string value;
    if (auto s = node.value<std::string>(); s && node.is_string()) value = *s;
    else if (node.is_integer()) value = std::to_string(*node.value<std::int64_t>());
    else if (node.is_floating_point()) {
      std::ostringstream os;
      os.precision(17);
      os << *node.value<double>();
      value = os.str();
    } else if (node.is_boolean()) value = *node.value<bool>() ? "true" : "false";
    else
      throw InputError(path + ": key '" + key + "' must be a string, number or boolean");
    // The command line wins, but the file's value must still be one the option takes: it is converted (which
    // sets the variable), then the flag's own results are put back and converted again.
    const auto given = opt->results();
    const bool overridden = opt->count() > 0;
    try {
      opt->clear();
      opt->add_result(value);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      throw InputError(path + ": key '" + key + "': " + e.what());
    }
    if (overridden) {
      opt->clear();
      opt->add_result(given);
      opt->run_callback();
    }
  }
}

std::string resolved_config_toml(const CLI::App& app) {
  std::ostringstream os;
  os << "# distill " << command_path(app) << "\n";
  for (const CLI::Option* o : app.get_options()) {
    if (is_internal(o)) continue;
    std::string v;
    if (o->count() > 0) {
      const auto& r = o->results();
      v = r.empty() ? "" : r.back();
    } else {
      v = o->get_default_str();
    }
    if (o->get_expected_max() == 0 && o->count() == 0 && v.empty()) v = "false";  // flags
    if (o->get_expected_max() == 0 && o->count() > 0 && (v.empty() || v == "1")) v = "true";
    bool bare = v == "true" || v == "false";
    if (!bare && !v.empty() && v.find_first_not_of("0123456789.-+") == std::string::npos) {
      char* end = nullptr;
      std::strtod(v.c_str(), &end);
      bare = end == v.c_str() + v.size() && std::isdigit(static_cast<unsigned char>(v.back()));
    }
    os << key_of(o) << " = ";
    if (bare) {
      os << v;
    } else {
      os << '"';
      for (char c : v) {
        if (c == '"' || c == '\\') os << '\\';
        if (c == '\n') { os << "\\n"; continue; }
        os << c;
      }
      os << '"';
    }
    os << "\n";
  }
  return os.str();
}

void require(const CLI::App& app, const std::string& name) {
  const CLI::Option* o = app.get_option_no_throw(name);
  const bool flag = name.rfind("--", 0) == 0;
  const auto key = flag ? name.substr(2) : name;
  const auto how = flag ? name + " (as a flag or as `" + key + " = ...` in --config)"
                        : "the argument " + name + " (or `" + key + " = ...` in --config)";
  if (!o || o->count() == 0) throw InputError("`distill " + command_path(app) + "` needs " + how);
  if (o->results().empty() || o->results().back().empty())
    throw InputError("`distill " + command_path(app) + "`: " + name + " is empty; it needs a value");
}

}  // namespace distill::cli
