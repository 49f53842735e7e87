// tests/test_model_equivalence.cpp: design equivalences of the transformer: KV-cache decode == full
// forward; batched rows in arbitrary cache slots == one at a time; grouped MoE dispatch == naive per-token
// dispatch (values and gradients); one expert with top-1 == the dense FFN; packed documents == separate; the
// CPU inference kernels and the fused training ops == their LibTorch formulas. Cases tagged [device] run on
// test::device() (CUDA in scripts/device-check).
#include <ATen/autocast_mode.h>
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "common/fs.h"
#include "model/cpu_attention.h"
#include "model/cpu_avx512.h"
#include "model/cpu_gemv.h"
#include "model/cpu_kernels.h"
#include "model/hf_checkpoint.h"
#include "model/train_kernels.h"
#include "tests/model_fixtures.h"
#include "tests/tolerances.h"

using namespace distill;
using namespace distill::model;

namespace {

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

}  // namespace

TEST_CASE("equivalence: KV-cache prefill + one-token decode equals the full forward", "[device]") {
  // With gradients off the CPU kernels run (MLA: latent RoPE + norm, routing); with them on, the fused training
  // ops and the LibTorch formulas.
  for (bool grad : {false, true}) {
    torch::AutoGradMode mode(grad);
    for (const char* name : {"deepseek_v3", "deepseek_v3_plain_q", "llama", "qwen2_moe"}) {
      INFO(name << (grad ? " with gradients on" : ""));
      auto m = test::reference_model(name);
      torch::manual_seed(3);
      const auto V = m->config().vocab_size;
      auto ids = test::dev(torch::randint(V, {2, 14}, torch::kInt64));
      const double tol = test::tol::kEquivAtol * test::tol_scale();
      ForwardInput full;
      full.input_ids = ids;
      auto want = m->forward(full).logits.detach();

      auto cache = KVCache::allocate(m->config(), 2, 32, torch::dtype(torch::kFloat32).device(test::device()));
      ForwardInput pre;
      pre.input_ids = ids.narrow(1, 0, 6);
      pre.cache = &cache;
      auto got_pre = m->forward(pre).logits.detach();
      CHECK(max_diff(got_pre, want.narrow(1, 0, 6)) < tol);
      for (std::int64_t t = 6; t < 14; ++t) {
        ForwardInput step;
        step.input_ids = ids.narrow(1, t, 1);
        step.positions = test::dev(torch::full({2, 1}, t, torch::kInt64));
        step.cache = &cache;
        auto got = m->forward(step).logits.detach();
        INFO("position " << t);
        CHECK(max_diff(got, want.narrow(1, t, 1)) < tol);
      }
    }
  }
}

TEST_CASE("equivalence: the CPU router chooses and weighs experts as the LibTorch formulas do") {
  // deepseek_v3: sigmoid + bias correction, 4 groups of which the best are eligible; qwen2_moe: softmax without
  // renormalisation; mixtral: softmax renormalised over the top k.
  for (const char* name : {"deepseek_v3", "qwen2_moe", "mixtral"}) {
    INFO(name);
    auto m = test::reference_model(name);
    auto moe = m->moe_layers().front();
    torch::manual_seed(11);
    const auto E = moe->cfg.n_routed_experts;
    auto logits = torch::randn({200, E});
    if (moe->e_score_correction_bias.defined()) {
      torch::NoGradGuard g;
      moe->e_score_correction_bias.copy_(torch::randn({E}) * 0.3);
    }
    torch::Tensor idx_ref, w_ref, idx, w;
    {
      torch::AutoGradMode on(true);  // gradients on: the LibTorch formulas
      std::tie(idx_ref, w_ref) = moe->route(logits.clone().requires_grad_(true));
    }
    {
      torch::NoGradGuard off;  // the plain-loop router
      std::tie(idx, w) = moe->route(logits);
    }
    // The LibTorch top-k may list the chosen experts in another order: compare sorted by expert id.
    auto [si_ref, o_ref] = idx_ref.sort(1);
    auto [si, o] = idx.sort(1);
    CHECK(torch::equal(si, si_ref));
    CHECK(max_diff(w.gather(1, o), w_ref.detach().gather(1, o_ref)) < test::tol::kEquivAtol);
  }
}

