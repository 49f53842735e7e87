// tests/test_utf8_sha256.cpp: UTF-8 validation (RFC 3629 edge cases) and SHA-256 (FIPS 180-4 test vectors).
#include <catch2/catch.hpp>

#include "common/rng.h"
#include "common/sha256.h"
#include "common/utf8.h"

using namespace distill;

TEST_CASE("utf8: valid sequences pass") {
  for (const char* s : {"", "plain ascii", "caf\xC3\xA9", "\xE2\x82\xAC 5", "\xF0\x9F\x98\x80",
                        "\xF4\x8F\xBF\xBF", "\xEF\xBB\xBF" "bom", "\xE4\xB8\xAD\xE6\x96\x87"}) {
    INFO(s);
    CHECK(is_valid_utf8(s));
  }
}

TEST_CASE("utf8: invalid sequences report the offset of the first bad byte") {
  struct Case { std::string s; std::size_t at; };
  const Case cases[] = {
      {"ab\xC0\xAF", 2},            // overlong '/'
      {"\xE0\x80\xAF", 0},          // overlong 3-byte
      {"x\xED\xA0\x80", 1},         // UTF-16 surrogate
      {"\xF4\x90\x80\x80", 0},      // above U+10FFFF
      {"abc\xFF", 3},               // never valid
      {"\xE2\x82", 0},              // truncated
      {"ok\x80", 2},                // stray continuation byte
      {"\xF5\x80\x80\x80", 0},      // lead byte beyond range
      {"\xC3\xA9\xC3", 2},          // valid then truncated
      {"\xE2\x28\xA1", 0},          // bad continuation
  };
  for (const auto& c : cases) {
    INFO(c.at);
    auto bad = first_invalid_utf8(c.s);
    REQUIRE(bad.has_value());
    CHECK(*bad == c.at);
  }
}

TEST_CASE("sha256: FIPS 180-4 / NIST test vectors") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256: streaming in odd-sized pieces equals one shot") {
  std::string data;
  Rng r(42);
  for (int i = 0; i < 5000; ++i) data += char(r.uniform(0, 255));
  Sha256 h;
  std::size_t pos = 0;
  for (std::size_t step = 1; pos < data.size(); step = step * 3 % 97 + 1) {
    std::size_t n = std::min(step, data.size() - pos);
    h.update(data.data() + pos, n);
    pos += n;
  }
  CHECK(h.hex() == sha256_hex(data));
}

TEST_CASE("rng: the same seed gives the same stream, uniform stays in range") {
  Rng a(7), b(7), c(8);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    auto x = a.next();
    CHECK(x == b.next());
    differs |= x != c.next();
  }
  CHECK(differs);
  Rng r(1);
  int seen[7] = {};
  for (int i = 0; i < 7000; ++i) {
    auto v = r.uniform(-3, 3);
    REQUIRE(v >= -3);
    REQUIRE(v <= 3);
    ++seen[v + 3];
  }
  for (int k : seen) CHECK(k > 800);  // ~1000 each
}

TEST_CASE("utf8: printable_utf8 replaces each maximal ill-formed subpart with one U+FFFD, as Python's decoder does") {
  // Expected: bytes.decode("utf-8", "replace").encode() in CPython 3 for each input.
  const std::string R = "\xEF\xBF\xBD";
  const std::pair<std::string, std::string> cases[] = {
      {"\xE2", R},                               // a lead byte alone (a character cut at max_tokens)
      {"a\x80" "a", "a" + R + "a"},              // a stray continuation byte
      {"\xC3" "a", R + "a"},                     // a lead byte before ASCII
      {"\xC3\xA9", "\xC3\xA9"},                  // valid: untouched
      {"\xF0\x9F\x98", R},                       // a 4-byte character cut after 3: one replacement
      {"\xF0\x9F\x98" "a", R + "a"},
      {"\xE2\x82", R},
      {"\x80\x80", R + R},                       // two stray bytes: two
      {"\xED\xA0\x80", R + R + R},               // a surrogate: its bytes one by one
      {"\xE0\x80\xAF", R + R + R},               // overlong
      {"\xF4\x90\x80\x80", R + R + R + R},       // above U+10FFFF
      {"\xFF\xFE", R + R},
      {"ok\xF0\x9F\x98\x80!", "ok\xF0\x9F\x98\x80!"},
  };
  for (const auto& [in, want] : cases) {
    INFO(in.size() << " bytes");
    CHECK(printable_utf8(in) == want);
    CHECK(is_valid_utf8(printable_utf8(in)));
  }
}
