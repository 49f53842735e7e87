// tests/test_model_config.cpp: HF config.json parsing: every fixture config reads, unsupported keys are refused
// by name, to_hf_json round-trips, parameter counts match the reference's tensors.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/errors.h"
#include "common/fs.h"
#include "model/transformer.h"
#include "model/weights_io.h"
#include "test_paths.h"
#include "tests/helpers.h"
#include "tests/model_fixtures.h"

using namespace distill;
using namespace distill::model;

namespace {
}  // namespace

TEST_CASE("model config: fixture configs parse, round-trip through to_hf_json, and count parameters exactly") {
  for (const char* name : {"deepseek_v3", "deepseek_v3_plain_q", "qwen2_moe", "mixtral", "llama", "llama3_rope", "qwen2"}) {
    INFO(name);
    auto c = ModelConfig::from_hf_json(read_file(test::reference_fixture(std::string(name) + ".config.json")), name);
    auto again = ModelConfig::from_hf_json(c.to_hf_json(), "roundtrip");
    CHECK(again.to_hf_json() == c.to_hf_json());
    Transformer m(c);
    auto f = SafetensorsFile::open(test::reference_fixture(std::string(name) + ".safetensors"));
    std::int64_t ref_params = 0;
    for (const auto& t : f->header().tensors)
      if (t.name.rfind("w.", 0) == 0 && t.name.find("e_score_correction_bias") == std::string::npos) {
        std::int64_t n = 1;
        for (auto d : t.shape) n *= d;
        ref_params += n;
      }
    CHECK(m->n_params() == ref_params);
    CHECK(m->n_active_params() <= m->n_params());
    if (c.is_moe()) CHECK(m->n_active_params() < m->n_params());
  }
}

TEST_CASE("model config: keys that would change the computation are refused by name") {
  auto base = nlohmann::json::parse(read_file(test::reference_fixture("llama.config.json")));
  auto with = [&](const char* k, nlohmann::json v) {
    auto j = base;
    j[k] = v;
    return j.dump();
  };
  CHECK_THROWS_WITH(ModelConfig::from_hf_json(with("rope_scaling", {{"type", "yarn"}}), "c.json"),
                    Catch::Contains("c.json") && Catch::Contains("rope_scaling"));
  CHECK_THROWS_WITH(ModelConfig::from_hf_json(with("hidden_act", "gelu"), "c.json"), Catch::Contains("hidden_act"));
  CHECK_THROWS_WITH(ModelConfig::from_hf_json(with("frobnication", 3), "c.json"), Catch::Contains("unknown key 'frobnication'"));
  CHECK_THROWS_WITH(ModelConfig::from_hf_json(with("model_type", "gpt2"), "c.json"), Catch::Contains("gpt2"));
  CHECK_THROWS_WITH(ModelConfig::from_hf_json(with("num_key_value_heads", 3), "c.json"), Catch::Contains("multiple of"));
  CHECK_THROWS_WITH(ModelConfig::from_hf_json("{not json", "c.json"), Catch::Contains("invalid JSON"));
  auto ds = nlohmann::json::parse(read_file(test::reference_fixture("deepseek_v3.config.json")));
  ds["num_experts_per_tok"] = 9;
  CHECK_THROWS_WITH(ModelConfig::from_hf_json(ds.dump(), "d.json"), Catch::Contains("num_experts_per_tok"));
}

TEST_CASE("model config: mutated config.json files give a config or an InputError naming the file") {
  // The shipped teacher's config (MLA, MoE, sigmoid routing) and a fixture's Llama one with RoPE scaling.
  const std::vector<std::string> seeds = {read_file(std::string(DISTILL_SOURCE_DIR) + "/models/demo-teacher/config.json"),
                                          read_file(test::reference_fixture("llama3_rope.config.json"))};
  test::survive_mutations(seeds, 20000, 9, [](const std::string& b) { ModelConfig::from_hf_json(b, "config.json"); });
}
