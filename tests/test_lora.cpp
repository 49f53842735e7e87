// tests/test_lora.cpp: LoRA (student/lora.h) against peft. Adapters written by peft itself onto tiny transformers
// bases (tests/fixtures/hf/gen_lora.py, run by CTest first; for MoE bases, per-expert adapters that peft loads onto
// transformers' stacked experts) load here and give the reference's logits, loss and every adapter gradient; merged weights give the logits of base + adapter; a fresh adapter leaves the output as it
// was and freezes the base; dropout draws the same masks when a checkpointed layer is recomputed; a damaged or
// foreign adapter is refused by name.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "common/fs.h"
#include "model/hf_checkpoint.h"
#include "model/weights_io.h"
#include "student/lora.h"
#include "test_paths.h"
#include "tests/helpers.h"
#include "tests/model_fixtures.h"
#include "tests/tolerances.h"

using namespace distill;
namespace fs = std::filesystem;

namespace {

std::string lora_dir() {
  const std::string d = std::string(DISTILL_HF_FIXTURES) + "/lora";
  if (!fs::exists(d)) FAIL("no LoRA fixtures in " << d << ": run `ctest -R hf_fixtures` (tests/fixtures/hf/gen_lora.py) first");
  return d;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

torch::Tensor next_token_loss(const torch::Tensor& logits, const torch::Tensor& ids) {
  const auto V = logits.size(-1);
  return torch::nn::functional::cross_entropy(logits.narrow(1, 0, ids.size(1) - 1).reshape({-1, V}),
                                              ids.narrow(1, 1, ids.size(1) - 1).reshape({-1}));
}

torch::Tensor logits_of(model::Transformer& m, const torch::Tensor& ids) {
  model::ForwardInput in;
  in.input_ids = ids;
  return m->forward(in).logits;
}

}  // namespace

TEST_CASE("lora: peft's adapters give peft's logits, loss and adapter gradients, and merge into the same model") {
  // MLA's projections (deepseek_v3), and every routed expert's with the attention's (mixtral, qwen3_moe)
  for (const char* name : {"llama", "qwen2", "qwen3", "deepseek_v3", "mixtral", "qwen3_moe"}) {
    INFO(name);
    const auto dir = lora_dir() + "/" + name;
    auto ref = model::SafetensorsFile::open(lora_dir() + "/" + name + ".expected.safetensors");
    const auto ids = ref->get("input_ids").to(torch::kInt64);
    auto m = model::load_hf_dir(dir + "/base", torch::kCPU);
    const auto base_logits = [&] {
      torch::NoGradGuard g;
      return logits_of(m, ids);
    }();
    student::load_peft_adapter(*m, dir + "/adapter");
    m->train();
    auto logits = logits_of(m, ids);
    CHECK(max_diff(logits.detach(), ref->get("logits")) <= test::tol::kHfLogitsAtol * test::tol_scale());
    CHECK(max_diff(logits.detach(), base_logits) > 0.05);  // the adapter matters
    auto loss = next_token_loss(logits, ids);
    CHECK(std::abs(loss.item<double>() - ref->get("loss").item<double>()) <=
          test::tol::kLossRtol * std::abs(ref->get("loss").item<double>()));
    loss.backward();
    const auto adapters = student::lora_tensors(*m);
    std::size_t expected = 0;
    for (const auto& t : ref->header().tensors) expected += t.name.rfind("grad.", 0) == 0;
    CHECK(adapters.size() == expected);  // every adapter of the reference, each with its gradient below
    for (const auto& [n, t] : adapters) {
      INFO(n);
      const auto g = ref->get("grad.base_model.model." + n);
      REQUIRE(t.grad().defined());
      CHECK(max_diff(t.grad(), g) <= test::tol::kGradAtol + test::tol::kGradRtol * g.abs().max().item<double>());
    }
    for (const auto& p : m->parameters()) CHECK_FALSE(p.grad().defined());  // the base is frozen

    // merged: the plain model of the same outputs
    student::merge_lora(*m);
    CHECK(student::lora_tensors(*m).empty());
    torch::NoGradGuard g;
    CHECK(max_diff(logits_of(m, ids), logits.detach()) <= test::tol::kEquivAtol * test::tol_scale());
  }
}

TEST_CASE("lora: a fresh adapter changes nothing until trained, targets are checked, and what is saved reads back") {
  const auto dir = lora_dir() + "/llama";
  auto m = model::load_hf_dir(dir + "/base", torch::kCPU);
  const auto ids = torch::randint(0, 96, {2, 10}, torch::kInt64);
  torch::Tensor before;
  {
    torch::NoGradGuard g;
    before = logits_of(m, ids);
  }
  student::LoraConfig c;
  c.rank = 2;
  c.targets = {"q_proj", "v_proj"};
  const auto adapted = student::add_lora(*m, c);
  CHECK(adapted == std::vector<std::string>{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                                            "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"});
  {
    torch::NoGradGuard g;
    CHECK(max_diff(logits_of(m, ids), before) == 0.0);  // B starts at zero
  }
  for (const auto& p : m->parameters()) CHECK_FALSE(p.requires_grad());
  // trained a little (B made non-zero by hand), saved in the PEFT format, read back onto a fresh base
  {
    torch::NoGradGuard g;
    for (auto& [n, t] : student::lora_tensors(*m)) t.copy_(torch::randn_like(t) * 0.3);
  }
  test::TempDir d;
  student::save_peft_adapter(*m, c, dir + "/base", d / "a");
  auto cfg = nlohmann::json::parse(read_file(d / "a/adapter_config.json"));
  CHECK(cfg["peft_type"] == "LORA");
  CHECK(cfg["r"] == 2);
  CHECK(cfg["target_modules"] == nlohmann::json({"q_proj", "v_proj"}));
  auto again = student::load_merged(d / "a");
  torch::NoGradGuard g;
  CHECK(max_diff(logits_of(again, ids), logits_of(m, ids)) <= test::tol::kEquivAtol * test::tol_scale());

  // targets: unknown names are refused with the projections listed
  auto fresh = model::load_hf_dir(dir + "/base", torch::kCPU);
  c.targets = {"qkv"};
  try {
    student::add_lora(*fresh, c);
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("'qkv' names no projection") && Catch::Contains("q_proj, up_proj"));
  }
  c.targets = {};
  c.rank = 0;
  CHECK_THROWS_WITH(student::add_lora(*fresh, c), Catch::Contains("--lora-rank 0"));
}

