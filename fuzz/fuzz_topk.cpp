// fuzz/fuzz_topk.cpp: a KD top-k blob as the store holds it (dataset/topk.h); the first byte chooses the k the
// column claims.
#include "dataset/topk.h"
#include "fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  distill::fuzz::refusing([&] { distill::dataset::decode_topk(distill::fuzz::bytes(data + 1, size - 1), data[0] % 9, "fuzz:topk"); });
  return 0;
}
