// tests/test_hf_parity.cpp: checkpoints built and saved by transformers itself (tests/fixtures/hf/gen_hf_models.py,
// run by CTest first into DISTILL_HF_FIXTURES) load through load_hf_dir and give transformers' logits and greedy
// tokens: every architecture distill reads (Llama, Mistral, Qwen2, Qwen3, Mixtral, Qwen2-MoE, Qwen3-MoE,
// DeepSeek-V3), both config spellings (4.x, 5.x), f32/f16/bf16 and sharded checkpoints, llama3 and yarn RoPE.
// Also the bad checkpoints a user may meet (a missing shard, a wrong shape or dtype, a broken header).
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "common/fs.h"
#include "model/hf_checkpoint.h"
#include "teacher/engine.h"
#include "test_paths.h"
#include "tests/helpers.h"
#include "tests/model_fixtures.h"
#include "tests/tolerances.h"

using namespace distill;
using namespace distill::model;
namespace fs = std::filesystem;

namespace {

std::string models_dir() {
  const std::string d = std::string(DISTILL_HF_FIXTURES) + "/models";
  if (!fs::exists(d))
    FAIL("no HF fixtures in " << d << ": run `ctest -R hf_fixtures` (tests/fixtures/hf/gen_hf_models.py) first");
  return d;
}

// Every case the generator wrote, by name.
std::vector<std::string> cases() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(models_dir())) {
    const auto n = e.path().filename().string();
    const std::string suffix = ".expected.safetensors";
    if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(n.substr(0, n.size() - suffix.size()));
  }
  std::sort(out.begin(), out.end());
  return out;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.cpu().to(torch::kFloat64) - b.cpu().to(torch::kFloat64)).abs().max().item<double>();
}

std::vector<int> greedy_tokens(Transformer m, const torch::Tensor& prompt, std::int64_t n) {
  m->eval();
  m->prepare_inference();
  teacher::EngineOptions eo;
  eo.max_batch = 2;
  eo.max_seq_len = prompt.size(1) + n;
  eo.eos_id = -1;  // the reference ran all 32 steps
  teacher::Engine engine(m, eo);
  teacher::SamplingParams p;
  p.temperature = 0;
  p.max_tokens = n;
  std::deque<teacher::GenRequest> q;
  teacher::GenRequest r;
  auto pa = prompt.to(torch::kInt64).contiguous();
  r.prompt.assign(pa.data_ptr<std::int64_t>(), pa.data_ptr<std::int64_t>() + pa.numel());
  q.push_back(r);
  std::vector<int> out;
  engine.run(q, p, [&](teacher::GenResult&& res) { out = res.tokens; });
  return out;
}

std::vector<int> as_ints(const torch::Tensor& t) {
  auto c = t.to(torch::kInt64).contiguous();
  return {c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel()};
}

}  // namespace

TEST_CASE("hf parity: transformers-saved checkpoints give transformers' fp32 logits and greedy tokens", "[device]") {
  const auto names = cases();
  REQUIRE(names.size() >= 13);
  torch::NoGradGuard g;
  for (const auto& name : names) {
    INFO("checkpoint " << name);
    const auto dir = models_dir() + "/" + name;
    auto expected = SafetensorsFile::open(dir + ".expected.safetensors");
    auto m = load_hf_dir(dir, test::device());
    m->eval();
    ForwardInput in;
    in.input_ids = test::dev(expected->get("input_ids"));
    const auto logits = m->forward(in).logits;
    const double diff = max_diff(logits, expected->get("logits"));
    std::cout << "hf parity " << name << ": max |logit diff| fp32 " << diff;
    CHECK(diff <= test::tol::kHfLogitsAtol * test::tol_scale());
    const auto want = as_ints(expected->get("greedy"));
    const auto got = greedy_tokens(m, expected->get("prompt"), std::int64_t(want.size()));
    CHECK(got == want);
    if (expected->contains("logits_native")) {
      // The checkpoint's own dtype end to end, against transformers computing in it.
      const auto dtype = m->config().torch_dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat16;
      auto half = load_hf_dir(dir, test::device(), dtype);
      half->eval();
      const double nd = max_diff(half->forward(in).logits, expected->get("logits_native"));
      std::cout << ", " << m->config().torch_dtype << " compute vs transformers' " << nd;
      CHECK(nd <= test::tol::kHfHalfLogitsAtol);
    }
    std::cout << "\n";
  }
}

