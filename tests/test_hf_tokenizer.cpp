// tests/test_hf_tokenizer.cpp: the tokenizer.json backend against the Python `tokenizers` package: for seven
// families (fixtures written at test time by tests/fixtures/hf/gen_tokenizers.py) every corpus string's ids,
// with and without special tokens, and every decode equal HF's; exact round trips; the Unicode normalization
// forms on known cases; clear errors for bad files; seeded mutations of a
// tokenizer.json and of input text; a real-size (150k) vocabulary loads and encodes.
#include <catch2/catch.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "common/fs.h"
#include "common/rng.h"
#include "common/utf8.h"
#include "model/hf_tokenizer.h"
#include "model/unicode_normalization.h"
#include "test_paths.h"
#include "tests/helpers.h"

using namespace distill;
using json = nlohmann::json;

namespace {

// The five published families, then two made-up ones covering the options those leave unused.
const char* const kFamilies[] = {"qwen2",       "llama3",    "mistral",    "mistral_metaspace",
                                 "deepseek_v3", "gpt2_misc", "splits_misc"};
constexpr int kPublishedFamilies = 5;

std::string family_dir(const std::string& family) {
  return std::string(DISTILL_HF_FIXTURES) + "/tokenizers/" + family;
}

json expected_of(const std::string& family) { return json::parse(read_file(family_dir(family) + "/expected.json")); }

std::vector<int> ints(const json& v) { return v.get<std::vector<int>>(); }

// A small, complete tokenizer.json in the Mistral style (Prepend/Replace normalizer, byte fallback), with a
// Split pre-tokenizer and every decoder kind: the seed of the mutation test and the base of the error tests.
std::string small_tokenizer_json() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    vocab[buf] = 3 + b;
  }
  int next = 259;
  for (const char* t : {"▁", "a", "b", "c", "h", "i", "1", "2", "▁h", "▁hi", "ab", "abc"}) vocab[t] = next++;
  json spec = {
      {"version", "1.0"},
      {"added_tokens",
       {{{"id", 0}, {"content", "<unk>"}, {"special", true}, {"normalized", false}},
        {{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
        {{"id", 2}, {"content", "</s>"}, {"special", true}, {"normalized", false}}}},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "NFC"}},
          {{"type", "Prepend"}, {"prepend", "▁"}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}}}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", "\\p{N}{1,2}"}}}, {"behavior", "Isolated"}, {"invert", false}},
          {{"type", "Digits"}, {"individual_digits", true}}}}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single",
         {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}},
          {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", "<unk>"},
        {"fuse_unk", true},
        {"byte_fallback", true},
        {"vocab", vocab},
        {"merges", {"▁ h", "▁h i", "a b", "ab c"}}}},
  };
  return spec.dump();
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

}  // namespace

TEST_CASE("hf tokenizer: ids, ids with specials and decodes equal HF tokenizers for every family") {
  for (const char* family : kFamilies) {
    DYNAMIC_SECTION(family) {
      const auto tok = model::load_hf_tokenizer(family_dir(family));
      const json exp = expected_of(family);
      CHECK(tok->vocab_size() == exp["vocab_size"].get<int>());
      REQUIRE(exp["cases"].size() > 100);
      for (const auto& c : exp["cases"]) {
        const std::string text = c["text"];
        INFO(family << ": " << json(text).dump());
        CHECK(tok->encode(text) == ints(c["ids"]));
        CHECK(tok->encode_with_specials(text) == ints(c["ids_special"]));
        CHECK(tok->decode(ints(c["ids"])) == c["decoded"].get<std::string>());
        CHECK(tok->decode(ints(c["ids_special"])) == c["decoded_special"].get<std::string>());
      }
      for (const auto& d : exp["decodes"]) {
        INFO(family << ": decode " << d["ids"].dump());
        CHECK(tok->decode(ints(d["ids"])) == d["text"].get<std::string>());
      }
    }
  }
}

TEST_CASE("hf tokenizer: decode(encode(s)) == s wherever HF round-trips too") {
  for (int f = 0; f < kPublishedFamilies; ++f) {
    const char* family = kFamilies[f];
    DYNAMIC_SECTION(family) {
      const auto tok = model::load_hf_tokenizer(family_dir(family));
      const json exp = expected_of(family);
      int round_trips = 0;
      for (const auto& c : exp["cases"]) {
        const std::string text = c["text"];
        if (c["decoded"].get<std::string>() != text) continue;
        INFO(json(text).dump());
        CHECK(tok->decode(tok->encode(text)) == text);
        ++round_trips;
      }
      CHECK(round_trips > 50);
    }
  }
}

