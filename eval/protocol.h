// eval/protocol.h: what an eval run measured under, read back from the resolved config it stored (runs.config_toml,
// `key = value` lines as cli/config.cpp writes them): split, decoding (greedy or temperature + top-p), K samples,
// k, the length cap, the problem limit and the seed. `eval --resume` continues only a run of the same protocol, and
// `compare` shows each model's and says when they differ. Pure.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace distill::eval {

// The keys that define what an eval run measured, in the order messages name them.
const std::vector<std::string>& protocol_keys();

// "" when both configs hold the same value for every protocol key, else the first difference:
// "KEY = A, this one has B" (a missing key reads "(unset)").
std::string protocol_difference(const std::string& before_toml, const std::string& now_toml);

struct Protocol {
  std::string split;
  bool greedy = false;
  double temperature = 0, top_p = 1;
  std::int64_t samples = 0, k = 0, limit = 0, max_tokens = 0;  // k 0: K
  std::uint64_t seed = 0;
  bool known = false;  // the config held the protocol keys (runs recorded by hand may not)
};

Protocol protocol_of(const std::string& config_toml);

// One line: "greedy, 96 tokens max, seed 1" or "T 0.6, top-p 0.95, K 4 (k 2), 256 tokens max, seed 0"; "unknown"
// without the keys.
std::string describe(const Protocol& p);

}  // namespace distill::eval
