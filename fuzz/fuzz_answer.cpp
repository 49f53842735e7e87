// fuzz/fuzz_answer.cpp: answer extraction and equivalence (dataset/answer.h, dataset/math_equiv.h). The input is a
// completion, then (after the first NUL byte, when there is one) the gold answer it is verified against.
#include <string_view>

#include "dataset/answer.h"
#include "fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;  // longer texts only repeat what these find, slower
  const auto all = distill::fuzz::bytes(data, size);
  const auto cut = all.find('\0');
  const auto completion = all.substr(0, cut);
  const auto gold = cut == std::string_view::npos ? std::string_view("42") : all.substr(cut + 1);
  distill::fuzz::refusing([&] {
    distill::dataset::last_boxed(completion);
    distill::dataset::extract_final(completion, 1);
    distill::dataset::verify_completion(completion, gold);
  });
  return 0;
}