TEST_CASE("hf tokenizer: special ids come from tokenizer_config.json and the vocabulary") {
  auto qwen = model::load_hf_tokenizer(family_dir("qwen2"));
  CHECK(qwen->bos_id() == -1);
  CHECK(qwen->eos_id() == qwen->token_id("<|im_end|>").value());
  CHECK(qwen->pad_id() == qwen->token_id("<|endoftext|>").value());
  CHECK(qwen->think_open_id() == qwen->encode("<think>").at(0));
  CHECK(qwen->think_close_id() == qwen->encode("</think>").at(0));
  CHECK(qwen->piece(qwen->eos_id()) == "<|im_end|>");
  CHECK_FALSE(qwen->token_id("no such token").has_value());

  auto deepseek = model::load_hf_tokenizer(family_dir("deepseek_v3"));  // {"content": ...} objects
  CHECK(deepseek->bos_id() == deepseek->token_id("<｜begin▁of▁sentence｜>").value());
  CHECK(deepseek->encode_with_specials("hi").front() == deepseek->bos_id());

  auto mistral = model::load_hf_tokenizer(family_dir("mistral"));
  CHECK(mistral->bos_id() == 1);
  CHECK(mistral->eos_id() == 2);
  CHECK(mistral->unk_id() == 0);
  CHECK(mistral->pad_id() == -1);

  auto no_config = model::load_hf_tokenizer_from_bytes(read_file(family_dir("llama3") + "/tokenizer.json"), "",
                                                       "llama3/tokenizer.json");
  CHECK(no_config->bos_id() == -1);
  CHECK(no_config->think_open_id() == -1);
}

TEST_CASE("hf tokenizer: load_tokenizer prefers tokenizer.json and names both files when neither is there") {
  auto tok = model::load_tokenizer(family_dir("mistral"));
  CHECK(tok->vocab_size() == expected_of("mistral")["vocab_size"].get<int>());
  test::TempDir d;
  const std::string msg = message_of([&] { model::load_tokenizer(d.path); });
  CHECK_THAT(msg, Catch::Contains("tokenizer.json") && Catch::Contains("tokenizer.model"));
  CHECK_THAT(message_of([&] { model::load_hf_tokenizer(d.path); }),
             Catch::Contains(d.path) && Catch::Contains("tokenizer.json"));
}

