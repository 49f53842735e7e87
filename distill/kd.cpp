// distill/kd.cpp: see kd.h.
#include "distill/kd.h"

#include <torch/torch.h>

#include "model/autocast.h"
#include "model/cpu_gemm.h"

#include <cmath>
#include <limits>

#include "common/errors.h"

namespace distill::train {

KdKind parse_kd_kind(const std::string& name) {
  if (name == "fkl") return KdKind::fkl;
  if (name == "rkl") return KdKind::rkl;
  if (name == "jsd") return KdKind::jsd;
  throw InputError("--kd '" + name + "' is not known (expected fkl, rkl or jsd)");
}

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// The divergence over the K + 1 outcomes, from the student's log-probabilities lq [N, K+1] (top-k, then the
// tail) and the teacher's top-k logprobs.
torch::Tensor kd_from_logq(const torch::Tensor& lq_raw, const torch::Tensor& top_logp, KdKind kind) {
  const auto K = top_logp.size(-1);
  auto lq = torch::cat({lq_raw.narrow(-1, 0, K), lq_raw.narrow(-1, K, 1).clamp_min(std::log(1e-9))}, -1);
  auto t = top_logp.to(lq.scalar_type());
  // 1 - (top-k mass) as -expm1(logsumexp): the plain subtraction cancels when the top-k holds nearly everything
  auto p_tail = (-t.logsumexp(-1, true).expm1()).clamp_min(1e-9).log();
  auto lp = torch::cat({t, p_tail}, -1);
  auto p = lp.exp(), q = lq.exp();
  switch (kind) {
    case KdKind::fkl: return (p * (lp - lq)).sum();
    case KdKind::rkl: return (q * (lq - lp)).sum();
    default: {
      // log m from the logs: (p + q) / 2 underflows to 0 when both logprobs lie below ~-104 (fp32), and its log
      // would then make 0 * inf = NaN in the loss and the gradient
      auto lm = torch::logaddexp(lp, lq) - std::log(2.0);
      return (0.5 * (p * (lp - lm)) + 0.5 * (q * (lq - lm))).sum();
    }
  }
}

// Running logsumexp over slices, safe for rows whose every entry so far is -inf (a tail slice that holds only
// top-k tokens): (m, s) with lse = m + log s, and m = -inf while nothing finite was seen.
void lse_update(torch::Tensor& m, torch::Tensor& s, const torch::Tensor& x) {
  auto new_m = torch::maximum(m, std::get<0>(x.max(1)));
  auto shift = torch::where(torch::isinf(new_m), torch::zeros_like(new_m), new_m);
  s = s * (m - shift).exp() + (x - shift.unsqueeze(1)).exp().sum(1);
  m = new_m;
}

// Per slice [c0, c0 + n): which top-k ids fall in it, their columns there, and the [N, n] mask of those columns.
struct SliceIds {
  torch::Tensor in, col, mask;
  SliceIds(const torch::Tensor& ids, std::int64_t c0, std::int64_t n) {
    in = (ids >= c0) & (ids < c0 + n);
    col = (ids - c0).clamp(0, n - 1);
    mask = torch::zeros({ids.size(0), n}, ids.options().dtype(torch::kFloat32))
               .scatter_add_(1, col, in.to(torch::kFloat32))
               .gt(0);
  }
};

// lq [N, K+1] = log softmax(h W^T) at the top-k ids, then the log of the mass of every other token, formed over
// vocabulary slices: forward keeps two logsumexps per row (all tokens, tail tokens); backward recomputes each
// slice. d lq_j / d logit_v = [v = id_j] - q_v for a top-k outcome, [v not top] exp(logit_v - logT) - q_v for the
// tail.
struct ChunkedKdLogq : public torch::autograd::Function<ChunkedKdLogq> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& h, const torch::Tensor& w,
                               const torch::Tensor& ids, std::int64_t chunk) {
    const auto N = h.size(0), V = w.size(0), K = ids.size(1);
    const auto C = (chunk <= 0 || chunk >= V) ? V : chunk;
    auto f32 = h.options().dtype(torch::kFloat32);
    auto mz = torch::full({N}, -kInf, f32), sz = torch::zeros({N}, f32);
    auto mt = mz.clone(), st = sz.clone();
    auto top = torch::zeros({N, K}, f32);
    for (std::int64_t c0 = 0; c0 < V; c0 += C) {
      const auto n = std::min(C, V - c0);
      auto logits = model::gemm::mm(h, w.narrow(0, c0, n).t()).to(torch::kFloat32);  // [N, n]
      SliceIds sl(ids, c0, n);
      lse_update(mz, sz, logits);
      lse_update(mt, st, logits.masked_fill(sl.mask, -kInf));
      top = torch::where(sl.in, logits.gather(1, sl.col), top);
    }
    // Each logsumexp stays split as max + log(sum): with logits of ~200 their sum would round at ~1e-5, and a
    // near-certain token's log q = (logit - max) - log(sum) would carry that error.
    auto lz = sz.log(), lt = st.log();                            // lt = -inf for an empty tail (V = K)
    auto mt_safe = torch::where(torch::isinf(mt), torch::zeros_like(mt), mt);
    auto lt_safe = torch::where(torch::isinf(mt), torch::full_like(lt, kInf), lt);  // exp(x - mt - lt) = 0 there
    ctx->save_for_backward({h, w, ids, mz, lz, mt_safe, lt_safe});
    ctx->saved_data["autocast"] = at::autocast::is_autocast_enabled(h.device().type());
    ctx->saved_data["autocast_dtype"] = at::autocast::get_autocast_dtype(h.device().type());
    ctx->saved_data["chunk"] = C;
    return torch::cat({(top - mz.unsqueeze(1)) - lz.unsqueeze(1), ((mt - mz) + (lt - lz)).unsqueeze(1)}, 1);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    auto h = saved[0], w = saved[1], ids = saved[2];
    auto mz = saved[3].unsqueeze(1), lz = saved[4].unsqueeze(1), mt = saved[5].unsqueeze(1), lt = saved[6].unsqueeze(1);
    const auto C = ctx->saved_data["chunk"].toInt();
    const auto V = w.size(0), K = ids.size(1);
    model::AutocastAs as_forward(h.device().type(), ctx->saved_data["autocast"].toBool(),
                                 ctx->saved_data["autocast_dtype"].toScalarType());
    auto g = grad_out[0].to(torch::kFloat32);
    auto g_top = g.narrow(1, 0, K), g_tail = g.narrow(1, K, 1), g_sum = g.sum(1, true);
    auto dh = torch::zeros({h.size(0), h.size(1)}, h.options().dtype(torch::kFloat32));
    auto dw = torch::zeros_like(w, w.options().dtype(torch::kFloat32));
    const auto h32 = h.to(torch::kFloat32);  // the weight gradient's operand, once for every chunk
    for (std::int64_t c0 = 0; c0 < V; c0 += C) {
      const auto n = std::min(C, V - c0);
      auto wc = w.narrow(0, c0, n);
      auto logits = model::gemm::mm(h, wc.t()).to(torch::kFloat32);
      SliceIds sl(ids, c0, n);
      auto d = ((logits - mt) - lt).exp().masked_fill(sl.mask, 0) * g_tail - ((logits - mz) - lz).exp() * g_sum;
      d.scatter_add_(1, sl.col, g_top * sl.in.to(torch::kFloat32));
      model::gemm::mm_into(d, wc.to(torch::kFloat32), dh, true);  // accumulated in place: no product tensor to add
      model::gemm::mm_into(d.t(), h32, dw.narrow(0, c0, n), true);
    }
    return {dh.to(h.scalar_type()), dw.to(w.scalar_type()), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor kd_loss_sum(const torch::Tensor& student_logits, const torch::Tensor& top_ids, const torch::Tensor& top_logp,
                          KdKind kind) {
  // float32 at least (bf16 logits under autocast are upcast); float64 stays float64 (the tests' reference)
  auto logq = torch::log_softmax(student_logits.to(at::promote_types(student_logits.scalar_type(), torch::kFloat32)), -1);
  auto q_top = logq.gather(-1, top_ids);
  auto q_tail = logq.scatter(-1, top_ids, -kInf).logsumexp(-1, true);
  return kd_from_logq(torch::cat({q_top, q_tail}, -1), top_logp, kind);
}

torch::Tensor chunked_kd_loss_sum(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& top_ids,
                                  const torch::Tensor& top_logp, KdKind kind, std::int64_t chunk) {
  TORCH_CHECK(hidden.dim() == 2 && weight.dim() == 2 && top_ids.dim() == 2 && top_ids.sizes() == top_logp.sizes() &&
                  hidden.size(0) == top_ids.size(0) && hidden.size(1) == weight.size(1),
              "chunked_kd_loss_sum: hidden [N, D], weight [V, D], top_ids and top_logp [N, K]");
  return kd_from_logq(ChunkedKdLogq::apply(hidden, weight, top_ids, chunk), top_logp, kind);
}

}  // namespace distill::train
