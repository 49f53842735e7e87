// distill/chunked_ce.cpp: see chunked_ce.h. A custom autograd function: forward saves only the hidden
// states, the weight, the labels and one logsumexp per row.
#include "distill/chunked_ce.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "model/autocast.h"
#include "model/cpu_gemm.h"

#include "model/train_kernels.h"

namespace distill::train {

namespace {

constexpr std::int64_t kKeepLogitsBelow = std::int64_t(1) << 22;  // elements: 16 MB of fp32 logits

bool fused_applies(const torch::Tensor& h, const torch::Tensor& w) {
  return model::fused::applies(h) && model::fused::applies(w) && !at::autocast::is_autocast_enabled(at::kCPU);
}

struct ChunkedCE : public torch::autograd::Function<ChunkedCE> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& h, const torch::Tensor& w,
                               const torch::Tensor& labels, std::int64_t chunk) {
    const auto N = h.size(0), V = w.size(0);
    const auto C = (chunk <= 0 || chunk >= V) ? V : chunk;
    auto f32 = h.options().dtype(torch::kFloat32);
    auto m = torch::full({N}, -std::numeric_limits<float>::infinity(), f32);
    auto s = torch::zeros({N}, f32);
    auto target = torch::zeros({N}, f32);
    // CPU float32: one pass per slice row instead of a chain of LibTorch ops over the whole slice. Not under CPU
    // autocast, whose matmuls would hand the fused pass bf16 slices.
    const bool fused = fused_applies(h, w);
    const auto lab = fused ? labels.contiguous() : labels.clamp_min(0);  // fused: as given; else a safe index
    for (std::int64_t c0 = 0; c0 < V; c0 += C) {
      const auto n = std::min(C, V - c0);
      auto logits = model::gemm::mm(h, w.narrow(0, c0, n).t()).to(torch::kFloat32);  // [N, n]
      if (fused) {
        // One slice that is small (a small vocabulary: the tiny student's logits are 4 MB): backward takes these
        // logits instead of forming them again, a sixteenth of the tiny student's matmul work. Large ones are never
        // kept: holding them through the whole backward is what slicing avoids.
        if (C == V && N * V <= kKeepLogitsBelow) ctx->saved_data["logits"] = logits;
        model::fused::ce_slice_forward(logits, lab, c0, m, s, target);
      } else {
        auto new_m = torch::maximum(m, std::get<0>(logits.max(1)));
        s = s * (m - new_m).exp() + (logits - new_m.unsqueeze(1)).exp().sum(1);
        m = new_m;
        auto in = (lab >= c0) & (lab < c0 + n);
        auto col = (lab - c0).clamp(0, n - 1).unsqueeze(1);
        target = torch::where(in, logits.gather(1, col).squeeze(1), target);
      }
    }
    auto lse = m + s.log();
    ctx->save_for_backward({h, w, labels, lse});
    ctx->saved_data["autocast"] = at::autocast::is_autocast_enabled(h.device().type());
    ctx->saved_data["autocast_dtype"] = at::autocast::get_autocast_dtype(h.device().type());
    ctx->saved_data["chunk"] = C;
    return ((lse - target) * labels.ne(-100).to(torch::kFloat32)).sum();
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    auto h = saved[0], w = saved[1], labels = saved[2], lse = saved[3];
    const auto C = ctx->saved_data["chunk"].toInt();
    const auto N = h.size(0), V = w.size(0);
    model::AutocastAs as_forward(h.device().type(), ctx->saved_data["autocast"].toBool(),
                                 ctx->saved_data["autocast_dtype"].toScalarType());
    auto scale = (labels.ne(-100).to(torch::kFloat32) * grad_out[0].to(torch::kFloat32)).unsqueeze(1);  // [N,1]
    auto dh = torch::zeros({N, h.size(1)}, h.options().dtype(torch::kFloat32));
    auto dw = torch::zeros_like(w, w.options().dtype(torch::kFloat32));
    if (fused_applies(h, w)) {  // CPU float32: see forward
      auto scale_c = scale.squeeze(1).contiguous(), labels_c = labels.contiguous();
      // The kept logits become the gradient in place, so they serve one backward; another (retain_graph) forms
      // them again.
      torch::Tensor kept;
      if (ctx->saved_data.count("logits")) kept = ctx->saved_data["logits"].toTensor(), ctx->saved_data.erase("logits");
      for (std::int64_t c0 = 0; c0 < V; c0 += C) {
        const auto n = std::min(C, V - c0);
        auto wc = w.narrow(0, c0, n);
        auto p = kept.defined() ? kept : model::gemm::mm(h, wc.t());
        model::fused::ce_slice_backward(p, labels_c, c0, lse, scale_c);
        model::gemm::mm_into(p, wc, dh, true);
        model::gemm::mm_into(p.t(), h, dw.narrow(0, c0, n), true);
      }
      return {dh, dw, torch::Tensor(), torch::Tensor()};
    }
    auto safe = labels.clamp_min(0);
    for (std::int64_t c0 = 0; c0 < V; c0 += C) {
      const auto n = std::min(C, V - c0);
      auto wc = w.narrow(0, c0, n);
      auto p = (torch::matmul(h, wc.t()).to(torch::kFloat32) - lse.unsqueeze(1)).exp();  // softmax slice [N, n]
      auto in = ((safe >= c0) & (safe < c0 + n)).to(torch::kFloat32).unsqueeze(1);
      auto col = (safe - c0).clamp(0, n - 1).unsqueeze(1);
      p.scatter_add_(1, col, -in);  // minus the one-hot of the label where it falls in this slice
      p.mul_(scale);
      dh.add_(torch::matmul(p, wc.to(torch::kFloat32)));
      dw.narrow(0, c0, n).add_(torch::matmul(p.t(), h.to(torch::kFloat32)));
    }
    return {dh.to(h.scalar_type()), dw.to(w.scalar_type()), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor chunked_cross_entropy_sum(const torch::Tensor& hidden, const torch::Tensor& weight,
                                        const torch::Tensor& labels, std::int64_t chunk) {
  TORCH_CHECK(hidden.dim() == 2 && weight.dim() == 2 && labels.dim() == 1 && hidden.size(0) == labels.size(0) &&
                  hidden.size(1) == weight.size(1),
              "chunked_cross_entropy_sum: hidden [N, D], weight [V, D], labels [N]");
  // A label is a vocabulary id or -100 (ignored). Checked where it costs no device sync: the fused CPU passes
  // skip a label outside every slice, while LibTorch's gather would read a clamped one.
  if (labels.device().is_cpu())
    TORCH_CHECK(((labels == -100) | ((labels >= 0) & (labels < weight.size(0)))).all().item<bool>(),
                "chunked_cross_entropy_sum: labels must be -100 or in [0, ", weight.size(0), ")");
  return ChunkedCE::apply(hidden, weight, labels, chunk);
}

}  // namespace distill::train
