// tests/test_weights_io.cpp: safetensors <-> LibTorch: round trips of every dtype, files written by the Python
// `safetensors` package read here (the fixtures) and files written here read by it, HF directories.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>

#include "common/errors.h"
#include "common/fs.h"
#include "model/hf_checkpoint.h"
#include "model/weights_io.h"
#include "test_paths.h"
#include "tests/helpers.h"

using namespace distill;
using namespace distill::model;

TEST_CASE("weights io: every dtype round-trips bit-exactly") {
  test::TempDir d;
  torch::manual_seed(0);
  std::vector<std::pair<std::string, torch::Tensor>> ts = {
      {"f32", torch::randn({3, 4})},
      {"f64", torch::randn({2}, torch::kFloat64)},
      {"f16", torch::randn({5}).to(torch::kFloat16)},
      {"bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
      {"i64", torch::randint(-100, 100, {7}, torch::kInt64)},
      {"i32", torch::randint(-100, 100, {3}, torch::kInt32)},
      {"u8", torch::randint(0, 255, {9}, torch::kUInt8)},
      {"bool", torch::rand({4}) > 0.5},
      {"noncontig", torch::randn({4, 3}).t()},
      {"scalar", torch::tensor(3.5)},
  };
  save_safetensors(d / "x.safetensors", ts, {{"note", "test"}});
  auto f = SafetensorsFile::open(d / "x.safetensors");
  CHECK(f->header().metadata.at("note") == "test");
  for (auto& [n, t] : ts) {
    INFO(n);
    auto got = f->get(n);
    CHECK(got.scalar_type() == t.scalar_type());
    CHECK(got.sizes() == t.sizes());
    CHECK(torch::equal(got, t));
  }
  CHECK_THROWS_WITH(f->get("missing"), Catch::Contains("no tensor 'missing'"));
}

TEST_CASE("weights io: files written here are read by the Python safetensors package") {
  test::TempDir d;
  save_safetensors(d / "y.safetensors", {{"a.weight", torch::arange(6, torch::kFloat32).view({2, 3})}});
  const std::string py = std::string(DISTILL_SOURCE_DIR) + "/.venv/bin/python";
  const std::string cmd = py + " -c \"from safetensors.torch import load_file; t = load_file('" + (d / "y.safetensors") +
                          "')['a.weight']; import sys; sys.exit(0 if t.tolist() == [[0,1,2],[3,4,5]] else 3)\"";
  CHECK(std::system(cmd.c_str()) == 0);
}

TEST_CASE("weights io: HF directory save and load round-trip a model exactly, strict loading names tensors") {
  test::TempDir d;
  ModelConfig c;
  c.model_type = "deepseek_v3";
  c.vocab_size = 40;
  c.hidden_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 2;
  c.intermediate_size = 24;
  c.kv_lora_rank = 8;
  c.qk_nope_head_dim = 4;
  c.qk_rope_head_dim = 4;
  c.v_head_dim = 4;
  c.n_routed_experts = 4;
  c.num_experts_per_tok = 2;
  c.n_shared_experts = 1;
  c.moe_intermediate_size = 8;
  c.first_k_dense_replace = 1;
  c.scoring_func = "sigmoid";
  torch::manual_seed(1);
  Transformer m(c);
  save_hf_dir(*m, d / "model");
  auto back = load_hf_dir(d / "model", torch::kCPU);
  auto a = m->state_dict(), b = back->state_dict();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].first == b[i].first);
    CHECK(torch::equal(a[i].second, b[i].second));
  }
  // a tensor too many, or one missing, is an error naming it
  auto sd = m->state_dict();
  sd.emplace_back("model.layers.9.mlp.gate_proj.weight", torch::zeros({2}));
  save_safetensors(d / "extra.safetensors", sd);
  CHECK_THROWS_WITH(load_state(*m, *SafetensorsFile::open(d / "extra.safetensors")), Catch::Contains("unexpected tensor 'model.layers.9.mlp.gate_proj.weight'"));
  sd.pop_back();
  sd.erase(sd.begin());
  save_safetensors(d / "missing.safetensors", sd);
  CHECK_THROWS_WITH(load_state(*m, *SafetensorsFile::open(d / "missing.safetensors")), Catch::Contains("missing tensor"));
  CHECK_THROWS_WITH(load_hf_dir(d / "nothing-here", torch::kCPU), Catch::Contains("no config.json"));
}
