// fuzz/fuzz_sse.cpp: a server-sent event stream (net/sse.h), fed in pieces whose sizes the first byte chooses,
// with a small event cap so the cap's path is reached.
#include "fuzz/fuzz_common.h"
#include "net/sse.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t step = 1 + data[0] % 17;
  const auto body = distill::fuzz::bytes(data + 1, size - 1);
  distill::fuzz::refusing([&] {
    distill::net::SseDecoder d(4096);
    for (std::size_t at = 0; at < body.size(); at += step) d.feed(body.substr(at, step));
    d.pending();
  });
  return 0;
}
