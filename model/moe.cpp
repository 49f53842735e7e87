// model/moe.cpp: the MoE FFN of model/transformer.h: routing (softmax, or DeepSeek's sigmoid with bias correction
// and group-limited choice), the grouped, stacked and naive expert dispatches, shared experts, the prepared weight
// copies for inference, and the auxiliary-loss-free bias update.
#include <torch/torch.h>

#include <limits>

#include "model/cpu_gemm.h"
#include "model/cpu_kernels.h"
#include "model/transformer.h"
#include "model/transformer_impl.h"

namespace distill::model {

namespace F = torch::nn::functional;
using detail::linear;
using detail::Names;
using detail::names_for;

MoEImpl::MoEImpl(const ModelConfig& c) : cfg(c) {
  const Names n = names_for(c);
  auto gate = std::make_shared<torch::nn::Module>();
  router_weight = gate->register_parameter("weight", torch::empty({c.n_routed_experts, c.hidden_size}));
  if (c.scoring_func == "sigmoid")
    e_score_correction_bias = gate->register_buffer("e_score_correction_bias", torch::zeros({c.n_routed_experts}));
  register_module("gate", gate);
  experts = register_module("experts", torch::nn::ModuleList());
  for (std::int64_t e = 0; e < c.n_routed_experts; ++e)
    experts->push_back(MLP(c.hidden_size, c.moe_intermediate_size, n.gate, n.up, n.down));
  if (c.model_type == "qwen2_moe" && c.shared_expert_intermediate_size > 0) {
    shared = register_module(n.shared, MLP(c.hidden_size, c.shared_expert_intermediate_size, n.gate, n.up, n.down));
    shared_gate = register_module(n.shared_gate, linear(c.hidden_size, 1, false));
  } else if (c.n_shared_experts > 0) {
    shared = register_module(n.shared, MLP(c.hidden_size, c.moe_intermediate_size * c.n_shared_experts, n.gate, n.up, n.down));
  }
}

std::pair<torch::Tensor, torch::Tensor> MoEImpl::route(const torch::Tensor& logits) const {
  const auto k = cfg.num_experts_per_tok;
  if (cpu::applies(logits) && logits.dim() == 2 && logits.stride(1) == 1) {  // the same choice in plain loops
    cpu::RouteOptions o;
    o.sigmoid = cfg.scoring_func != "softmax";
    o.k = k;
    o.n_group = o.sigmoid ? cfg.n_group : 1;
    o.topk_group = cfg.topk_group;
    o.norm_topk_prob = cfg.norm_topk_prob;
    o.scaling = cfg.routed_scaling_factor;
    return cpu::route(logits, o.sigmoid ? e_score_correction_bias : torch::Tensor(), o);
  }
  torch::Tensor idx, w;
  if (cfg.scoring_func == "softmax") {
    // routing_weights = softmax(router_logits); topk; renormalise if norm_topk_prob (Mixtral always does)
    auto probs = torch::softmax(logits.to(torch::kFloat32), -1);
    std::tie(w, idx) = probs.topk(k, -1);
    if (cfg.norm_topk_prob) w = w / w.sum(-1, true);
  } else {
    // DeepSeek-V3: sigmoid scores; choose with the bias-corrected scores inside the best groups, weight
    // with the uncorrected ones. Masked experts get -inf (DeepSeek's reference; HF's port uses 0.0).
    auto scores = torch::sigmoid(logits.to(torch::kFloat32));
    auto choice = scores + e_score_correction_bias.to(torch::kFloat32);
    if (cfg.n_group > 1) {
      const auto N = logits.size(0), G = cfg.n_group, per = cfg.n_routed_experts / cfg.n_group;
      auto group_scores = std::get<0>(choice.view({N, G, per}).topk(std::min<std::int64_t>(2, per), -1)).sum(-1);
      auto group_idx = std::get<1>(group_scores.topk(cfg.topk_group, -1, true, false));
      auto group_mask = torch::zeros_like(group_scores).scatter_(1, group_idx, 1.0);
      auto score_mask = group_mask.unsqueeze(-1).expand({N, G, per}).reshape({N, cfg.n_routed_experts});
      choice = choice.masked_fill(score_mask == 0, -std::numeric_limits<float>::infinity());
    }
    idx = std::get<1>(choice.topk(k, -1, true, false));
    w = scores.gather(1, idx);
    if (cfg.norm_topk_prob) w = w / (w.sum(-1, true) + 1e-20);
  }
  return {idx, w * cfg.routed_scaling_factor};
}

torch::Tensor MoEImpl::moe(const torch::Tensor& x, const torch::Tensor& idx, const torch::Tensor& w) {
  const auto N = x.size(0), k = idx.size(1), E = cfg.n_routed_experts;
  const auto wx = w.to(x.scalar_type());
  if (dispatch == MoeDispatch::naive) {
    std::vector<torch::Tensor> rows;
    auto idx_cpu = idx.to(torch::kCPU);
    for (std::int64_t n = 0; n < N; ++n) {
      auto acc = torch::zeros({1, x.size(1)}, x.options());
      for (std::int64_t j = 0; j < k; ++j) {
        auto e = idx_cpu[n][j].item<std::int64_t>();
        acc = acc + wx.index({n, j}) * experts[std::size_t(e)]->as<MLPImpl>()->forward(x.narrow(0, n, 1));
      }
      rows.push_back(acc);
    }
    return torch::cat(rows, 0);
  }
  if (dispatch == MoeDispatch::grouped && !expert_gate_up_t.empty() && cpu::applies(x))
    return cpu::moe_grouped(x, idx, w, expert_gate_up_t, expert_down_t);
  auto flat = idx.reshape({-1});
  const auto D = x.size(1);
  if (dispatch == MoeDispatch::stacked && w_down_t.defined() && !torch::GradMode::is_enabled()) {
    // Stacked: pair p = (token p/k, expert flat[p]) goes to row rank-within-its-expert of that expert's block
    // of C rows (C = the largest group); two bmm for all experts; each token then sums its k rows. No sort.
    auto seen = torch::zeros({N * k, E}, idx.options()).scatter_(1, flat.unsqueeze(1), 1).cumsum(0);
    const auto C = seen.select(0, N * k - 1).max().item<std::int64_t>();
    auto dest = flat * C + seen.gather(1, flat.unsqueeze(1)).squeeze(1) - 1;  // row in the padded [E*C] layout
    auto xk = x.unsqueeze(1).expand({N, k, D}).reshape({N * k, D});
    auto xs = torch::zeros({E * C, D}, x.options()).index_copy_(0, dest, xk);
    auto gu = torch::bmm(xs.view({E, C, D}), w_gate_up_t);  // [E, C, 2I]
    auto h = cpu::applies(gu) ? cpu::silu_mul(gu) : [&] { auto p = gu.chunk(2, -1); return F::silu(p[0]) * p[1]; }();
    auto y = torch::bmm(h, w_down_t).view({E * C, D});
    return (y.index_select(0, dest) * wx.reshape({-1, 1})).view({N, k, D}).sum(1);
  }
  // The dispatches below sort the N*k (token, expert) pairs by expert (stable).
  auto order = std::get<1>(flat.sort(std::optional<bool>(true), 0, false));
  auto tok = order.div(k, "floor");
  // Grouped: run each active expert once on its rows.
  auto counts = torch::bincount(flat, {}, E).to(torch::kCPU);  // the one host sync of the MoE layer
  auto xs = x.index_select(0, tok);
  auto ws = wx.reshape({-1}).index_select(0, order).unsqueeze(1);
  std::vector<torch::Tensor> outs;
  std::int64_t start = 0;
  const auto* cnt = counts.data_ptr<std::int64_t>();
  const bool prepared = w_down_t.defined() && !torch::GradMode::is_enabled();
  for (std::int64_t e = 0; e < E; ++e) {
    if (!cnt[e]) continue;
    auto xe = xs.narrow(0, start, cnt[e]);
    if (prepared) {  // the stacked copies: two matmuls and the fused silu*up
      auto gu = gemm::mm(xe, w_gate_up_t[e]);
      auto h = cpu::applies(gu) ? cpu::silu_mul(gu) : [&] { auto p = gu.chunk(2, -1); return F::silu(p[0]) * p[1]; }();
      outs.push_back(gemm::mm(h, w_down_t[e]));
    } else {
      outs.push_back(experts[std::size_t(e)]->as<MLPImpl>()->forward(xe));
    }
    start += cnt[e];
  }
  auto ys = torch::cat(outs, 0) * ws;
  return torch::zeros_like(x).index_add(0, tok, ys);
}

torch::Tensor MoEImpl::forward(const torch::Tensor& x, LayerContext& ctx) {
  const auto shape = x.sizes().vec();
  auto flat = x.reshape({-1, x.size(-1)});                      // [N, D]
  if (w_router_shared.defined() && !torch::GradMode::is_enabled()) {
    // Prepared fp32 model: router, shared-expert gate|up (and Qwen's shared gate) in one matmul.
    const auto E = cfg.n_routed_experts, Is = shared->gate_proj->weight.size(0);
    auto parts = gemm::linear(flat, w_router_shared).split({E, Is * 2, shared_gate ? 1 : 0}, -1);
    if (ctx.router_logits) ctx.router_logits->push_back(parts[0]);
    auto [idx, w] = route(parts[0]);
    auto h = cpu::applies(parts[1]) ? cpu::silu_mul(parts[1])
                                    : [&] { auto p = parts[1].chunk(2, -1); return F::silu(p[0]) * p[1]; }();
    auto s = shared->down_proj(h);
    if (shared_gate) s = torch::sigmoid(parts[2]) * s;
    return (moe(flat, idx, w) + s).view(shape);
  }
  auto logits = router_logits(flat);  // [N, E]
  if (ctx.router_logits) ctx.router_logits->push_back(logits);
  auto [idx, w] = route(logits);
  if (is_training()) last_load = torch::bincount(idx.reshape({-1}), {}, cfg.n_routed_experts).to(torch::kFloat32);
  auto out = moe(flat, idx, w);
  if (shared) {
    auto s = shared->forward(flat);
    if (shared_gate) s = torch::sigmoid(shared_gate(flat)) * s;
    out = out + s;
  }
  return out.view(shape);
}

torch::Tensor MoEImpl::router_logits(const torch::Tensor& x) const {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  return gemm::linear(x.to(torch::kFloat32), router_weight.to(torch::kFloat32));
}

void MoEImpl::prepare_inference() {
  torch::NoGradGuard g;
  std::vector<torch::Tensor> gu, d;
  for (std::size_t e = 0; e < experts->size(); ++e) {
    auto* m = experts[e]->as<MLPImpl>();
    gu.push_back(torch::cat({m->gate_proj->weight, m->up_proj->weight}, 0).t());  // [D, 2I]
    d.push_back(m->down_proj->weight.t());                                          // [I, D]
  }
  w_gate_up_t = torch::stack(gu).contiguous();
  w_down_t = torch::stack(d).contiguous();
  expert_gate_up_t.clear();
  expert_down_t.clear();
  for (std::int64_t e = 0; e < w_gate_up_t.size(0); ++e) {
    expert_gate_up_t.push_back(w_gate_up_t[e]);
    expert_down_t.push_back(w_down_t[e]);
  }
  // On the CPU, grouped dispatch over the stacked copies measured faster than the padded bmm at every batch
  // size (bench_generate); elsewhere the two bmm save kernel launches.
  dispatch = router_weight.device().is_cpu() ? MoeDispatch::grouped : MoeDispatch::stacked;
  if (shared) shared->prepare_inference();
  if (shared && router_weight.scalar_type() == torch::kFloat32) {
    std::vector<torch::Tensor> rows{router_weight, shared->gate_proj->weight, shared->up_proj->weight};
    if (shared_gate) rows.push_back(shared_gate->weight);
    w_router_shared = torch::cat(rows, 0);
  }
}

void MoEImpl::release_inference() {
  w_gate_up_t = w_down_t = w_router_shared = torch::Tensor();
  expert_gate_up_t.clear();
  expert_down_t.clear();
  if (shared) shared->w_gate_up = torch::Tensor();
  if (dispatch == MoeDispatch::stacked) dispatch = MoeDispatch::grouped;
}

void MoEImpl::update_bias(double rate) {
  if (!e_score_correction_bias.defined() || !last_load.defined()) return;
  torch::NoGradGuard g;
  e_score_correction_bias.add_(torch::sign(last_load.mean() - last_load).to(e_score_correction_bias.device()) * rate);
}

}  // namespace distill::model
