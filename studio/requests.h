// studio/requests.h: what the studio's write requests carry, parsed from their JSON bodies (and the sample filters
// from a query's parameters). Pure functions over bytes, fuzzed by fuzz/fuzz_studio_request.cpp: bad input throws
// InputError (answered 400), never anything else.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataset/browse.h"

namespace distill::studio {

// POST /api/review: {"ids": [..], "decision": "keep"|"reject", "reason": "", "seen": {"ID": action_id|null}}
struct ReviewRequest {
  std::vector<std::int64_t> ids;
  bool keep = false;
  std::string reason;
  std::map<std::int64_t, std::optional<std::int64_t>> seen;  // what the page showed of each sample's latest action
};
ReviewRequest parse_review(std::string_view body);

// POST /api/bulk: {"query": {filters}, "decision": ..., "reason": "", "stamp": S}
struct BulkRequest {
  dataset::ListQuery query;
  bool keep = false;
  std::string reason, stamp;
  std::string params_json;  // the action's parameters as logged: {"via": "studio", "query": {...}}
};
BulkRequest parse_bulk(std::string_view body);

// POST /api/undo: {"action_id": N}
std::int64_t parse_undo(std::string_view body);

// The sample filters of a query (named as in `data list`), at most 500 rows a page.
dataset::ListQuery parse_filters(const std::function<std::optional<std::string>(const std::string&)>& get);

}  // namespace distill::studio
