// fuzz/fuzz_safetensors.cpp: the safetensors header (model/safetensors.h) of a file of this many bytes.
#include "fuzz/fuzz_common.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  distill::fuzz::refusing([&] { distill::model::parse_safetensors_header(distill::fuzz::bytes(data, size), size, "fuzz.safetensors"); });
  return 0;
}
