// fuzz/fuzz_openai_response.cpp: what a remote teacher answers (net/openai_wire.h): a whole response body and an
// error body for both endpoints, and the same bytes as the data of streamed chunks (split at newlines).
#include <string_view>

#include "fuzz/fuzz_common.h"
#include "net/openai_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace distill::net;
  const auto body = distill::fuzz::bytes(data, size);
  for (auto e : {Endpoint::chat, Endpoint::completions}) {
    distill::fuzz::refusing([&] { parse_response(body, e); });
    parse_error(body);
    distill::fuzz::refusing([&] {
      StreamAccumulator acc(e);
      std::size_t at = 0;
      while (at <= body.size() && !acc.done()) {
        const auto nl = body.find('\n', at);
        acc.add(body.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at));
        if (nl == std::string_view::npos) break;
        at = nl + 1;
      }
    });
  }
  token_id_of(body);
  parse_retry_after(body, 1.7e9);
  return 0;
}