TEST_CASE("hf parity: the config readers see what transformers built") {
  auto read = [](const std::string& name) {
    const auto p = models_dir() + "/" + name + "/config.json";
    return ModelConfig::from_hf_json(read_file(p), p);
  };
  auto q3 = read("qwen3");
  CHECK(q3.qk_norm);
  CHECK(q3.attn_head_dim() == 32);
  auto moe = read("qwen3_moe");
  CHECK_FALSE(moe.is_moe_layer(0));  // mlp_only_layers [0]
  CHECK(moe.is_moe_layer(1));
  CHECK(moe.n_routed_experts == 8);
  CHECK(moe.norm_topk_prob);
  auto ds = read("deepseek_v3");
  CHECK(ds.rope_scaling_type == "yarn");
  CHECK(ds.rope_mscale_all_dim == 1.0);
  CHECK(read("mistral").sliding_window == 4096);
  CHECK(read("qwen3_bf16_sharded").torch_dtype == "bfloat16");
  CHECK(read("llama3_rope_4x").rope_scaling_type == "llama3");
  // generation_config.json is read; transformers wrote the config's ids there.
  auto gen = read_generation_config(models_dir() + "/llama");
  REQUIRE(gen.eos_token_ids.size() == 1);
  CHECK(gen.eos_token_ids[0] == 2);
}

TEST_CASE("hf parity: a longer sequence than the sliding window is refused, naming it") {
  auto m = load_hf_dir(models_dir() + "/mistral", torch::kCPU);
  auto cfg = m->config();
  cfg.sliding_window = 8;
  Transformer small(cfg);
  ForwardInput in;
  in.input_ids = torch::zeros({1, 9}, torch::kInt64);
  CHECK_THROWS_WITH(small->forward(in), Catch::Contains("sliding window of 8") && Catch::Contains("sliding_window"));
  in.input_ids = torch::zeros({1, 8}, torch::kInt64);
  CHECK_NOTHROW(small->forward(in));
}

TEST_CASE("hf checkpoints: bad folders are refused naming the file and the problem") {
  test::TempDir t;
  auto copy_case = [&](const std::string& name) {
    const auto dst = t / name;
    fs::copy(models_dir() + "/" + name, dst, fs::copy_options::recursive);
    return dst;
  };
  SECTION("a shard the index names is missing") {
    const auto d = copy_case("qwen3_bf16_sharded");
    const auto index = nlohmann::json::parse(read_file(d + "/model.safetensors.index.json"));
    const auto shard = index["weight_map"]["model.norm.weight"].get<std::string>();
    REQUIRE(shard != "model.safetensors");
    fs::remove(d + "/" + shard);
    CHECK_THROWS_WITH(load_hf_dir(d, torch::kCPU), Catch::Contains("model.safetensors.index.json") &&
                                                      Catch::Contains("shard '" + shard + "'") && Catch::Contains("missing"));
  }
  SECTION("an index naming a path outside the folder") {
    const auto d = copy_case("qwen3_bf16_sharded");
    auto j = nlohmann::json::parse(read_file(d + "/model.safetensors.index.json"));
    j["weight_map"]["model.norm.weight"] = "../elsewhere.safetensors";
    test::write_text(d + "/model.safetensors.index.json", j.dump());
    CHECK_THROWS_WITH(load_hf_dir(d, torch::kCPU), Catch::Contains("not a file name in the folder"));
  }
  SECTION("a tensor of the wrong shape, and one of the wrong dtype") {
    const auto d = copy_case("llama");
    auto file = SafetensorsFile::open(d + "/model.safetensors");
    std::vector<std::pair<std::string, torch::Tensor>> ts, wrong_dtype;
    for (const auto& info : file->header().tensors) {
      auto x = file->get(info.name).clone();
      wrong_dtype.emplace_back(info.name, info.name == "model.norm.weight" ? x.to(torch::kInt32) : x);
      ts.emplace_back(info.name, info.name == "model.norm.weight" ? torch::ones({63}) : x);
    }
    file.reset();
    save_safetensors(d + "/model.safetensors", ts);
    CHECK_THROWS_WITH(load_hf_dir(d, torch::kCPU), Catch::Contains("model.safetensors") &&
                                                      Catch::Contains("'model.norm.weight' has shape [63]"));
    save_safetensors(d + "/model.safetensors", wrong_dtype);
    CHECK_THROWS_WITH(load_hf_dir(d, torch::kCPU), Catch::Contains("'model.norm.weight' has dtype I32"));
  }
  SECTION("a truncated file and an over-long header") {
    const auto d = copy_case("llama");
    const auto bytes = read_file(d + "/model.safetensors");
    test::write_text(d + "/model.safetensors", bytes.substr(0, bytes.size() / 2));
    CHECK_THROWS_AS(load_hf_dir(d, torch::kCPU), InputError);
    std::string over = bytes;
    const std::uint64_t huge = 1ull << 40;
    std::memcpy(over.data(), &huge, 8);
    test::write_text(d + "/model.safetensors", over);
    CHECK_THROWS_WITH(load_hf_dir(d, torch::kCPU), Catch::Contains("model.safetensors"));
  }
  SECTION("a quantised checkpoint") {
    const auto d = copy_case("llama");
    auto j = nlohmann::json::parse(read_file(d + "/config.json"));
    j["quantization_config"] = {{"quant_method", "fp8"}};
    test::write_text(d + "/config.json", j.dump());
    CHECK_THROWS_WITH(load_hf_dir(d, torch::kCPU), Catch::Contains("quantization_config") && Catch::Contains("fp8"));
  }
}

