// distill/optimizer.cpp: see optimizer.h.
#include "distill/optimizer.h"

#include <ATen/ops/_foreach_mul.h>
#include <ATen/ops/_foreach_norm.h>
#include <ATen/ops/_fused_adamw.h>
#include <torch/torch.h>

#include <map>

namespace distill::train {

std::unique_ptr<torch::optim::AdamW> make_adamw(const torch::nn::Module& m, double lr, double weight_decay) {
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& p : m.named_parameters()) named.emplace_back(p.key(), p.value());
  return make_adamw(named, lr, weight_decay);
}

std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<std::pair<std::string, torch::Tensor>>& named,
                                                double lr, double weight_decay) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& [name, value] : named) {
    const bool nd = value.dim() < 2 || name.find("norm") != std::string::npos;
    (nd ? no_decay : decay).push_back(value);
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(lr).betas({0.9, 0.95}).eps(1e-8).weight_decay(weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(lr).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.0)));
  return std::make_unique<torch::optim::AdamW>(std::move(groups));
}

torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& grads, double clip) {
  // torch.nn.utils.clip_grad_norm_'s formula, kept on the device: coef = min(1, clip / (norm + 1e-6)), applied
  // always (a multiply by 1 when under), so no host sync waits for the norm.
  if (grads.empty()) return {};
  auto total = torch::stack(at::_foreach_norm(grads, 2)).norm();
  at::_foreach_mul_(grads, (clip / (total + 1e-6)).clamp_max(1.0));
  return total;
}

torch::Tensor adamw_step(torch::optim::AdamW& opt, double lr, double clip) {
  std::vector<torch::Tensor> all_grads;
  for (auto& g : opt.param_groups())
    for (auto& p : g.params())
      if (p.grad().defined()) all_grads.push_back(p.grad());
  torch::Tensor norm;
  if (clip > 0) norm = clip_grad_norm(all_grads, clip);
  // One fused kernel per group (ATen's _fused_adamw_, what torch.optim.AdamW(fused=True) calls) in place of
  // LibTorch's ten ops per parameter: on the CPU a 20M model's step takes 9 ms instead of 43 (measured), on a GPU
  // one launch instead of thousands. The moments stay in the AdamW object's state, where the checkpoints read
  // and write them; the step count is per parameter, as there.
  for (auto& g : opt.param_groups()) {
    auto& o = static_cast<torch::optim::AdamWOptions&>(g.options());
    o.lr(lr);
    std::vector<torch::Tensor> ps, grads, avgs, sqs, steps;
    std::map<std::int64_t, torch::Tensor> step_tensor;  // one per distinct step count, on the parameters' device
    for (auto& p : g.params()) {
      if (!p.grad().defined()) continue;
      auto& slot = opt.state()[p.unsafeGetTensorImpl()];
      if (!slot) {
        auto st = std::make_unique<torch::optim::AdamWParamState>();
        st->step(0);
        st->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        st->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(st);
      }
      auto& st = static_cast<torch::optim::AdamWParamState&>(*slot);
      st.step(st.step() + 1);
      auto& t = step_tensor[st.step()];
      if (!t.defined() || t.device() != p.device())
        t = torch::scalar_tensor(double(st.step()), torch::dtype(torch::kFloat32).device(p.device()));
      ps.push_back(p), grads.push_back(p.grad()), avgs.push_back(st.exp_avg()), sqs.push_back(st.exp_avg_sq());
      steps.push_back(t);
    }
    if (ps.empty()) continue;
    TORCH_CHECK(!o.amsgrad(), "adamw_step: amsgrad is not supported (make_adamw never sets it)");
    const auto [b1, b2] = o.betas();
    at::_fused_adamw_(ps, grads, avgs, sqs, {}, steps, lr, b1, b2, o.weight_decay(), o.eps(), /*amsgrad=*/false,
                      /*maximize=*/false);
  }
  return norm;
}

}  // namespace distill::train