TEST_CASE("hf tokenizer: bad files are InputErrors naming the file and the problem") {
  const std::string good = small_tokenizer_json();
  auto load = [](const std::string& text) { model::load_hf_tokenizer_from_bytes(text, "", "x/tokenizer.json"); };
  REQUIRE_NOTHROW(load(good));
  auto edited = [&](const std::function<void(json&)>& edit) {
    json j = json::parse(good);
    edit(j);
    return message_of([&] { load(j.dump()); });
  };
  CHECK_THAT(edited([](json& j) { j["model"]["type"] = "WordPiece"; }),
             Catch::Contains("x/tokenizer.json: model.type 'WordPiece' is not supported (expected BPE)"));
  CHECK_THAT(edited([](json& j) { j["model"]["merges"][2] = "a zq"; }),
             Catch::Contains("x/tokenizer.json: model.merges[2] 'a zq': 'zq' is not in the vocab"));
  CHECK_THAT(edited([](json& j) { j["model"]["merges"][3] = "ab b"; }),
             Catch::Contains("model.merges[3] 'ab b': 'abb' is not in the vocab"));
  CHECK_THAT(edited([](json& j) { j["model"]["dropout"] = 0.1; }), Catch::Contains("model.dropout"));
  CHECK_THAT(edited([](json& j) { j["pre_tokenizer"]["pretokenizers"][1]["type"] = "Whitespace"; }),
             Catch::Contains("pre_tokenizer.pretokenizers[1].type 'Whitespace' is not supported"));
  CHECK_THAT(edited([](json& j) { j["normalizer"]["normalizers"][0]["type"] = "Lowercase"; }),
             Catch::Contains("normalizer.normalizers[0].type 'Lowercase' is not supported"));
  CHECK_THAT(edited([](json& j) { j["decoder"]["decoders"][0]["type"] = "WordPiece"; }),
             Catch::Contains("decoder.decoders[0].type 'WordPiece' is not supported"));
  CHECK_THAT(edited([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed"; }),
             Catch::Contains("pre_tokenizer.pretokenizers[0].pattern.Regex") && Catch::Contains("not a usable regex"));
  CHECK_THAT(edited([](json& j) { j["model"]["vocab"]["a"] = -4; }), Catch::Contains("model.vocab['a']"));
  CHECK_THAT(edited([](json& j) { j.erase("model"); }), Catch::Contains("model is missing"));
  CHECK_THAT(message_of([&] { load("{\"model\": "); }), Catch::Contains("x/tokenizer.json: not valid JSON"));
  CHECK_THAT(message_of([&] { model::load_hf_tokenizer_from_bytes(good, "{nope", "x/tokenizer.json"); }),
             Catch::Contains("x/tokenizer_config.json: not valid JSON"));
}

TEST_CASE("hf tokenizer: text that is not UTF-8 is refused naming the byte offset, ids past the vocabulary skipped") {
  auto tok = model::load_hf_tokenizer_from_bytes(small_tokenizer_json(), "", "tokenizer.json");
  CHECK_THAT(message_of([&] { tok->encode(std::string("abc\xC3(", 5)); }), Catch::Contains("offset 3"));
  CHECK(tok->decode({tok->vocab_size(), tok->vocab_size() + 100}).empty());  // padded rows: skipped, as HF does
  CHECK_THROWS_AS(tok->decode({-1}), InputError);
  // The small tokenizer's pipeline end to end: NFC, prepend, byte fallback, merges, decoders.
  CHECK(tok->encode("hi") == std::vector<int>{*tok->token_id("▁hi")});
  CHECK(tok->encode_with_specials("abc").front() == 1);
  CHECK(tok->decode(tok->encode("e\xCC\x81 hi 123 \xF0\x9F\x98\x80 <s>")) == "\xC3\xA9 hi 123 \xF0\x9F\x98\x80 <s>");
}

// model/unicode_normalization_gen.py's tables were checked against HF's normalizers on every code point and
// 200k random mark sequences; these cases pin the rules and HF's Unicode version (9.0).
TEST_CASE("hf tokenizer: NFC/NFD/NFKC/NFKD give what HF tokenizers' normalizers give") {
  using model::UnicodeForm;
  using model::unicode_normalize;
  CHECK(unicode_normalize("e\xCC\x81", UnicodeForm::NFC) == "\xC3\xA9");           // e + U+0301 -> é
  CHECK(unicode_normalize("\xC3\xA9", UnicodeForm::NFD) == "e\xCC\x81");
  CHECK(unicode_normalize("a\xCC\xA3\xCC\x81", UnicodeForm::NFC) == "\xE1\xBA\xA1\xCC\x81");  // reordered marks
  CHECK(unicode_normalize("a\xCC\x81\xCC\xA3", UnicodeForm::NFC) == "\xE1\xBA\xA1\xCC\x81");
  CHECK(unicode_normalize("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", UnicodeForm::NFC) == "\xEA\xB0\x81");  // Hangul
  CHECK(unicode_normalize("\xEA\xB0\x81", UnicodeForm::NFD) == "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8");
  CHECK(unicode_normalize("\xEF\xAC\x81", UnicodeForm::NFKC) == "fi");  // U+FB01 ligature
  CHECK(unicode_normalize("\xEF\xAC\x81", UnicodeForm::NFC) == "\xEF\xAC\x81");
  CHECK(unicode_normalize("\xE2\x84\xAB", UnicodeForm::NFC) == "\xC3\x85");  // U+212B ANGSTROM SIGN (singleton)
  CHECK(unicode_normalize("\xE0\xA5\x98", UnicodeForm::NFC) == "\xE0\xA4\x95\xE0\xA4\xBC");  // excluded composite
  CHECK(unicode_normalize("\xE2\x91\xA0\xC2\xB2", UnicodeForm::NFKD) == "12");
  CHECK(unicode_normalize("plain ascii", UnicodeForm::NFKC) == "plain ascii");
  // U+1DF9 (class 220) came with Unicode 10: for HF it is class 0, so it does not move before U+0301 (230).
  CHECK(unicode_normalize("a\xCC\x81\xE1\xB7\xB9", UnicodeForm::NFD) == "a\xCC\x81\xE1\xB7\xB9");
  CHECK(unicode_normalize("a\xCC\x81\xCC\x96", UnicodeForm::NFD) == "a\xCC\x96\xCC\x81");  // U+0316 (220) does
}

TEST_CASE("hf tokenizer: a mutated tokenizer.json loads or is an InputError, and what loads encodes") {
  test::survive_mutations({small_tokenizer_json()}, 3000, 21, [](const std::string& b) {
    auto tok = model::load_hf_tokenizer_from_bytes(b, "", "tokenizer.json");
    const auto ids = tok->encode("hi abc 12345 \xC3\xA9\xF0\x9F\x98\x80 <s></s>");
    tok->decode(ids);
    tok->encode_with_specials("x");
  });
}

TEST_CASE("hf tokenizer: mutated text encodes (exact round trip) or is refused as not UTF-8") {
  const std::vector<std::string> seeds = {"<think>\n7+2=9\n</think>\n\\boxed{9}", "Café 数学 😀 \t\n  x",
                                          "<|im_start|>user\nhi<|im_end|>", "<｜begin▁of▁sentence｜>▁<s>"};
  // Byte-level families without a normalizer give back any UTF-8 exactly; the others must merely not fail.
  for (const char* family : {"llama3", "deepseek_v3", "qwen2", "mistral", "mistral_metaspace"}) {
    auto tok = model::load_hf_tokenizer(family_dir(family));
    const bool exact = std::string(family) == "llama3" || std::string(family) == "deepseek_v3";
    test::survive_mutations(seeds, 2000, 31, [&](const std::string& text) {
      const auto ids = tok->encode(text);
      const std::string back = tok->decode(ids);
      if (exact) CHECK(back == text);
    });
  }
}

TEST_CASE("hf tokenizer: a real-size vocabulary (150k tokens, 150k merges) loads and encodes") {
  // A byte-level vocabulary grown by merging pseudo-random pairs of existing tokens, like a trained one.
  json vocab = json::object();
  std::vector<std::string> tokens;
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyz";
  for (char c : alphabet) vocab[std::string(1, c)] = int(tokens.size()), tokens.push_back(std::string(1, c));
  json merges = json::array();
  Rng r(7);
  while (tokens.size() < 150000) {
    const auto& a = tokens[std::size_t(r.uniform(0, std::int64_t(tokens.size()) - 1))];
    const auto& b = tokens[std::size_t(r.uniform(0, std::min<std::int64_t>(std::int64_t(tokens.size()) - 1, 2000)))];
    const std::string m = a + b;
    if (m.size() > 12 || vocab.contains(m)) continue;
    merges.push_back(a + " " + b);
    vocab[m] = int(tokens.size());
    tokens.push_back(m);
  }
  const std::string text = json({{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
                                 {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
                                 {"decoder", {{"type", "ByteLevel"}}}})
                               .dump();
  auto tok = model::load_hf_tokenizer_from_bytes(text, "", "big/tokenizer.json");
  CHECK(tok->vocab_size() == 150000);
  std::string words;
  for (int i = 0; i < 2000; ++i) words += tokens[std::size_t(r.uniform(0, 149999))];
  CHECK(tok->decode(tok->encode(words)) == words);
}

TEST_CASE("hf tokenizer: the SentencePiece backend has encode_with_specials and token_id too") {
  auto sp = model::load_tokenizer(std::string(DISTILL_SOURCE_DIR) + "/models/demo-teacher");
  const auto body = sp->encode("3+5=8");
  auto with = sp->encode_with_specials("3+5=8");
  REQUIRE(with.size() == body.size() + 1);
  CHECK(with.front() == sp->bos_id());
  CHECK(std::vector<int>(with.begin() + 1, with.end()) == body);
  CHECK(sp->token_id("<think>") == sp->think_open_id());
  CHECK(sp->token_id("<unk>") == sp->unk_id());
  CHECK_FALSE(sp->token_id("no such piece").has_value());
}
