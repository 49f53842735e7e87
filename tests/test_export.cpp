// tests/test_export.cpp: export's own pieces, below what the Python judges (tests/export/) see: f32 -> f16 rounding
// as torch rounds, Q8_0 blocks as ggml lays them out, the GGUF header and alignment, the SentencePiece model reader
// against the SentencePiece library, and the write-then-rename that leaves nothing under --out when an export fails.
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include <cstring>
#include <filesystem>

#include "common/errors.h"
#include "common/fs.h"
#include "model/sentencepiece_model.h"
#include "model/tokenizer.h"
#include "student/export.h"
#include "student/gguf.h"
#include "student/tokenizer_export.h"
#include "test_paths.h"
#include "tests/helpers.h"

using namespace distill;
namespace fs = std::filesystem;

TEST_CASE("export: f32 to f16 rounds as torch does, subnormals, overflow and ties included") {
  std::vector<float> v = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 65519.0f, 65520.0f, 1e6f, -1e6f, 6.1e-5f, 5.96e-8f,
                          2.98e-8f, 2.99e-8f, 1e-9f, 0.1f, 1.0f / 3, std::numeric_limits<float>::infinity(),
                          1.0009765625f, 1.00048828125f, 1.00146484375f};  // the last three: ties and near-ties
  auto r = torch::randn({20000}) * torch::pow(10.0, torch::randint(-9, 6, {20000}).to(torch::kFloat64)).to(torch::kFloat32);
  for (std::int64_t i = 0; i < r.numel(); ++i) v.push_back(r[i].item<float>());
  auto t = torch::from_blob(v.data(), {std::int64_t(v.size())}, torch::kFloat32).to(torch::kFloat16);
  const auto* want = static_cast<const std::uint16_t*>(t.data_ptr());
  for (std::size_t i = 0; i < v.size(); ++i) {
    INFO("value " << v[i]);
    REQUIRE(student::f32_to_f16_bits(v[i]) == want[i]);
  }
}

TEST_CASE("export: q8_0 blocks hold an f16 scale of max|x|/127 and round(x/d)") {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = float(i - 20) * (i < 32 ? 0.5f : -0.01f);
  x[40] = 0;
  const auto b = student::quantize_q8_0(x.data(), 64);
  REQUIRE(b.size() == 68);
  std::uint16_t d0;
  std::memcpy(&d0, b.data(), 2);
  CHECK(d0 == student::f32_to_f16_bits(10.0f / 127));  // max |x| of the first block is 10 (i = 0 .. 31: -10 .. 5.5)
  CHECK(std::int8_t(b[2]) == -127);
  CHECK(std::int8_t(b[2 + 31]) == 70);                 // round(5.5 * 12.7) = round(69.85)
  CHECK(std::int8_t(b[34 + 2 + 20 - 12]) == 0);        // x[40] = 0 in the second block
  std::vector<float> zeros(32, 0.0f);
  CHECK(student::quantize_q8_0(zeros.data(), 32) == std::string(34, '\0'));  // an all-zero block: d 0, q 0
}

TEST_CASE("export: a GGUF file opens with its magic, version and counts, and aligns tensor data to 32 bytes") {
  student::GgufWriter w;
  w.set("general.architecture", std::string("llama"));
  w.set("llama.block_count", std::uint32_t(2));
  w.set("general.architecture", std::string("qwen3"));  // set twice: one key, the last value
  w.add_tensor("a", {3}, student::GgmlType::f32, std::string(12, '\1'));
  w.add_tensor("b", {2, 32}, student::GgmlType::q8_0, std::string(68, '\2'));
  const auto f = w.serialize();
  REQUIRE(f.substr(0, 4) == "GGUF");
  std::uint32_t version;
  std::uint64_t tensors, kvs;
  std::memcpy(&version, f.data() + 4, 4);
  std::memcpy(&tensors, f.data() + 8, 8);
  std::memcpy(&kvs, f.data() + 16, 8);
  CHECK(version == 3);
  CHECK(tensors == 2);
  CHECK(kvs == 2);
  CHECK(f.find("qwen3") != std::string::npos);
  CHECK(f.find("general.architecture") == f.rfind("general.architecture"));
  CHECK(f.size() % 32 == 0);
  CHECK(f.substr(f.size() - 128, 12) == std::string(12, '\1'));  // a's 12 bytes padded to 32, then b's 68 to 96
  CHECK(f.substr(f.size() - 96, 68) == std::string(68, '\2'));
  student::GgufWriter bad;
  CHECK_THROWS_WITH(bad.add_tensor("c", {2, 33}, student::GgmlType::q8_0, std::string(68, '\0')),
                    Catch::Contains("multiple of 32"));
  bad.add_tensor("d", {4}, student::GgmlType::f16, [] { return std::string(6, '\0'); });  // 4 f16 values are 8 bytes
  CHECK_THROWS_WITH(bad.serialize(), Catch::Contains("6 bytes"));
  // Streamed to a file, tensor by tensor, the bytes are those serialize() builds.
  test::TempDir d;
  w.write(d / "w.gguf");
  CHECK(read_file(d / "w.gguf") == f);
}