TEST_CASE("equivalence: the MoE router's logits stay fp32 under bf16 autocast", "[device]") {
  // Autocast (the trainer's setting on CUDA) would run the router's matmul in bf16, and expert choice would then
  // follow rounded scores; router_logits excludes it.
  auto m = test::reference_model("deepseek_v3");
  auto moe = m->moe_layers().front();
  torch::manual_seed(12);
  auto x = test::dev(torch::randn({50, m->config().hidden_size}));
  auto want = torch::nn::functional::linear(x, moe->router_weight);
  const auto type = test::device().type();
  at::autocast::set_autocast_dtype(type, at::kBFloat16);
  at::autocast::set_autocast_enabled(type, true);
  auto got = moe->router_logits(x);
  auto plain = torch::nn::functional::linear(x, moe->router_weight);
  at::autocast::set_autocast_enabled(type, false);
  at::autocast::clear_cache();
  CHECK(plain.scalar_type() == torch::kBFloat16);  // autocast was on: a plain linear rounds
  CHECK(got.scalar_type() == torch::kFloat32);
  CHECK(max_diff(got, want) < test::tol::kEquivAtol * test::tol_scale());
}

TEST_CASE("equivalence: the CPU grouped MoE dispatch equals the naive loop at decode and prefill sizes") {
  // Few rows per expert take MKL's grouped GEMM where the torch build has it; many take one matmul per expert.
  torch::NoGradGuard g;
  auto m = test::reference_model("deepseek_v3");
  auto moe = m->moe_layers().front();
  torch::manual_seed(12);
  for (std::int64_t n : {3, 37, 600}) {
    INFO(n << " tokens");
    auto x = torch::randn({n, moe->cfg.hidden_size});
    auto logits = torch::nn::functional::linear(x, moe->router_weight);
    auto [idx, w] = moe->route(logits);
    moe->dispatch = MoeDispatch::naive;
    auto want = moe->moe(x, idx, w);
    moe->prepare_inference();
    REQUIRE(moe->dispatch == MoeDispatch::grouped);
    CHECK(max_diff(moe->moe(x, idx, w), want) < test::tol::kEquivAtol);
    moe->release_inference();
  }
}

TEST_CASE("equivalence: rows at different positions in arbitrary cache slots equal one-at-a-time runs", "[device]") {
  torch::NoGradGuard g;
  auto m = test::reference_model("deepseek_v3");
  torch::manual_seed(4);
  const auto V = m->config().vocab_size;
  auto a = test::dev(torch::randint(V, {1, 9}, torch::kInt64)), b = test::dev(torch::randint(V, {1, 5}, torch::kInt64));
  const double tol = test::tol::kEquivAtol * test::tol_scale();
  ForwardInput fa, fb;
  fa.input_ids = a;
  fb.input_ids = b;
  auto want_a = m->forward(fa).logits, want_b = m->forward(fb).logits;

  // a in slot 3, b in slot 0; prefill separately, then decode both in one batch with different positions.
  auto cache = KVCache::allocate(m->config(), 4, 16, torch::dtype(torch::kFloat32).device(test::device()));
  ForwardInput pa;
  pa.input_ids = a.narrow(1, 0, 8);
  pa.cache = &cache;
  pa.slots = test::dev(torch::tensor({3}, torch::kInt64));
  m->forward(pa);
  ForwardInput pb;
  pb.input_ids = b.narrow(1, 0, 4);
  pb.cache = &cache;
  pb.slots = test::dev(torch::tensor({0}, torch::kInt64));
  m->forward(pb);
  ForwardInput step;
  step.input_ids = torch::cat({a.narrow(1, 8, 1), b.narrow(1, 4, 1)}, 0);
  step.positions = test::dev(torch::tensor({{8}, {4}}, torch::kInt64));
  step.slots = test::dev(torch::tensor({3, 0}, torch::kInt64));
  step.cache = &cache;
  auto got = m->forward(step).logits;
  CHECK(max_diff(got[0], want_a[0][8].unsqueeze(0)) < tol);
  CHECK(max_diff(got[1], want_b[0][4].unsqueeze(0)) < tol);
}

TEST_CASE("equivalence: grouped MoE dispatch equals the naive per-token loop, values and gradients", "[device]") {
  for (const char* name : {"deepseek_v3", "qwen2_moe", "mixtral"}) {
    INFO(name);
    auto m = test::reference_model(name);
    torch::manual_seed(5);
    auto ids = test::dev(torch::randint(m->config().vocab_size, {2, 10}, torch::kInt64));
    const double tol = test::tol::kEquivAtol * test::tol_scale();
    auto run = [&](MoeDispatch d) {
      for (auto& moe : m->moe_layers()) moe->dispatch = d;
      m->zero_grad();
      ForwardInput in;
      in.input_ids = ids;
      auto logits = m->forward(in).logits;
      logits.pow(2).mean().backward();
      std::vector<torch::Tensor> grads;
      for (auto& p : m->parameters()) grads.push_back(p.grad().clone());
      return std::make_pair(logits.detach(), grads);
    };
    auto [lg, gg] = run(MoeDispatch::grouped);
    auto [ln, gn] = run(MoeDispatch::naive);
    CHECK(max_diff(lg, ln) < tol);
    for (std::size_t i = 0; i < gg.size(); ++i) CHECK(max_diff(gg[i], gn[i]) < tol);
  }
}

