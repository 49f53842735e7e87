// distill/train_state.h: what a trainer's checkpoint holds besides the model, for `distill train` and `distill
// pretrain` alike: the AdamW moments with each parameter's step count (optimizer.safetensors), the trainer
// state (trainer_state.json: step, tokens, and the schedule a resume must share), the newest complete
// checkpoint-N/ of an output directory, and the write of one as a whole or not at all.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>
#include <utility>
#include <vector>

namespace distill::train {

// Per parameter (HF name): NAME.exp_avg, NAME.exp_avg_sq and NAME.step (an MoE expert no token reached in a
// step took no step, so its bias correction lags the run's).
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;
NamedTensors named_parameters(const torch::nn::Module& m);

// The same for any named tensors being optimized (LoRA adapters: student/lora.h's names).
void save_optimizer(torch::optim::AdamW& opt, const NamedTensors& params, const std::string& path);
void load_optimizer(torch::optim::AdamW& opt, const NamedTensors& params, const std::string& path, std::int64_t step);

void save_optimizer(torch::optim::AdamW& opt, const torch::nn::Module& m, const std::string& path);

// The inverse, onto `m`'s parameters and device. Moments come in pairs, in their parameter's shape; a parameter
// without any (no gradient reached it yet) starts fresh, as it would have in the run that saved them; a file
// without step counts gives every parameter `step`. Tensors that match no parameter, or no moments at all, are
// refused (InputError): that is another model's file.
void load_optimizer(torch::optim::AdamW& opt, const torch::nn::Module& m, const std::string& path, std::int64_t step);

// N of the newest out/checkpoint-N/ holding a trainer_state.json (not a .tmp or .old one); 0 when none.
std::int64_t newest_checkpoint(const std::string& out);

// For a run that starts afresh into `out` (no --resume): InputError when `out` already holds a checkpoint-N/, whose
// steps a later --resume would take for this run's (HF's Trainer refuses a non-empty output_dir the same way).
void refuse_earlier_checkpoints(const std::string& out);

// Writes out/checkpoint-STEP/ complete or not at all: `fill` writes its files into a .tmp folder, which is synced
// and then takes the name (swapped with any older copy in one renameat2 RENAME_EXCHANGE where the filesystem has
// it, else after setting the old one aside), and `out` is synced so the rename survives a power cut.
void write_checkpoint(const std::string& out, std::int64_t step, const std::function<void(const std::string&)>& fill);

// dir/trainer_state.json, checked: an object with integer "step" (= `step`, the folder's) and "tokens", made with
// every key of `schedule` equal (a schedule key it lacks is an older checkpoint, refused, except "precision",
// "train_examples_sha256" and a zero "position_stretch" or "average_last", which older checkpoints did not
// record). Each mismatch is an InputError naming the key and both values.
nlohmann::json read_trainer_state(const std::string& dir, std::int64_t step, const nlohmann::json& schedule);

}  // namespace distill::train
