// tests/test_model_reference.cpp: the C++ transformer against tests/reference/reference_model.py, for six
// tiny configurations (DeepSeek-V3 MLA+MoE with and without q LoRA, Qwen2-MoE, Mixtral, Llama, Qwen2):
// logits, LM loss, load-balancing loss, and the gradient of every parameter, on test::device() (CUDA in
// scripts/device-check). Fixtures: gen_fixtures.py.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "common/fs.h"
#include "model/config.h"
#include "model/hf_checkpoint.h"
#include "model/transformer.h"
#include "tests/model_fixtures.h"
#include "tests/tolerances.h"

using namespace distill;
using namespace distill::model;

namespace {


// Prints the max difference and the first elements on failure, as llm.c's test does.
void check_close(const std::string& what, const torch::Tensor& got, const torch::Tensor& want, double atol, double rtol) {
  INFO(what);
  REQUIRE(got.sizes() == want.sizes());
  atol *= test::tol_scale(), rtol *= test::tol_scale();
  auto diff = (got.cpu().to(torch::kFloat64) - want.to(torch::kFloat64)).abs();
  auto bound = atol + rtol * want.to(torch::kFloat64).abs();
  const double max_diff = diff.max().item<double>();
  const bool ok = (diff <= bound).all().item<bool>();
  if (!ok) {
    auto g = got.cpu().flatten().narrow(0, 0, std::min<std::int64_t>(5, got.numel()));
    auto w = want.flatten().narrow(0, 0, std::min<std::int64_t>(5, want.numel()));
    FAIL_CHECK(what << ": max |diff| " << max_diff << "\n got  " << g << "\n want " << w);
  }
}

}  // namespace

TEST_CASE("model reference: logits, losses and every gradient match the PyTorch reference", "[device]") {
  for (const char* name : {"deepseek_v3", "deepseek_v3_plain_q", "qwen2_moe", "mixtral", "llama", "llama3_rope", "qwen2"}) {
    INFO("config " << name);
    const auto cfg = ModelConfig::from_hf_json(read_file(test::reference_fixture(std::string(name) + ".config.json")), name);
    auto file = SafetensorsFile::open(test::reference_fixture(std::string(name) + ".safetensors"));
    Transformer m(cfg);
    load_state(*m, *file, "w.");
    m->to(test::device());
    ForwardInput in;
    in.input_ids = test::dev(file->get("input_ids"));
    in.want_aux_loss = true;
    auto out = m->forward(in);
    check_close("logits", out.logits, file->get("logits"), test::tol::kLogitsAtol, 0);
    auto loss = causal_lm_loss(out.logits, test::dev(file->get("labels")));
    check_close("loss", loss.reshape({1}), file->get("loss"), 0, test::tol::kLossRtol);
    auto total = loss;
    if (file->contains("aux_loss")) {
      REQUIRE(out.aux_loss.defined());
      check_close("aux_loss", out.aux_loss.reshape({1}), file->get("aux_loss"), 0, test::tol::kLossRtol);
      total = total + 0.01 * out.aux_loss;
    } else {
      CHECK_FALSE(out.aux_loss.defined());
    }
    total.backward();
    int n_grads = 0;
    for (auto& p : m->named_parameters()) {
      const std::string key = "grad." + p.key();
      REQUIRE(file->contains(key));
      REQUIRE(p.value().grad().defined());
      check_close(key, p.value().grad(), file->get(key), test::tol::kGradAtol, test::tol::kGradRtol);
      ++n_grads;
    }
    CHECK(n_grads == int(m->parameters().size()));
  }
}