TEST_CASE("equivalence: prepared inference (grouped and stacked MoE dispatch) equals the naive per-token loop", "[device]") {
  torch::NoGradGuard g;
  for (const char* name : {"deepseek_v3", "qwen2_moe", "mixtral"}) {
    INFO(name);
    auto m = test::reference_model(name);
    torch::manual_seed(8);
    ForwardInput in;
    in.input_ids = test::dev(torch::randint(m->config().vocab_size, {3, 9}, torch::kInt64));
    const double tol = test::tol::kEquivAtol * test::tol_scale();
    for (auto& moe : m->moe_layers()) moe->dispatch = MoeDispatch::naive;
    auto want = m->forward(in).logits;
    m->prepare_inference();  // fused attention/FFN weights, stacked experts, CPU kernels
    // The device's choice first (grouped on the CPU, the stacked bmm elsewhere), then the other one.
    const auto chosen = in.input_ids.device().is_cpu() ? MoeDispatch::grouped : MoeDispatch::stacked;
    for (auto& moe : m->moe_layers()) REQUIRE(moe->dispatch == chosen);
    CHECK(max_diff(m->forward(in).logits, want) < tol);
    const auto other = chosen == MoeDispatch::grouped ? MoeDispatch::stacked : MoeDispatch::grouped;
    for (auto& moe : m->moe_layers()) moe->dispatch = other;
    CHECK(max_diff(m->forward(in).logits, want) < tol);
  }
}

TEST_CASE("equivalence: an MoE with one expert and top-1 equals the dense SwiGLU FFN") {
  ModelConfig moe_cfg;
  moe_cfg.model_type = "mixtral";
  moe_cfg.vocab_size = 50;
  moe_cfg.hidden_size = 16;
  moe_cfg.num_hidden_layers = 2;
  moe_cfg.num_attention_heads = 2;
  moe_cfg.num_key_value_heads = 2;
  moe_cfg.intermediate_size = 24;
  moe_cfg.moe_intermediate_size = 24;
  moe_cfg.n_routed_experts = 1;
  moe_cfg.num_experts_per_tok = 1;
  ModelConfig dense_cfg = moe_cfg;
  dense_cfg.model_type = "llama";
  dense_cfg.n_routed_experts = 0;
  torch::manual_seed(6);
  Transformer moe(moe_cfg), dense(dense_cfg);
  {
    torch::NoGradGuard g;
    auto ds = dense->state_dict();
    for (auto& [n, t] : moe->state_dict()) {
      std::string dn = n;
      auto rep = [&](const std::string& from, const std::string& to) {
        if (auto p = dn.find(from); p != std::string::npos) dn.replace(p, from.size(), to);
      };
      rep("block_sparse_moe.experts.0.w1", "mlp.gate_proj");
      rep("block_sparse_moe.experts.0.w3", "mlp.up_proj");
      rep("block_sparse_moe.experts.0.w2", "mlp.down_proj");
      for (auto& [n2, t2] : ds)
        if (n2 == dn) t.copy_(t2);
    }
  }
  auto ids = torch::randint(50, {2, 7}, torch::kInt64);
  ForwardInput in;
  in.input_ids = ids;
  CHECK(max_diff(moe->forward(in).logits, dense->forward(in).logits) < 1e-6);
}

TEST_CASE("equivalence: packed documents with reset positions equal separate rows", "[device]") {
  torch::NoGradGuard g;
  auto m = test::reference_model("mixtral");
  torch::manual_seed(7);
  auto a = torch::randint(m->config().vocab_size, {1, 5}, torch::kInt64);
  auto b = torch::randint(m->config().vocab_size, {1, 7}, torch::kInt64);
  a = test::dev(a), b = test::dev(b);
  const double tol = test::tol::kEquivAtol * test::tol_scale();
  ForwardInput fa, fb, packed;
  fa.input_ids = a;
  fb.input_ids = b;
  packed.input_ids = torch::cat({a, b}, 1);
  packed.positions = test::dev(torch::cat({torch::arange(5), torch::arange(7)}).unsqueeze(0));
  packed.segment_ids = test::dev(torch::cat({torch::zeros(5, torch::kInt64), torch::ones(7, torch::kInt64)}).unsqueeze(0));
  auto p = m->forward(packed).logits;
  CHECK(max_diff(p.narrow(1, 0, 5), m->forward(fa).logits) < tol);
  CHECK(max_diff(p.narrow(1, 5, 7), m->forward(fb).logits) < tol);
}

