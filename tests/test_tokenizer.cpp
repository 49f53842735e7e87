// tests/test_tokenizer.cpp: the SentencePiece tokenizer: exact round trips (synthetic problems and arbitrary
// UTF-8), digits split, special tokens as single ids, deterministic training, clear load errors.
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>

#include "common/errors.h"
#include "common/rng.h"
#include "dataset/synth.h"
#include "model/tokenizer.h"
#include "teacher/prompt_format.h"
#include "tests/helpers.h"

using namespace distill;

namespace {

std::vector<std::string> corpus(std::int64_t n, std::uint64_t seed) {
  dataset::SynthOptions o;
  o.task = "all";
  o.n = n;
  o.difficulty_min = 1;
  o.difficulty_max = 5;
  o.seed = seed;
  std::vector<std::string> texts;
  for (const auto& p : dataset::synthesize(o))
    texts.push_back(teacher::r1_prompt(p.prompt) + teacher::r1_response_from_solution(*p.solution));
  return texts;
}

// A shared tokenizer for the tests below, trained once.
const model::Tokenizer& shared() {
  static std::unique_ptr<model::Tokenizer> tk = [] {
    model::TokenizerTrainOptions o;
    o.vocab_size = 512;
    return model::load_sentencepiece_from_bytes(model::train_sentencepiece(corpus(1500, 1), o), "test");
  }();
  return *tk;
}

void append_utf8(std::string& s, std::uint32_t cp) {
  if (cp < 0x80) s += char(cp);
  else if (cp < 0x800) { s += char(0xC0 | (cp >> 6)); s += char(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) { s += char(0xE0 | (cp >> 12)); s += char(0x80 | ((cp >> 6) & 0x3F)); s += char(0x80 | (cp & 0x3F)); }
  else { s += char(0xF0 | (cp >> 18)); s += char(0x80 | ((cp >> 12) & 0x3F)); s += char(0x80 | ((cp >> 6) & 0x3F)); s += char(0x80 | (cp & 0x3F)); }
}

}  // namespace

TEST_CASE("tokenizer: 1,000+ held-out synthetic problems round-trip exactly") {
  const auto& tk = shared();
  auto texts = corpus(1200, 99);  // a different seed from training
  std::size_t tokens = 0, bytes = 0;
  for (const auto& t : texts) {
    auto ids = tk.encode(t);
    tokens += ids.size();
    bytes += t.size();
    REQUIRE(tk.decode(ids) == t);
  }
  CHECK(tokens < bytes);  // it compresses
}

TEST_CASE("tokenizer: arbitrary UTF-8 round-trips exactly, U+2581 and control characters included") {
  const auto& tk = shared();
  Rng r(5);
  const std::uint32_t specials[] = {' ', '\n', '\t', '\r', 0x2581, 0x00E9, 0x4E2D, 0x1F600, 0x10FFFF, 0xFEFF, 0x0301, 0x7F, 0x01};
  for (int i = 0; i < 1000; ++i) {
    std::string s;
    const int len = int(r.uniform(0, 40));
    for (int k = 0; k < len; ++k) {
      std::uint32_t cp;
      switch (r.uniform(0, 4)) {
        case 0: cp = std::uint32_t(r.uniform(0x20, 0x7E)); break;
        case 1: cp = specials[r.uniform(0, std::size(specials) - 1)]; break;
        case 2: cp = std::uint32_t(r.uniform(0x80, 0xD7FF)); break;
        case 3: cp = std::uint32_t(r.uniform(0xE000, 0x10FFFF)); break;
        default: cp = std::uint32_t(r.uniform('0', '9')); break;
      }
      append_utf8(s, cp);
    }
    INFO("case " << i);
    REQUIRE(tk.decode(tk.encode(s)) == s);
  }
  for (const char* s : {"a\xE2\x96\x81" "b", "\xE2\x96\x81", "  two  spaces  ", "<think></think><think>", "\n\n\n"}) {
    INFO(s);
    CHECK(tk.decode(tk.encode(s)) == s);
  }
}

TEST_CASE("tokenizer: byte pieces that spell no UTF-8 decode to U+FFFD, valid ones to their character") {
  const auto& tk = shared();
  auto byte = [&](int b) {  // the byte-fallback piece <0xNN>
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    for (int id = 0; id < tk.vocab_size(); ++id)
      if (tk.piece(id) == name) return id;
    FAIL("no byte piece " << name);
    return -1;
  };
  const auto a = tk.encode("a"), e_acute = tk.encode("\xC3\xA9");
  // a lone lead byte (a character cut at max_tokens), a stray continuation byte, and a lead byte before ASCII
  CHECK(tk.decode({byte(0xE2)}) == "\xEF\xBF\xBD");
  std::vector<int> mixed = a;
  mixed.push_back(byte(0x80));
  mixed.insert(mixed.end(), a.begin(), a.end());
  CHECK(tk.decode(mixed) == "a\xEF\xBF\xBD" "a");
  std::vector<int> cut = {byte(0xC3)};
  cut.insert(cut.end(), a.begin(), a.end());
  CHECK(tk.decode(cut) == "\xEF\xBF\xBD" "a");
  CHECK(tk.decode({byte(0xC3), byte(0xA9)}) == "\xC3\xA9");  // split over two byte pieces: one character
  CHECK(tk.decode({byte(0xF0), byte(0x9F), byte(0x98)}) == "\xEF\xBF\xBD");  // a 4-byte character cut after 3: one
  CHECK(tk.decode(e_acute) == "\xC3\xA9");
}

TEST_CASE("tokenizer: digits are split, specials are single ids") {
  const auto& tk = shared();
  auto ids = tk.encode("12345");
  REQUIRE(ids.size() == 5);
  for (std::size_t i = 0; i < 5; ++i) CHECK(tk.piece(ids[i]) == std::string(1, char('1' + i)));
  CHECK(tk.encode("<think>") == std::vector<int>{tk.think_open_id()});
  CHECK(tk.encode("</think>") == std::vector<int>{tk.think_close_id()});
  CHECK(tk.encode("\n").size() == 1);
  CHECK(tk.unk_id() == 0);
  CHECK(tk.bos_id() == 1);
  CHECK(tk.eos_id() == 2);
  CHECK(tk.pad_id() == 3);
  CHECK(tk.vocab_size() <= 512);
  CHECK_THROWS_AS(tk.decode({tk.vocab_size()}), InputError);
}

TEST_CASE("tokenizer: training is deterministic, write and load round-trip through a directory") {
  model::TokenizerTrainOptions o;
  o.vocab_size = 400;
  auto texts = corpus(300, 3);
  auto a = model::train_sentencepiece(texts, o), b = model::train_sentencepiece(texts, o);
  CHECK(a == b);
  test::TempDir d;
  model::write_tokenizer(d / "tok", a);
  auto tk = model::load_tokenizer(d / "tok");
  CHECK(tk->decode(tk->encode(texts[0])) == texts[0]);
}

TEST_CASE("tokenizer: bad directories, files and options are input errors naming them") {
  test::TempDir d;
  CHECK_THROWS_WITH(model::load_tokenizer(d / "nope"), Catch::Contains("tokenizer.model") && Catch::Contains("nope"));
  std::filesystem::create_directories(d / "bad");
  test::write_text(d / "bad/tokenizer.model", "this is not a protobuf");
  CHECK_THROWS_AS(model::load_tokenizer(d / "bad"), InputError);
  model::TokenizerTrainOptions o;
  o.vocab_size = 100;
  CHECK_THROWS_WITH(model::train_sentencepiece({"abc"}, o), Catch::Contains("too small"));
  o.vocab_size = 400;
  o.model_type = "wordpiece";
  CHECK_THROWS_WITH(model::train_sentencepiece({"abc"}, o), Catch::Contains("wordpiece"));
  o.model_type = "bpe";
  CHECK_THROWS_WITH(model::train_sentencepiece({}, o), Catch::Contains("no text"));
}
