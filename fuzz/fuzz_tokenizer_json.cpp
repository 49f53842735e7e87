// fuzz/fuzz_tokenizer_json.cpp: a tokenizer.json (model/hf_tokenizer.h); one that loads also encodes and decodes
// a fixed text with special tokens, digits, spaces and non-ASCII letters.
#include <string>

#include "fuzz/fuzz_common.h"
#include "model/hf_tokenizer.h"
#include "model/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  distill::fuzz::refusing([&] {
    auto tok = distill::model::load_hf_tokenizer_from_bytes(std::string(distill::fuzz::bytes(data, size)), "", "fuzz/tokenizer.json");
    const auto ids = tok->encode("Hello world! 12 + 30 = 42\n\tÜber naïve café <|im_start|>  ");
    tok->decode(ids);
  });
  return 0;
}
