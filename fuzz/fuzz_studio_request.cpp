// fuzz/fuzz_studio_request.cpp: what a browser (or anyone holding the token) sends `distill studio`: the first line
// is a query string (name=value pairs, as httplib hands them over decoded) read as the sample filters, the rest a
// JSON body read as a review, a bulk action and an undo (studio/requests.h). InputError (answered 400) is the only
// refusal; the real server answers each of these before it touches the store.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fuzz/fuzz_common.h"
#include "studio/requests.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace distill;
  const auto in = fuzz::bytes(data, size);
  const auto nl = in.find('\n');
  const auto query = in.substr(0, nl == std::string_view::npos ? in.size() : nl);
  const auto body = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  std::vector<std::pair<std::string, std::string>> params;
  for (std::size_t at = 0; at <= query.size();) {
    auto end = query.find('&', at);
    if (end == std::string_view::npos) end = query.size();
    const auto pair = query.substr(at, end - at);
    const auto eq = pair.find('=');
    params.emplace_back(std::string(pair.substr(0, eq)), eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1)));
    at = end + 1;
  }
  fuzz::refusing([&] {
    studio::parse_filters([&](const std::string& name) -> std::optional<std::string> {
      for (const auto& [k, v] : params)
        if (k == name) return v;
      return std::nullopt;
    });
  });
  fuzz::refusing([&] { studio::parse_review(body); });
  fuzz::refusing([&] { studio::parse_bulk(body); });
  fuzz::refusing([&] { studio::parse_undo(body); });
  return 0;
}