TEST_CASE("equivalence: the one-pass CPU decode attention equals the LibTorch op chain it replaces") {
  // GqaAttentionImpl's decode step in ops: per-head RMSNorm (Qwen3), RoPE in apply_rope's roll form, the cache
  // writes, then softmax(q k^T * scale + mask) v for each query head over its kv head's keys. Rows sit in
  // shuffled slots at different positions (one at 0), so each reads its own prefix of its own slot.
  torch::NoGradGuard g;
  for (std::int64_t d : {16, 64, 128})
    for (auto [H, Hk] : {std::pair<std::int64_t, std::int64_t>{4, 4}, {8, 2}, {6, 3}})
      for (bool norms : {false, true}) {
        INFO("head_dim " << d << ", " << H << " heads over " << Hk << (norms ? ", q/k norms" : ""));
        torch::manual_seed(d + H + norms);
        const std::int64_t B = 3, slots_n = 5, max_len = 40;
        auto pos = torch::tensor({17, 0, 33}, torch::kInt64).view({B, 1});
        auto slots = torch::tensor({4, 0, 2}, torch::kInt64);
        auto qkv = torch::randn({B, 1, (H + 2 * Hk) * d});
        auto k_cache = torch::randn({slots_n, Hk, max_len, d}), v_cache = torch::randn({slots_n, Hk, max_len, d});
        auto inv_freq = 1.0 / torch::pow(10000.0, torch::arange(0, d, 2).to(torch::kFloat32) / double(d));
        auto f = pos.to(torch::kFloat32).unsqueeze(-1) * inv_freq;  // [B,1,d/2]
        auto cos = torch::cat({f.cos(), f.cos()}, -1).unsqueeze(1), sin_rot = torch::cat({-f.sin(), f.sin()}, -1).unsqueeze(1);
        cpu::DecodeAttention a;
        a.heads = H, a.kv_heads = Hk, a.head_dim = d, a.scale = 1.0 / std::sqrt(double(d)), a.eps = 1e-6;
        if (norms) a.q_norm = torch::rand({d}) + 0.5, a.k_norm = torch::rand({d}) + 0.5;
        a.cos = cos, a.sin_rot = sin_rot, a.slots = slots, a.positions = pos;
        a.k_cache = k_cache.clone(), a.v_cache = v_cache.clone();
        if (!cpu::decode_attention_applies(qkv, a)) {
          WARN("no AVX-512 on this CPU: the one-pass decode attention is off, nothing to compare");
          return;
        }
        auto got = cpu::decode_attention(qkv, a);

        auto parts = qkv.split({H * d, Hk * d, Hk * d}, -1);
        auto q = parts[0].view({B, 1, H, d}), k = parts[1].view({B, 1, Hk, d}), v = parts[2].view({B, 1, Hk, d});
        auto rms = [&](const torch::Tensor& x, const torch::Tensor& w) {
          return w * (x * torch::rsqrt(x.pow(2).mean(-1, true) + a.eps));
        };
        if (norms) q = rms(q, a.q_norm), k = rms(k, a.k_norm);
        auto rope = [&](const torch::Tensor& x) {  // x [B, heads, 1, d]
          return x * cos + torch::roll(x, d / 2, -1) * sin_rot;
        };
        q = rope(q.transpose(1, 2)), k = rope(k.transpose(1, 2)), v = v.transpose(1, 2);  // [B, heads, 1, d]
        std::vector<torch::Tensor> rows;
        for (std::int64_t b = 0; b < B; ++b) {
          const auto s = slots[b].item<std::int64_t>(), p = pos[b][0].item<std::int64_t>();
          k_cache[s].select(1, p).copy_(k[b].squeeze(1));
          v_cache[s].select(1, p).copy_(v[b].squeeze(1));
          auto keys = k_cache[s].narrow(1, 0, p + 1), values = v_cache[s].narrow(1, 0, p + 1);  // [Hk, S, d]
          auto qh = q[b].view({Hk, H / Hk, d});
          auto probs = (torch::matmul(qh, keys.transpose(1, 2)) * a.scale).softmax(-1);  // [Hk, rep, S]
          rows.push_back(torch::matmul(probs, values).reshape({1, 1, H * d}));
        }
        auto want = torch::cat(rows, 0);
        CHECK(max_diff(got, want) < test::tol::kEquivAtol);
        CHECK(max_diff(a.k_cache, k_cache) < test::tol::kEquivAtol);  // the new keys written, nothing else
        CHECK(torch::equal(a.v_cache, v_cache));
      }
}

