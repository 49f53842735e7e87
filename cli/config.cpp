// cli/config.cpp: --config FILE.toml for every subcommand (toml++ parses; CLI11 options receive the values).
#include <toml++/toml.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "cli/command.h"
#include "common/errors.h"
#include "common/fs.h"

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

std::vector<std::string> apply_config_file(CLI::App& app, const std::string& path) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) throw InputError("--config " + path + ": no such file");
  if (!fs::is_regular_file(path)) throw InputError("--config " + path + ": not a regular file");
  return apply_config_text(app, read_file(path), path);
}

namespace {

// A config file is lines of `KEY = VALUE  # comment`, VALUE a string, number or boolean (tables and arrays set no
// option). That shape is checked here, before toml++ reads the text: Debian's toml++ 3.3.0 reaches
// __builtin_unreachable() (undefined behaviour) on some non-ASCII characters outside strings and comments, such as
// U+00E9 after a value, and reads a malformed value on through quotes and brackets (found by
// fuzz/fuzz_toml_config.cpp). So outside strings and comments only the ASCII of keys, numbers, booleans and dates
// reaches it.
void check_config_shape(std::string_view t, const std::string& path) {
  std::size_t i = 0, line = 1, line_start = 0;
  auto fail = [&](const std::string& what) {
    throw InputError(path + ":" + std::to_string(line) + ":" + std::to_string(i - line_start + 1) + ": invalid config: " +
                     what + " (expected lines of KEY = VALUE, VALUE a string, number or boolean)");
  };
  auto at = [&](std::string_view s) { return i < t.size() && t.substr(i).starts_with(s); };
  auto spaces = [&] { while (i < t.size() && (t[i] == ' ' || t[i] == '\t')) ++i; };
  auto token = [&](auto allowed) {
    const auto from = i;
    while (i < t.size() && allowed(t[i])) ++i;
    return i > from;
  };
  auto string = [&] {  // a quoted string of any kind; false when none starts here
    const std::string_view close = at("\"\"\"") ? "\"\"\"" : at("\'\'\'") ? "\'\'\'" : at("\"") ? "\"" : at("\'") ? "\'" : "";
    if (close.empty()) return false;
    const bool escapes = close[0] == '"', one_line = close.size() == 1;
    for (i += close.size(); !at(close); ++i) {
      if (i >= t.size() || (one_line && t[i] == '\n')) {
        i = std::min(i, t.size());
        fail("a string that does not end");
      }
      if (t[i] == '\n') ++line, line_start = i + 1;
      if (!escapes || t[i] != '\\') continue;
      // toml++ tests what follows a backslash (and a line-ending one's trimmed whitespace) with the bug above
      auto j = i + 1;
      while (j < t.size() && (t[j] == ' ' || t[j] == '\t' || t[j] == '\r' || (!one_line && t[j] == '\n'))) ++j;
      if (j < t.size() && static_cast<unsigned char>(t[j]) >= 0x80) fail("a non-ASCII character after a backslash");
      if (i + 1 < t.size() && t[i + 1] != '\n') ++i;  // the escaped character (a newline is counted above)
    }
    i += close.size();
    if (close.size() == 3)  // a multi-line string may end in one or two of its quotes: """a "b"""" is `a "b"`
      for (int extra = 0; extra < 2 && i < t.size() && t[i] == close[0]; ++extra) ++i;
    return true;
  };
  auto end_of_line = [&] {  // spaces, an optional comment, then the newline (or the end)
    spaces();
    if (i < t.size() && t[i] == '#')
      while (i < t.size() && t[i] != '\n') ++i;
    if (i < t.size() && t[i] == '\r' && i + 1 < t.size() && t[i + 1] == '\n') ++i;
    if (i < t.size() && t[i] != '\n') fail("unexpected text after the value");
    if (i < t.size()) ++i, ++line, line_start = i;
  };
  auto key_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; };
  auto value_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || (c && std::strchr("_+-.:", c)); };
  if (at("\xEF\xBB\xBF")) i = line_start = 3;  // a UTF-8 byte-order mark, as Windows editors write
  while (i < t.size()) {
    spaces();
    if (i == t.size()) break;
    if (t[i] == '#' || t[i] == '\n' || t[i] == '\r') {
      end_of_line();
      continue;
    }
    if (i < t.size() && t[i] == '[') fail("a table");
    if (!string() && !token(key_char)) fail("expected a key");
    spaces();
    if (!at("=")) fail("expected '=' after the key");
    ++i;
    spaces();
    if (i < t.size() && (t[i] == '[' || t[i] == '{')) fail("an array or inline table");
    if (!string() && !token(value_char)) fail("expected a value");
    end_of_line();
  }
}

}  // namespace

std::vector<std::string> apply_config_text(CLI::App& app, std::string_view text, const std::string& path) {
  check_config_shape(text, path);
  std::vector<std::string> taken;
  toml::table tbl;
  try {
    tbl = toml::parse(text, std::string_view(path));
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
    } else {
      taken.push_back(key);
    }
  }
  return taken;
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
