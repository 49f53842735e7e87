// distill/optimizer.h: the student's optimizer, built one way for the trainer and its reference test: AdamW
// (decoupled weight decay, betas 0.9/0.95, eps 1e-8) with two groups, decay on matrices and none on norms,
// biases and other vectors; one step = global-norm clip, then the update at the schedule's lr
// (distill/schedule.h). Checked against torch.optim.AdamW by tests/reference/gen_adamw.py.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace distill::train {

std::unique_ptr<torch::optim::AdamW> make_adamw(const torch::nn::Module& m, double lr, double weight_decay);
// The same over named tensors (the rule reads the names): LoRA trains only its adapters.
std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<std::pair<std::string, torch::Tensor>>& named,
                                                double lr, double weight_decay);

// Scales `grads` in place so that their global L2 norm is at most `clip` (torch.nn.utils.clip_grad_norm_).
// Returns that norm before scaling (a 0-dim tensor on the gradients' device; undefined when `grads` is empty).
torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& grads, double clip);

// Sets every group's lr, clips the gradients' global norm to `clip` (0: no clip), steps (one fused AdamW kernel
// per group; the moments live in `opt`'s state, as LibTorch's own step keeps them). Returns the norm before
// clipping, on the device, for the caller to check with its next host read (undefined without clipping).
torch::Tensor adamw_step(torch::optim::AdamW& opt, double lr, double clip);

}  // namespace distill::train
