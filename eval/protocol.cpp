// eval/protocol.cpp: see protocol.h.
#include "eval/protocol.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "common/config_text.h"

namespace distill::eval {

const std::vector<std::string>& protocol_keys() {
  static const std::vector<std::string> keys = {"split", "samples", "k", "limit", "temperature", "top-p",
                                                "greedy", "max-tokens", "seed"};
  return keys;
}

std::string protocol_difference(const std::string& before_toml, const std::string& now_toml) {
  const auto before = config_values(before_toml), now = config_values(now_toml);
  for (const auto& key : protocol_keys()) {
    const auto x = before.find(key), y = now.find(key);
    if (x == before.end() || y == now.end() || !same_value(x->second, y->second))
      return key + " = " + (x == before.end() ? "(unset)" : x->second) + ", this one has " +
             (y == now.end() ? "(unset)" : y->second);
  }
  // The prompt format is recorded resolved; runs stored before that hold "auto" or nothing and are not compared.
  const auto x = before.find("prompt-format"), y = now.find("prompt-format");
  if (x != before.end() && y != now.end() && x->second != "auto" && x->second != y->second)
    return "prompt-format = " + x->second + ", this one has " + y->second;
  return "";
}

Protocol protocol_of(const std::string& config_toml) {
  const auto v = config_values(config_toml);
  Protocol p;
  p.known = true;
  for (const auto& key : protocol_keys()) p.known = p.known && v.count(key);
  if (!p.known) return p;
  auto num = [&](const char* key) { return std::strtod(v.at(key).c_str(), nullptr); };
  auto whole = [&](const char* key) { return std::strtoll(v.at(key).c_str(), nullptr, 10); };
  p.split = v.at("split");
  p.greedy = v.at("greedy") == "true";
  p.temperature = num("temperature");
  p.top_p = num("top-p");
  p.samples = whole("samples");
  p.k = whole("k");
  p.limit = whole("limit");
  p.max_tokens = whole("max-tokens");
  p.seed = std::strtoull(v.at("seed").c_str(), nullptr, 10);
  if (p.greedy) p.samples = 1, p.k = 0;  // as run_eval runs it
  return p;
}

std::string describe(const Protocol& p) {
  if (!p.known) return "unknown";
  std::ostringstream os;
  if (p.greedy) {
    os << "greedy";
  } else {
    char t[64];
    std::snprintf(t, sizeof t, "T %g, top-p %g", p.temperature, p.top_p);
    os << t << ", K " << p.samples;
    if (p.k > 0 && p.k != p.samples) os << " (k " << p.k << ")";
  }
  os << ", " << p.max_tokens << " tokens max, seed " << p.seed;
  return os.str();
}

}  // namespace distill::eval
