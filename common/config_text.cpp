// common/config_text.cpp: see config_text.h.
#include "common/config_text.h"

#include <charconv>

#include "common/errors.h"

#include <cstdlib>
#include <sstream>

namespace distill {

std::map<std::string, std::string> config_values(const std::string& toml) {
  std::map<std::string, std::string> out;
  std::istringstream in(toml);
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find(" = ");
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    auto v = line.substr(eq + 3);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    out[line.substr(0, eq)] = v;
  }
  return out;
}

std::string with_config_value(const std::string& toml, const std::string& key, const std::string& value) {
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') quoted += '\\';
    if (c == '\n') { quoted += "\\n"; continue; }
    quoted += c;
  }
  quoted += '"';
  std::istringstream in(toml);
  std::string out;
  bool found = false;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != '#' && line.rfind(key + " = ", 0) == 0) {
      line = key + " = " + quoted;
      found = true;
    }
    out += line + "\n";
  }
  if (!found) out += key + " = " + quoted + "\n";
  return out;
}

bool same_value(const std::string& a, const std::string& b) {
  if (a == b) return true;
  char *ea = nullptr, *eb = nullptr;
  const double x = std::strtod(a.c_str(), &ea), y = std::strtod(b.c_str(), &eb);
  return !a.empty() && !b.empty() && *ea == 0 && *eb == 0 && x == y;
}

std::vector<std::string> split_list(const std::string& list, char sep) {
  std::vector<std::string> out;
  if (list.empty()) return out;
  std::size_t from = 0;
  for (auto at = list.find(sep); at != std::string::npos; at = list.find(sep, from)) {
    out.push_back(list.substr(from, at - from));
    from = at + 1;
  }
  out.push_back(list.substr(from));
  return out;
}

std::int64_t whole_number(const std::string& what, const std::string& v) {
  std::int64_t x = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size() || x < 0)
    throw InputError(what + " '" + v + "': expected a whole number >= 0");
  return x;
}

}  // namespace distill
