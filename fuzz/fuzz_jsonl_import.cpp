// fuzz/fuzz_jsonl_import.cpp: a JSONL file for `data import` (dataset/import.h), read as each format reads it.
#include <string>

#include "dataset/import.h"
#include "fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace distill::dataset;
  for (const char* format : {"jsonl", "gsm8k", "math"}) {
    distill::fuzz::refusing([&] {
      ImportOptions o;
      o.format = parse_import_format(format);
      o.solution_field = "solution";
      std::vector<std::string> warnings;
      parse_import(distill::fuzz::bytes(data, size), "fuzz.jsonl", o, &warnings);
    });
  }
  return 0;
}
