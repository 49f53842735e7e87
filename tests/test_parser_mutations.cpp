// tests/test_parser_mutations.cpp: the parsers that read bytes from outside (safetensors headers, problem files,
// tokenizer.model, answer extraction): thousands of deterministic mutations of valid inputs each (bytes flipped,
// set to JSON punctuation or digits, ranges cut, repeated or truncated) must give a result or an InputError,
// never another exception or a crash. A seeded stand-in for the fuzzing the roadmap plans; the mutator is
// tests/helpers.h's, which also runs on config.json (test_model_config.cpp), tokenizer.json and text to encode
// (test_hf_tokenizer.cpp) and the chat-template families (test_chat_template.cpp), beside their fixtures.
#include <catch2/catch.hpp>

#include <string>

#include "common/errors.h"
#include "common/rng.h"
#include "tests/helpers.h"
#include "dataset/answer.h"
#include "dataset/import.h"
#include "model/safetensors.h"
#include "model/tokenizer.h"
#include "common/fs.h"
#include "test_paths.h"

using namespace distill;


TEST_CASE("parser mutations: safetensors headers give a header or an InputError") {
  std::vector<model::StTensorInfo> t = {{"model.embed_tokens.weight", model::StDtype::F32, {4, 3}, 0, 0},
                                        {"lm_head.bias", model::StDtype::BF16, {4}, 0, 0},
                                        {"step", model::StDtype::I64, {}, 0, 0}};
  const auto header = model::build_safetensors_header(t, {{"format", "pt"}});
  const std::string file = header + std::string(48 + 8 + 8, '\x01');
  test::survive_mutations({file}, 50000, 1, [](const std::string& b) { model::parse_safetensors_header(b, b.size(), "m.safetensors"); });
}

TEST_CASE("parser mutations: problem files (jsonl, gsm8k, math) give rows or an InputError naming the line") {
  const std::string jsonl = "{\"prompt\": \"What is 2+3?\", \"answer\": \"5\", \"difficulty\": 1}\n"
                            "{\"prompt\": \"Caf\\u00e9 has 3 cups\", \"answer\": \"-1.5\", \"tags\": [1, {\"a\": null}]}\n";
  const std::string gsm8k = "{\"question\": \"Tom has 3 apples.\", \"answer\": \"He has 3.\\n#### 3\"}\n";
  const std::string math = "{\"problem\": \"Find x.\", \"solution\": \"So $x = \\\\boxed{\\\\frac{1}{2}}$.\", "
                           "\"level\": \"Level 3\", \"type\": \"Algebra\"}\n";
  for (auto [fmt, text] : {std::pair{dataset::ImportFormat::jsonl, jsonl}, std::pair{dataset::ImportFormat::gsm8k, gsm8k},
                           std::pair{dataset::ImportFormat::math, math}}) {
    dataset::ImportOptions o;
    o.format = fmt;
    test::survive_mutations({text}, 20000, 2 + std::uint64_t(fmt), [&](const std::string& b) { dataset::parse_import(b, "p.jsonl", o); });
  }
}

TEST_CASE("parser mutations: answer extraction and verification never throw on any completion") {
  const std::vector<std::string> seeds = {"<think>\n7+2=9\n9-3=6\n</think>\n\\boxed{6}",
                                          "so \\boxed{\\frac{3}{4}} and \\boxed{-12.50}", "The answer is $x=\\sqrt{2}$."};
  Rng r(5);
  for (int i = 0; i < 20000; ++i) {
    const auto c = test::mutate_bytes(seeds[std::size_t(i) % seeds.size()], r);
    INFO("mutation " << i);
    CHECK_NOTHROW(dataset::verify_completion(c, "6"));
  }
}

TEST_CASE("parser mutations: a mutated tokenizer.model loads or is refused as not a tokenizer") {
  const auto bytes = read_file(std::string(DISTILL_SOURCE_DIR) + "/models/demo-teacher/tokenizer.model");
  test::survive_mutations({bytes}, 3000, 11, [](const std::string& b) {
    auto tok = model::load_sentencepiece_from_bytes(b, "tokenizer.model");
    tok->encode("Start with 7. Add 3, then subtract 2.");  // a loaded one must also work
  });
}