TEST_CASE("equivalence: prepared inference (fused weights, CPU kernels, decode path) equals the plain forward") {
  // Every architecture: fused q/k/v (with Qwen2's biases), MLA with and without q LoRA and interleaved RoPE
  // folded into the weights, router + shared expert in one matmul, fused gate|up, and the decode attention.
  torch::NoGradGuard g;
  for (const char* name : {"deepseek_v3", "deepseek_v3_plain_q", "llama", "llama3_rope", "qwen2", "qwen2_moe", "mixtral"}) {
    INFO(name);
    auto m = test::reference_model(name);
    torch::manual_seed(9);
    const auto V = m->config().vocab_size;
    auto ids = torch::randint(V, {3, 12}, torch::kInt64);
    ForwardInput full;
    full.input_ids = ids;
    auto want = m->forward(full).logits;
    // Decode against the plain model too, with rows in shuffled slots at different lengths.
    auto decode = [&] {
      auto cache = KVCache::allocate(m->config(), 5, 16, torch::kFloat32);
      ForwardInput pre;
      pre.input_ids = ids.narrow(1, 0, 7);
      pre.cache = &cache;
      pre.slots = torch::tensor({4, 0, 2}, torch::kInt64);
      std::vector<torch::Tensor> out{m->forward(pre).logits};
      for (std::int64_t t = 7; t < 12; ++t) {
        ForwardInput step;
        step.input_ids = ids.narrow(1, t, 1);
        step.positions = torch::full({3, 1}, t, torch::kInt64);
        step.slots = pre.slots;
        step.cache = &cache;
        out.push_back(m->forward(step).logits);
      }
      return torch::cat(out, 1);
    };
    auto plain_decode = decode();
    CHECK(max_diff(plain_decode, want) < test::tol::kEquivAtol);
    m->prepare_inference();
    CHECK(max_diff(m->forward(full).logits, want) < test::tol::kEquivAtol);
    CHECK(max_diff(decode(), want) < test::tol::kEquivAtol);
    m->release_inference();
    CHECK(max_diff(m->forward(full).logits, want) < test::tol::kEquivAtol);
  }
}

TEST_CASE("equivalence: decode with exact 16-bit weight copies (f16 and bf16 checkpoints) equals the fp32 forward") {
  // Weights holding f16 or bf16 values, as a checkpoint stored in either loads: prepare_inference keeps 16-bit
  // copies that decode steps (one row and several) read through model/cpu_gemv.h.
  torch::NoGradGuard g;
  for (const char* name : {"llama", "qwen2"})
    for (auto dt : {torch::kFloat16, torch::kBFloat16}) {
      INFO(name << " " << dt);
      auto m = test::reference_model(name);
      for (auto& p : m->parameters()) p.copy_(p.to(dt).to(torch::kFloat32));
      torch::manual_seed(4);
      for (std::int64_t B : {1, 3}) {
        auto ids = torch::randint(m->config().vocab_size, {B, 10}, torch::kInt64);
        ForwardInput full;
        full.input_ids = ids;
        m->release_inference();
        auto want = m->forward(full).logits;
        m->prepare_inference();
        // (bf16 values of these magnitudes are f16 values too, and f16 is tried first: either copy is exact)
        if (model::avx512_usable()) CHECK(gemv::compact(m->output_weight()).defined());
        auto cache = KVCache::allocate(m->config(), B, 12, torch::kFloat32);
        ForwardInput pre;
        pre.input_ids = ids.narrow(1, 0, 6);
        pre.cache = &cache;
        pre.slots = torch::arange(B, torch::kInt64);
        std::vector<torch::Tensor> out{m->forward(pre).logits};
        for (std::int64_t t = 6; t < 10; ++t) {
          ForwardInput step;
          step.input_ids = ids.narrow(1, t, 1);
          step.positions = torch::full({B, 1}, t, torch::kInt64);
          step.slots = pre.slots;
          step.cache = &cache;
          out.push_back(m->forward(step).logits);
        }
        CHECK(max_diff(torch::cat(out, 1), want) < test::tol::kEquivAtol);
      }
      m->release_inference();
    }
}

TEST_CASE("equivalence: the CPU RMSNorm and SwiGLU kernels equal the LibTorch formulas, strided rows too") {
  torch::NoGradGuard g;
  torch::manual_seed(10);
  auto base = torch::randn({3, 5, 40});
  auto w = torch::randn({32});
  for (auto x : {base.narrow(2, 0, 32), base.narrow(2, 8, 32), base.narrow(2, 3, 32).transpose(0, 1), base.select(1, 2).narrow(1, 1, 32)}) {
    auto want = w * (x * torch::rsqrt(x.pow(2).mean(-1, true) + 1e-6));
    CHECK(max_diff(cpu::rms_norm(x, w, 1e-6), want) < test::tol::kEquivAtol);
  }
  auto gu = torch::randn({4, 3, 48}).narrow(1, 1, 2);
  auto parts = gu.chunk(2, -1);
  CHECK(max_diff(cpu::silu_mul(gu), torch::silu(parts[0]) * parts[1]) < test::tol::kEquivAtol);
}