TEST_CASE("lora: dropout draws the same masks when a checkpointed layer is recomputed") {
  const auto dir = lora_dir() + "/qwen2";
  const auto ids = torch::randint(0, 96, {2, 12}, torch::kInt64);
  auto grads_of = [&](bool checkpoint) {
    auto m = model::load_hf_dir(dir + "/base", torch::kCPU);
    student::load_peft_adapter(*m, dir + "/adapter");
    for (const auto& item : m->named_modules())
      if (auto* lin = dynamic_cast<model::LinearImpl*>(item.value().get()); lin && lin->lora_A.defined()) lin->lora_dropout = 0.3;
    m->train();
    torch::manual_seed(11);
    model::ForwardInput in;
    in.input_ids = ids;
    in.checkpoint_layers = checkpoint;
    next_token_loss(m->forward(in).logits, ids).backward();
    std::vector<torch::Tensor> g;
    for (auto& [n, t] : student::lora_tensors(*m)) g.push_back(t.grad().clone());
    return g;
  };
  const auto plain = grads_of(false), ckpt = grads_of(true);
  REQUIRE(plain.size() == ckpt.size());
  for (std::size_t i = 0; i < plain.size(); ++i) CHECK(max_diff(plain[i], ckpt[i]) <= test::tol::kEquivAtol * test::tol_scale());
}

TEST_CASE("lora: adapter folders that are damaged or use what this reader lacks are refused by name") {
  const auto src = lora_dir() + "/llama/adapter";
  test::TempDir d;
  auto with_config = [&](const std::function<void(nlohmann::json&)>& edit) {
    fs::remove_all(d / "a");
    fs::create_directories(d / "a");
    fs::copy_file(src + "/adapter_model.safetensors", d / "a/adapter_model.safetensors");
    auto j = nlohmann::json::parse(read_file(src + "/adapter_config.json"));
    j["base_model_name_or_path"] = lora_dir() + "/llama/base";
    edit(j);
    write_file_atomic(d / "a/adapter_config.json", j.dump());
    try {
      student::load_merged(d / "a");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(with_config([](nlohmann::json&) {}).empty());
  CHECK_THAT(with_config([](nlohmann::json& j) { j["use_dora"] = true; }), Catch::Contains("use_dora"));
  CHECK_THAT(with_config([](nlohmann::json& j) { j["peft_type"] = "IA3"; }), Catch::Contains("peft_type"));
  CHECK_THAT(with_config([](nlohmann::json& j) { j["rank_pattern"] = {{"q_proj", 8}}; }), Catch::Contains("rank_pattern"));
  CHECK_THAT(with_config([](nlohmann::json& j) { j["r"] = 8; }), Catch::Contains("has shape"));
  CHECK_THAT(with_config([](nlohmann::json& j) { j["target_modules"] = {"q_proj"}; }),
             Catch::Contains("is not an adapter of this model"));
  CHECK_THAT(with_config([](nlohmann::json& j) { j["target_modules"] = "all-linear"; }), Catch::Equals(""));
  CHECK_THAT(with_config([](nlohmann::json& j) { j["target_modules"] = ".*proj"; }), Catch::Contains("regular expression"));
  // the model loader names an adapter folder for what it is
  CHECK_THROWS_WITH(model::load_hf_dir(src, torch::kCPU), Catch::Contains("a LoRA adapter") && Catch::Contains("--merge-lora"));
}

TEST_CASE("lora: an adapter holds only the modules it adapted, as peft on stacked experts writes it") {
  // peft on transformers 5 adapts a gate_proj that is a Linear (a dense layer, a shared expert) but not the routed
  // experts' of the same name; such a file lists gate_proj and has no expert tensors, and may carry dropout.
  const auto src = lora_dir() + "/qwen3_moe";
  test::TempDir d;
  fs::create_directories(d / "a");
  auto cfg = nlohmann::json::parse(read_file(src + "/adapter/adapter_config.json"));
  cfg["lora_dropout"] = 0.05;
  write_file_atomic(d / "a/adapter_config.json", cfg.dump());
  auto f = model::SafetensorsFile::open(src + "/adapter/adapter_model.safetensors");
  std::vector<std::pair<std::string, torch::Tensor>> attention;
  for (const auto& t : f->header().tensors)
    if (t.name.find(".self_attn.") != std::string::npos) attention.emplace_back(t.name, f->get(t.name));
  REQUIRE(attention.size() < f->header().tensors.size());
  model::save_safetensors(d / "a/adapter_model.safetensors", attention, {});
  auto m = model::load_hf_dir(src + "/base", torch::kCPU);
  student::load_peft_adapter(*m, d / "a");
  const auto adapters = student::lora_tensors(*m);
  CHECK(adapters.size() == attention.size());
  for (const auto& [n, t] : adapters) CHECK(n.find(".experts.") == std::string::npos);
}