TEST_CASE("hf parity: distill complete gives transformers' prompt ids, greedy tokens and text") {
  const auto dir = models_dir() + "/qwen3_chat";
  const auto expected = nlohmann::json::parse(read_file(models_dir() + "/qwen3_chat.complete.json"));
  for (const char* mode : {"plain", "chat"}) {
    INFO("mode " << mode);
    const auto& want = expected[mode];
    std::vector<std::string> args = {"complete", "--model", dir, "--prompt", want["prompt"].get<std::string>(),
                                     "--greedy", "--max-tokens", "16", "--topk-logprobs", "3", "--json"};
    if (std::string(mode) == "chat") args.push_back("--chat");
    auto r = test::run_distill(args);
    REQUIRE(r.code == 0);
    const auto got = nlohmann::json::parse(r.out);
    CHECK(got["prompt_ids"] == want["prompt_ids"]);
    CHECK(got["ids"] == want["ids"]);
    CHECK(got["text"] == want["text"]);
    CHECK(got["finish_reason"] == want["finish_reason"]);
    REQUIRE(got["steps"].size() == want["ids"].size());
    for (const auto& s : got["steps"]) {  // the chosen token is the top one, its logprob the top logprob
      REQUIRE(s["top"].size() == 3);
      CHECK(s["top"][0]["id"] == s["id"]);
      CHECK(s["top"][0]["logprob"].get<double>() == Approx(s["logprob"].get<double>()));
    }
  }
  // The same model without its chat template: --chat names the problem and the way out, which works.
  test::TempDir t;
  const auto bare = t / "bare";
  fs::copy(dir, bare, fs::copy_options::recursive);
  fs::remove(bare + "/chat_template.jinja");
  auto tc = nlohmann::json::parse(read_file(bare + "/tokenizer_config.json"));
  tc.erase("chat_template");
  test::write_text(bare + "/tokenizer_config.json", tc.dump());
  auto r = test::run_distill({"complete", "--model", bare, "--prompt", "hi", "--chat", "--greedy", "--max-tokens", "4"});
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("no chat template") && Catch::Contains("--prompt-format r1"));
  r = test::run_distill({"complete", "--model", bare, "--prompt", "hi", "--chat", "--prompt-format", "r1", "--greedy",
                         "--max-tokens", "4", "--json"});
  CHECK(r.code == 0);
  CHECK_THAT(nlohmann::json::parse(r.out)["prompt"].get<std::string>(), Catch::StartsWith("User: hi\n"));
}

TEST_CASE("hf parity: complete takes the sampling settings it is not given from generation_config.json") {
  test::TempDir t;
  const auto dir = t / "m";
  fs::copy(models_dir() + "/qwen3_chat", dir, fs::copy_options::recursive);
  auto complete = [&](std::vector<std::string> more) {
    std::vector<std::string> args = {"complete", "--model", dir, "--prompt", "hello there", "--json"};
    args.insert(args.end(), more.begin(), more.end());
    auto r = test::run_distill(args);
    REQUIRE(r.code == 0);
    return nlohmann::json::parse(r.out);
  };
  // As saved by transformers, the file names no sampling setting: distill's defaults stay.
  auto j = complete({"--max-tokens", "3"});
  CHECK(j["sampling"]["source"] == "flags and distill's defaults");
  CHECK(j["sampling"]["temperature"].get<double>() == 0.6);
  // Sampling recommended by the model (as Qwen3 ships it), transformers' defaults for the keys it lacks.
  test::write_text(dir + "/generation_config.json",
                   R"({"do_sample": true, "temperature": 0.7, "top_k": 5, "max_new_tokens": 3, "eos_token_id": 2})");
  j = complete({});
  CHECK(j["sampling"]["temperature"].get<double>() == 0.7);
  CHECK(j["sampling"]["top_p"].get<double>() == 1.0);
  CHECK(j["sampling"]["top_k"] == 5);
  CHECK(j["sampling"]["max_tokens"] == 3);
  CHECK(j["ids"].size() <= 3);
  CHECK_THAT(j["sampling"]["source"].get<std::string>(), Catch::StartsWith("generation_config.json (temperature 0.7"));
  j = complete({"--temperature", "0.2", "--max-tokens", "5"});  // a flag wins over the file
  CHECK(j["sampling"]["temperature"].get<double>() == 0.2);
  CHECK(j["sampling"]["top_k"] == 5);
  CHECK(j["sampling"]["max_tokens"] == 5);
  // do_sample false (or absent) is greedy, as in transformers, whatever temperature the file names.
  test::write_text(dir + "/generation_config.json", R"({"do_sample": false, "temperature": 0.9, "eos_token_id": 2})");
  j = complete({"--max-tokens", "6", "--seed", "3"});
  CHECK(j["sampling"]["temperature"].get<double>() == 0.0);
  CHECK(j["ids"] == complete({"--max-tokens", "6", "--greedy"})["ids"]);
}