namespace {
// Gradients of sum(out * up) for each input, the upstream `up` random: what backward hands each op in a model.
std::vector<torch::Tensor> grads_of(const std::vector<torch::Tensor>& outs, const std::vector<torch::Tensor>& ups,
                                    const std::vector<torch::Tensor>& inputs) {
  auto loss = torch::zeros({});
  for (std::size_t i = 0; i < outs.size(); ++i)
    if (ups[i].defined()) loss = loss + (outs[i] * ups[i]).sum();
  return torch::autograd::grad({loss}, inputs, {}, /*retain_graph=*/true);
}
}  // namespace

TEST_CASE("equivalence: the fused training ops equal their LibTorch formulas, values and gradients") {
  torch::manual_seed(11);
  auto formula = [](const torch::Tensor& a, const torch::Tensor& w) { return w * (a * torch::rsqrt(a.pow(2).mean(-1, true) + 1e-6)); };
  SECTION("RMSNorm, odd widths, strided rows with gradients") {
    for (std::int64_t D : {37, 64}) {
      auto leaf = torch::randn({3, 7, D + 5}).requires_grad_(true);
      auto x = leaf.narrow(2, 2, D);  // strided rows, as a split of a fused projection gives MLA's norm
      auto w = (torch::randn({D}) * 0.5 + 1).requires_grad_(true);
      auto up = torch::randn({3, 7, D});
      auto got = fused::rms_norm(x, w, 1e-6);
      auto want = formula(x, w);
      CHECK(max_diff(got, want) < test::tol::kEquivAtol);
      auto g1 = grads_of({got}, {up}, {leaf, w});
      auto g2 = grads_of({want}, {up}, {leaf, w});
      CHECK(max_diff(g1[0], g2[0]) < test::tol::kEquivAtol);
      CHECK(max_diff(g1[1], g2[1]) < 1e-4);  // a sum over 21 rows
    }
  }
  SECTION("RMSNorm and SwiGLU split over threads: rows and per-thread weight-gradient sums") {
    const int before = at::get_num_threads();
    at::set_num_threads(4);
    auto x = torch::randn({8, 300, 64}).requires_grad_(true);
    auto w = (torch::randn({64}) * 0.5 + 1).requires_grad_(true);
    auto up = torch::randn({8, 300, 64});
    auto g1 = grads_of({fused::rms_norm(x, w, 1e-6)}, {up}, {x, w});
    auto g2 = grads_of({formula(x, w)}, {up}, {x, w});
    CHECK(max_diff(g1[0], g2[0]) < test::tol::kEquivAtol);
    CHECK(max_diff(g1[1], g2[1]) / g2[1].abs().max().item<double>() < 1e-5);  // 2,400 rows summed
    auto g = torch::randn({8, 300, 64}).requires_grad_(true), u = torch::randn({8, 300, 64}).requires_grad_(true);
    auto h1 = fused::swiglu(g, u), h2 = torch::silu(g) * u;
    CHECK(max_diff(h1, h2) < test::tol::kEquivAtol);
    auto s1 = grads_of({h1}, {up}, {g, u});
    auto s2 = grads_of({h2}, {up}, {g, u});
    CHECK(max_diff(s1[0], s2[0]) < test::tol::kEquivAtol);
    CHECK(max_diff(s1[1], s2[1]) < test::tol::kEquivAtol);
    at::set_num_threads(before);
  }
  SECTION("SwiGLU, across the whole range of the exponential, strided inputs") {
    auto gu = torch::randn({5, 3, 2 * 19}) * 3;
    gu.select(2, 0).fill_(0);
    gu.select(2, 1).fill_(-95);  // past the clamp of exp: e^-80
    gu.select(2, 2).fill_(95);
    gu.select(2, 3).fill_(-20);
    gu.requires_grad_(true);
    auto parts = gu.chunk(2, -1);
    auto up = torch::randn({5, 3, 19});
    auto got = fused::swiglu(parts[0], parts[1]);
    auto want = torch::silu(parts[0]) * parts[1];
    CHECK(max_diff(got, want) < test::tol::kEquivAtol);
    // Relative error, the tiny values too, where e^g is a normal float; below that both are 0 to within 1e-30.
    auto rel = (got - want).abs() / (want.abs() + 1e-38);
    CHECK(rel.masked_select(parts[0].abs() <= 80).max().item<double>() < 1e-5);
    CHECK((got - want).abs().masked_select(parts[0].abs() > 80).max().item<double>() < 1e-30);
    auto g1 = grads_of({got}, {up}, {gu});
    auto g2 = grads_of({want}, {up}, {gu});
    CHECK(max_diff(g1[0], g2[0]) < test::tol::kEquivAtol);
  }
  SECTION("RoPE into head layouts, GQA, strided projections, a gradient missing for v") {
    const std::int64_t B = 2, T = 5, H = 4, K = 2, d = 6;
    auto qkv = torch::randn({B, T, (H + 2 * K) * d}).requires_grad_(true);
    auto parts = qkv.split({H * d, K * d, K * d}, -1);  // strided rows, as from one fused projection
    auto ang = torch::randn({B, 1, T, d / 2}) * 3;
    auto cos = torch::cat({ang.cos(), ang.cos()}, -1), sin_rot = torch::cat({-ang.sin(), ang.sin()}, -1);
    auto rot = [&](const torch::Tensor& x) { return x * cos + torch::roll(x, d / 2, -1) * sin_rot; };
    auto [q, k, v] = fused::rope_heads(parts[0], parts[1], parts[2], cos, sin_rot, H, K);
    auto wq = rot(parts[0].view({B, T, H, d}).transpose(1, 2));
    auto wk = rot(parts[1].view({B, T, K, d}).transpose(1, 2));
    auto wv = parts[2].view({B, T, K, d}).transpose(1, 2);
    CHECK(max_diff(q, wq) < test::tol::kEquivAtol);
    CHECK(max_diff(k, wk) < test::tol::kEquivAtol);
    CHECK(torch::equal(v, wv.contiguous()));
    CHECK((q.is_contiguous() && k.is_contiguous() && v.is_contiguous()));
    std::vector<torch::Tensor> ups = {torch::randn_like(wq), torch::randn_like(wk), torch::randn_like(wv)};
    auto g1 = grads_of({q, k, v}, ups, {qkv});
    auto g2 = grads_of({wq, wk, wv}, ups, {qkv});
    CHECK(max_diff(g1[0], g2[0]) < test::tol::kEquivAtol);
    ups[2] = torch::Tensor();  // v unused: its gradient arrives undefined and counts as zero
    auto g3 = grads_of({q, k}, {ups[0], ups[1]}, {qkv});
    auto g4 = grads_of({wq, wk}, {ups[0], ups[1]}, {qkv});
    CHECK(max_diff(g3[0], g4[0]) < test::tol::kEquivAtol);
  }
  SECTION("causal attention: 16-, 32- and 64-wide heads, GQA, lengths around the tiles, threads, packed documents") {
    // The formula in float64: softmax(scale q k^T, causal) v with kv head h / (H / K), heads merged.
    auto formula = [](torch::Tensor q, torch::Tensor k, torch::Tensor v, double scale) {
      const auto B = q.size(0), H = q.size(1), T = q.size(2), rep = H / k.size(1);
      q = q.to(torch::kDouble), k = k.to(torch::kDouble).repeat_interleave(rep, 1);
      v = v.to(torch::kDouble).repeat_interleave(rep, 1);
      auto s = torch::matmul(q, k.transpose(-1, -2)) * scale;
      s = s.masked_fill(torch::ones({T, T}, torch::kBool).triu(1), -INFINITY);
      return torch::matmul(s.softmax(-1), v).transpose(1, 2).reshape({B, T, -1});
    };
    const int before = at::get_num_threads();
    at::set_num_threads(4);
    struct Case { std::int64_t B, H, K, T, d; double scale; };
    // T 1, 7, 8, 16, 17, 37, 70: partial and whole query tiles (8) and key tiles (16); scale 3 gives scores of ~±50.
    for (auto c : {Case{2, 8, 4, 37, 16, 0.25}, Case{1, 4, 1, 5, 32, 0.125}, Case{3, 2, 2, 1, 32, 1.0},
                   Case{1, 6, 2, 16, 16, 0.25}, Case{2, 2, 1, 17, 32, 0.2}, Case{1, 2, 1, 70, 16, 3.0},
                   Case{1, 3, 3, 8, 16, 0.25}, Case{2, 4, 2, 7, 32, 0.3}, Case{2, 6, 2, 33, 64, 0.125}}) {
      CAPTURE(c.B, c.H, c.K, c.T, c.d, c.scale);
      auto q = torch::randn({c.B, c.H, c.T, c.d}).requires_grad_(true);
      auto k = torch::randn({c.B, c.K, c.T, c.d}).requires_grad_(true);
      auto vl = torch::randn({c.B, c.T, c.K, c.d}).requires_grad_(true);
      auto v = vl.transpose(1, 2);  // strided, as a view of the projection would be
      REQUIRE(fused::causal_attention_applies(q, k, v));
      auto got = fused::causal_attention(q, k, v, c.scale);
      auto want = formula(q, k, v, c.scale);
      CHECK(got.sizes() == want.sizes());
      CHECK(max_diff(got, want.to(torch::kFloat)) < test::tol::kEquivAtol);
      auto up = torch::randn_like(got);
      auto g1 = grads_of({got}, {up}, {q, k, vl});
      auto g2 = grads_of({want}, {up.to(torch::kDouble)}, {q, k, vl});
      for (int i = 0; i < 3; ++i) CHECK(max_diff(g1[i], g2[i].to(torch::kFloat)) < 1e-4);
    }
    // Packed documents: query i reads keys starts[i]..i, the formula's mask made block-diagonal. Row 0: documents
    // of 5, 20 and 1 token and then 11 single padding tokens (each its own document); row 1: one of 37.
    for (const std::int64_t d : {16, 64}) {
      CAPTURE(d);
      const std::int64_t B = 2, H = 4, K = 2, T = 37;
      std::vector<std::int64_t> st(B * T);
      for (std::int64_t i = 0; i < T; ++i) {
        st[i] = i < 5 ? 0 : i < 25 ? 5 : i;
        st[T + i] = 0;
      }
      auto starts = torch::tensor(st).view({B, T});
      auto keys = torch::arange(T).view({1, 1, T});
      auto masked = (keys < starts.unsqueeze(-1)) | (keys > torch::arange(T).view({1, T, 1}));  // [B, T, T]
      auto q = torch::randn({B, H, T, d}).requires_grad_(true), k = torch::randn({B, K, T, d}).requires_grad_(true);
      auto v = torch::randn({B, K, T, d}).requires_grad_(true);
      auto qd = q.to(torch::kDouble), kd = k.to(torch::kDouble).repeat_interleave(H / K, 1);
      auto sc = torch::matmul(qd, kd.transpose(-1, -2)) * 0.25;
      auto want = torch::matmul(sc.masked_fill(masked.unsqueeze(1), -INFINITY).softmax(-1),
                                v.to(torch::kDouble).repeat_interleave(H / K, 1))
                      .transpose(1, 2)
                      .reshape({B, T, -1});
      auto got = fused::causal_attention(q, k, v, 0.25, starts);
      CHECK(max_diff(got, want.to(torch::kFloat)) < test::tol::kEquivAtol);
      auto up = torch::randn_like(got);
      auto g1 = grads_of({got}, {up}, {q, k, v});
      auto g2 = grads_of({want}, {up.to(torch::kDouble)}, {q, k, v});
      for (int i = 0; i < 3; ++i) CHECK(max_diff(g1[i], g2[i].to(torch::kFloat)) < 1e-4);
      // Starts that would read a later key, or go back along a row, are refused.
      auto bad = starts.clone();
      bad[1][3] = 4;
      CHECK_THROWS_WITH(fused::causal_attention(q, k, v, 0.25, bad), Catch::Contains("starts must satisfy"));
      bad = starts.clone();
      bad[0][30] = 0;
      CHECK_THROWS_WITH(fused::causal_attention(q, k, v, 0.25, bad), Catch::Contains("never decrease"));
    }
    at::set_num_threads(before);
    CHECK_FALSE(fused::causal_attention_applies(torch::randn({1, 2, 4, 24}), torch::randn({1, 2, 4, 24}),
                                                torch::randn({1, 2, 4, 24})));
  }
}

TEST_CASE("equivalence: packed rows give the fused attention starts only where they equal the mask") {
  auto i64 = [](std::vector<std::int64_t> v) { return torch::tensor(v).view({1, -1}); };
  // As pack_rows lays them out: documents 0 and 1, then two padding tokens, each its own segment at position 0.
  auto st = fused::document_starts(i64({0, 1, 2, 0, 1, 0, 0}), i64({0, 0, 0, 1, 1, 2, 3}));
  REQUIRE(st.defined());
  CHECK(torch::equal(st, i64({0, 0, 0, 3, 3, 5, 6})));
  // Two rows sharing one [1, T] row of segment ids, as the mask accepts.
  auto two = fused::document_starts(torch::cat({i64({0, 1, 0}), i64({0, 1, 2})}), i64({0, 0, 1}));
  CHECK(torch::equal(two, torch::cat({i64({0, 0, 2}), i64({0, 0, 2})})));
  // Where the mask is not a range of keys: a position that does not rise (a later key would be visible), a
  // document that comes back after another.
  CHECK_FALSE(fused::document_starts(i64({0, 1, 1}), i64({0, 0, 0})).defined());
  CHECK_FALSE(fused::document_starts(i64({0, 0, 1}), i64({0, 1, 0})).defined());
}
