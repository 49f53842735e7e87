// tests/test_safetensors.cpp: the safetensors header parser accepts well-formed files and rejects every kind of
// malformed one with a message naming the tensor and the problem. Pure bytes, no LibTorch.
#include <catch2/catch.hpp>

#include "common/errors.h"
#include "model/safetensors.h"

using namespace distill;
using namespace distill::model;

namespace {
// 8-byte little-endian length + header + data.
std::string file_with(const std::string& header, std::size_t data_bytes, std::uint64_t claimed_len = UINT64_MAX) {
  std::uint64_t n = claimed_len == UINT64_MAX ? header.size() : claimed_len;
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[std::size_t(i)] = char((n >> (8 * i)) & 0xFF);
  return s + header + std::string(data_bytes, '\x01');
}
void expect_error(const std::string& bytes, const std::string& must_contain) {
  INFO(must_contain);
  try {
    parse_safetensors_header(bytes, bytes.size(), "bad.safetensors");
    FAIL("expected InputError");
  } catch (const InputError& e) {
    CHECK_THAT(e.what(), Catch::Contains("bad.safetensors") && Catch::Contains(must_contain));
  }
}
}  // namespace

TEST_CASE("safetensors: a well-formed header parses, metadata included") {
  std::vector<StTensorInfo> t = {{"a", StDtype::F32, {2, 3}, 0, 0}, {"b.bias", StDtype::BF16, {4}, 0, 0},
                                 {"scalar", StDtype::I64, {}, 0, 0}, {"empty", StDtype::F16, {0, 5}, 0, 0}};
  std::string h = build_safetensors_header(t, {{"format", "pt"}});
  CHECK(h.size() % 8 == 0);
  std::string bytes = h + std::string(24 + 8 + 8, '\0');
  auto p = parse_safetensors_header(bytes, bytes.size(), "ok.safetensors");
  REQUIRE(p.tensors.size() == 4);
  CHECK(p.metadata.at("format") == "pt");
  CHECK(p.data_start == h.size());
  CHECK(p.tensors[0].name == "a");  // offsets ascending: a, then the empty tensor at the same place...
  bool found_bias = false;
  for (const auto& ti : p.tensors)
    if (ti.name == "b.bias") { found_bias = true; CHECK(ti.end - ti.begin == 8); CHECK(ti.dtype == StDtype::BF16); }
  CHECK(found_bias);
}

TEST_CASE("safetensors: malformed files are rejected naming the tensor and the problem") {
  const std::string w = R"("w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})";
  expect_error("abc", "too short");
  expect_error(file_with("{}", 0, 200ull << 20), "exceeds");
  expect_error(file_with("{}", 0, 5000), "past the end");
  expect_error(file_with("[1, 2]", 0), "JSON object");
  expect_error(file_with("{\"w\": ", 0), "not valid JSON");
  expect_error(file_with("{\"w\": {\"dtype\": \"F\xFF\"}}", 0), "not UTF-8");
  expect_error(file_with(R"({"w": {"dtype": "Q4_K", "shape": [2], "data_offsets": [0, 8]}})", 8), "tensor 'w': unsupported dtype 'Q4_K'");
  expect_error(file_with(R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", 8), "tensor 'w': shape entries");
  expect_error(file_with(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8), "tensor 'w': shape x dtype is 12 bytes but data_offsets span 8");
  expect_error(file_with(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 4), "tensor 'w': data_offsets end 8 is past the data buffer");
  expect_error(file_with(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", 8), "tensor 'w': data_offsets begin > end");
  expect_error(file_with("{" + w + R"(, "v": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12), "overlaps");
  expect_error(file_with("{" + w + R"(, "v": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]}})", 16), "tensor 'v': hole of 4 bytes");
  expect_error(file_with("{" + w + "}", 12), "4 trailing bytes");
  expect_error(file_with(R"({"w": {"dtype": "F32", "shape": [2]}})", 8), "tensor 'w': data_offsets must be");
  expect_error(file_with(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "extra": 1}})", 8), "unknown field 'extra'");
  expect_error(file_with(R"({"__metadata__": {"k": 1}})", 0), "__metadata__['k'] must be a string");
  expect_error(file_with(R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 8]}})", 8), "overflows");
}
