// fuzz/fuzz_openai_request.cpp: a request body `distill serve` receives (net/openai_wire.h parse_request), for
// both endpoints; RequestError (answered as HTTP 400) is its documented refusal.
#include "fuzz/fuzz_common.h"
#include "net/openai_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace distill::net;
  for (auto e : {Endpoint::chat, Endpoint::completions}) {
    try {
      parse_request(distill::fuzz::bytes(data, size), e);
    } catch (const RequestError&) {
    }
  }
  return 0;
}
