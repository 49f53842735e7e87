// tests/test_topk.cpp: the teacher top-k codec (dataset/topk.h): its exact bytes, the round trip, headerless
// version-0 blobs of older stores, and a clear InputError for every damaged blob (never a crash or a silent
// misread), including every truncation and single-byte flip of a valid one.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "common/errors.h"
#include "dataset/topk.h"

using namespace distill;
using Rows = std::vector<std::vector<std::pair<int, float>>>;

namespace {

std::string le32(std::uint32_t v) { return {char(v & 0xff), char(v >> 8 & 0xff), char(v >> 16 & 0xff), char(v >> 24)}; }
std::string f32(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return le32(u);
}
std::string error_of(const std::string& blob, std::int64_t k) {
  try {
    dataset::decode_topk(blob, k, "s.db: sample 7");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("topk: version 1 is a 12-byte header then (id, logprob) records, little-endian, and decodes back") {
  const Rows rows = {{{5, -0.25f}, {9, -1.5f}}, {{300000, -0.0f}, {0, -20.0f}}, {{7, -3.0f}, {8, -4.0f}}};
  const auto blob = dataset::encode_topk(rows, 2);
  std::string want = std::string("DTK\x01", 4) + le32(2) + le32(3);
  for (const auto& row : rows)
    for (const auto& [id, lp] : row) want += le32(std::uint32_t(id)) + f32(lp);
  CHECK(blob == want);
  const auto t = dataset::decode_topk(blob, 2, "x");
  CHECK(t.version == 1);
  CHECK(t.k == 2);
  CHECK(t.positions == 3);
  CHECK(t.ids == std::vector<std::int32_t>{5, 9, 300000, 0, 7, 8});
  CHECK(t.logprobs == std::vector<float>{-0.25f, -1.5f, -0.0f, -20.0f, -3.0f, -4.0f});
  // a completion of no tokens: a valid blob of no positions, with the k of its row
  const auto empty = dataset::encode_topk({}, 4);
  CHECK(empty.size() == 12);
  CHECK(dataset::decode_topk(empty, 4, "x").positions == 0);
  CHECK_THROWS_AS(dataset::encode_topk({{{1, -1.0f}}, {{1, -1.0f}, {2, -2.0f}}}, 1), std::invalid_argument);
}

TEST_CASE("topk: headerless blobs of older stores read as version 0") {
  const std::string v0 = le32(3) + f32(-0.5f) + le32(4) + f32(-1.0f) + le32(11) + f32(-0.1f) + le32(12) + f32(-2.5f);
  const auto t = dataset::decode_topk(v0, 2, "x");
  CHECK(t.version == 0);
  CHECK(t.positions == 2);
  CHECK(t.ids == std::vector<std::int32_t>{3, 4, 11, 12});
  CHECK(t.logprobs == std::vector<float>{-0.5f, -1.0f, -0.1f, -2.5f});
  CHECK(dataset::decode_topk(v0, 4, "x").positions == 1);  // the column's k decides how records group
}

TEST_CASE("topk: a damaged blob is an InputError naming where and what") {
  const auto good = dataset::encode_topk({{{1, -0.5f}, {2, -1.0f}}}, 2);
  CHECK_THAT(error_of(good, 3), Catch::Contains("s.db: sample 7") && Catch::Contains("says k 2 but its row says 3"));
  CHECK_THAT(error_of(good, 0), Catch::Contains("k 0: expected >= 1"));
  CHECK_THAT(error_of(std::string("DTK\x02", 4) + good.substr(4), 2), Catch::Contains("version 2"));
  CHECK_THAT(error_of(good.substr(0, 10), 2), Catch::Contains("shorter than its 12-byte header"));
  CHECK_THAT(error_of(good.substr(0, good.size() - 1), 2), Catch::Contains("says 1 positions of 2"));
  CHECK_THAT(error_of(good + "x", 2), Catch::Contains("says 1 positions of 2"));
  CHECK_THAT(error_of(le32(1) + f32(-1.0f) + "abc", 1), Catch::Contains("not whole positions"));
  CHECK_THAT(error_of(le32(0xffffffffu) + f32(-1.0f), 1), Catch::Contains("token id -1"));
  CHECK_THAT(error_of(le32(1) + f32(std::numeric_limits<float>::quiet_NaN()), 1), Catch::Contains("logprob nan"));
  CHECK_THAT(error_of(le32(1) + f32(0.5f), 1), Catch::Contains("logprob 0.5"));
  CHECK(error_of(le32(1) + f32(-std::numeric_limits<float>::infinity()), 1).empty());  // a vanished probability
}

TEST_CASE("topk: every truncation and single-byte flip of a valid blob decodes or fails with an InputError") {
  Rows rows;
  for (int p = 0; p < 5; ++p) rows.push_back({{p, -0.1f * float(p)}, {p + 100, -2.0f}, {p + 7, -9.0f}});
  const auto blob = dataset::encode_topk(rows, 3);
  int failed = 0, decoded = 0;
  auto attempt = [&](const std::string& b) {
    try {
      auto t = dataset::decode_topk(b, 3, "x");
      CHECK(std::int64_t(t.ids.size()) == t.positions * 3);
      ++decoded;
    } catch (const InputError&) {
      ++failed;
    }
  };
  for (std::size_t n = 0; n < blob.size(); ++n) attempt(blob.substr(0, n));
  for (std::size_t i = 0; i < blob.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      auto b = blob;
      b[i] = char(b[i] ^ (1 << bit));
      attempt(b);
    }
  CHECK(failed > 0);
  CHECK(decoded > 0);  // a flipped logprob mantissa bit is still a valid blob
}
