// distill/optimizer.cpp: see optimizer.h.
#include "distill/optimizer.h"

#include <torch/torch.h>

namespace distill::train {

std::unique_ptr<torch::optim::AdamW> make_adamw(const torch::nn::Module& m, double lr, double weight_decay) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : m.named_parameters()) {
    const bool nd = p.value().dim() < 2 || p.key().find("norm") != std::string::npos;
    (nd ? no_decay : decay).push_back(p.value());
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(lr).betas({0.9, 0.95}).eps(1e-8).weight_decay(weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(lr).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.0)));
  return std::make_unique<torch::optim::AdamW>(std::move(groups));
}

void adamw_step(torch::optim::AdamW& opt, const torch::nn::Module& m, double lr, double clip) {
  for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
  if (clip > 0) torch::nn::utils::clip_grad_norm_(m.parameters(), clip);
  opt.step();
}

}  // namespace distill::train
