// studio/requests.cpp: see requests.h.
#include "studio/requests.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/config_text.h"
#include "common/errors.h"

namespace distill::studio {

namespace {

using json = nlohmann::json;

std::int64_t whole(const std::string& name, const std::string& v) { return whole_number("parameter " + name, v); }

bool keep_of(const json& body) {
  const auto d = body.at("decision").get<std::string>();
  if (d != "keep" && d != "reject") throw InputError("decision '" + d + "': expected keep or reject");
  return d == "keep";
}

// A body's JSON, and the reads of its fields, with every library error as InputError.
template <class F>
auto reading(std::string_view body, F&& f) {
  try {
    const auto j = json::parse(body);
    if (!j.is_object()) throw InputError("the request body is not a JSON object");
    return f(j);
  } catch (const json::exception& e) {
    throw InputError(std::string("the request body is not the JSON expected: ") + without_library_tag(e.what()));
  }
}

}  // namespace

ReviewRequest parse_review(std::string_view body) {
  return reading(body, [](const json& j) {
    ReviewRequest r;
    const auto seen = j.value("seen", json::object());  // named: a range-for over a temporary's items() dangles
    for (const auto& [id, head] : seen.items())
      r.seen[whole("seen", id)] = head.is_null() ? std::nullopt : std::optional<std::int64_t>(head.get<std::int64_t>());
    r.ids = j.at("ids").get<std::vector<std::int64_t>>();
    for (const auto& [id, _] : r.seen)
      if (std::find(r.ids.begin(), r.ids.end(), id) == r.ids.end())
        throw InputError("seen names sample " + std::to_string(id) + ", not in ids");
    r.keep = keep_of(j);
    r.reason = j.value("reason", "");
    return r;
  });
}

BulkRequest parse_bulk(std::string_view body) {
  return reading(body, [](const json& j) {
    const auto& qj = j.at("query");
    if (!qj.is_object()) throw InputError("query: expected an object of filters");
    BulkRequest r;
    r.query = parse_filters([&](const std::string& name) -> std::optional<std::string> {
      if (!qj.contains(name) || qj[name].is_null()) return std::nullopt;
      return qj[name].is_string() ? qj[name].get<std::string>() : qj[name].dump();
    });
    r.keep = keep_of(j);
    r.reason = j.value("reason", "");
    r.stamp = j.at("stamp").get<std::string>();
    r.params_json = json{{"via", "studio"}, {"query", qj}}.dump(-1, ' ', false, json::error_handler_t::replace);
    return r;
  });
}

std::int64_t parse_undo(std::string_view body) {
  return reading(body, [](const json& j) { return j.at("action_id").get<std::int64_t>(); });
}

dataset::ListQuery parse_filters(const std::function<std::optional<std::string>(const std::string&)>& get) {
  auto q = dataset::parse_list_query(get, "");
  q.limit = std::min<std::int64_t>(q.limit, 500);
  return q;
}

}  // namespace distill::studio