TEST_CASE("export: the SentencePiece model reader agrees with the library on the demo teacher's tokenizer") {
  const auto path = std::string(DISTILL_SOURCE_DIR) + "/models/demo-teacher/tokenizer.model";
  const auto bytes = read_file(path);
  const auto m = model::parse_sentencepiece_model(bytes, path);
  auto tok = model::load_tokenizer(std::string(DISTILL_SOURCE_DIR) + "/models/demo-teacher");
  REQUIRE(int(m.pieces.size()) == tok->vocab_size());
  for (int i = 0; i < tok->vocab_size(); ++i) REQUIRE(m.pieces[std::size_t(i)].text == tok->piece(i));
  CHECK(m.model_type == "bpe");
  CHECK(m.byte_fallback);
  CHECK_FALSE(m.add_dummy_prefix);
  CHECK(m.normalizer == "identity");
  CHECK(m.pieces[std::size_t(tok->bos_id())].type == model::SpPiece::control);
  CHECK(m.pieces[std::size_t(tok->think_open_id())].type == model::SpPiece::user_defined);
  CHECK(m.pieces[std::size_t(tok->unk_id())].type == model::SpPiece::unknown);
  // Cut or corrupted files are refused by name, never read past their end.
  test::survive_mutations({bytes}, 2000, 7, [&](const std::string& b) {
    const auto mm = model::parse_sentencepiece_model(b, "t.model");
    (void)student::tokenizer_json_from_sentencepiece(mm, "t.model");
  });
  CHECK_THROWS_WITH(model::parse_sentencepiece_model(bytes.substr(0, 1000) + "\xff", path), Catch::Contains(path));
}

TEST_CASE("export: a failed export leaves --out as it was and no temporary behind") {
  test::TempDir d;
  const auto out = d / "out";
  auto fail_midway = [](const std::string& tmp) {
    fs::create_directories(tmp);
    write_file_atomic(tmp + "/half.safetensors", "x");
    throw InputError("stopped halfway");
  };
  CHECK_THROWS_WITH(student::detail::publish(out, false, true, fail_midway), Catch::Contains("halfway"));
  CHECK_FALSE(fs::exists(out));
  fs::create_directories(out);
  write_file_atomic(out + "/keep", "old");
  CHECK_THROWS_WITH(student::detail::publish(out, false, true, fail_midway), Catch::Contains("--force"));
  CHECK_THROWS_WITH(student::detail::publish(out, true, true, fail_midway), Catch::Contains("halfway"));
  CHECK(read_file(out + "/keep") == "old");
  student::detail::publish(out, true, true, [](const std::string& tmp) {
    fs::create_directories(tmp);
    write_file_atomic(tmp + "/new", "new");
  });
  CHECK(read_file(out + "/new") == "new");
  CHECK_FALSE(fs::exists(out + "/keep"));
  for (const auto& e : fs::directory_iterator(d.path)) CHECK(e.path().filename() == "out");
  CHECK_THROWS_WITH(student::detail::publish(out, true, false, [](const std::string&) {}), Catch::Contains("a folder"));
}
