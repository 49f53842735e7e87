// distill/trainer.h: the one training loop behind `distill train` (SFT on curated samples, distill/sft.h) and
// `distill pretrain` (from gold chain-of-thought, distill/pretrain.h). A run is setup (a fresh start, or a resume
// from the newest checkpoint of the same schedule), then step after step: the lr from the schedule, the recipe's
// forward and backward under the run's precision, one fused AdamW step (distill/optimizer.h), one host read of
// the step's numbers, evaluation every N steps, a checkpoint every N steps, and a signal that ends the run after
// the current step, checkpointed. A finished run saves the model and marks its folder finished, so a later
// --resume changes nothing. What differs between the two stages (data, loss, evaluation, extra checkpoint state)
// is a Recipe.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <torch/optim/adamw.h>
#include <utility>
#include <vector>
#include <torch/types.h>

#include "dataset/store.h"
#include "model/autocast.h"
#include "model/transformer.h"

namespace distill::train {

struct LoopOptions {
  std::string kind;           // "train" | "pretrain": the run row's kind and the prefix of messages
  std::string out;            // the output folder: checkpoint-N/ folders, then the final HF model
  std::string tokenizer_dir;  // its tokenizer files are saved beside every model written
  std::string config_toml;    // the run row's resolved config
  std::int64_t steps = 1, warmup = 0, eval_every = 0, save_every = 0, stop_after = 0;
  double lr = 1e-3, min_lr_ratio = 0.1, grad_clip = 1.0;
  bool resume = false;
  bool checkpoint_activations = false;  // also passed to the autocast scope, which must then survive recomputation
  model::Precision precision = model::Precision::fp32;
  // What the optimizer trains, by name (its moments are saved under these); empty: every parameter of the model.
  std::vector<std::pair<std::string, torch::Tensor>> params;
  // A checkpoint's (and the final) weights written into / read from a folder; empty: the whole model as an HF
  // directory (model.safetensors, config.json, the tokenizer). LoRA writes its adapter instead.
  std::function<void(const std::string&)> save_weights, load_weights;
};

// What the loop reports after each step.
struct TrainStep {
  std::int64_t step, steps;
  double loss, lr, tokens_per_s;
  double val_loss;  // < 0 when not measured at this step
};

// One optimizer step's forward and backward, as device sums the loop reads once: the loss is
// loss_sum / targets, the KD loss kd_sum / kd_targets (kd_sum undefined without KD).
struct StepSums {
  torch::Tensor loss_sum, kd_sum;  // 0-dim float64, on the device
  std::int64_t targets = 1, kd_targets = 1, tokens = 0;
};

// What a stage plugs into the loop.
class Recipe {
 public:
  virtual ~Recipe() = default;
  // What a resumed run must share with the run that made the checkpoint, else its curve is another one.
  virtual nlohmann::json schedule() const = 0;
  // Replays the data stream up to step `start` (0-based: the first step the resumed run takes).
  virtual void skip_to(std::int64_t start) = 0;
  // Forward and backward of step `step` (0-based); the loop zeroed the gradients and holds the autocast scope.
  virtual StepSums forward_backward(std::int64_t step, const torch::Device& device) = 0;
  // After the optimizer's update of step `step` (MoE router biases, the running mean of the weights).
  virtual void after_update(std::int64_t /*step*/) {}
  // The loss shown for step `step` given its measured loss (pretrain shows a moving average).
  virtual double shown_loss(std::int64_t /*step*/, double loss) { return loss; }
  // Evaluation after `done` steps (every eval_every, and the last): a validation loss, or < 0 for none.
  virtual double evaluate(std::int64_t /*done*/) { return -1; }
  // A checkpoint's extra files in `dir` and keys of trainer_state.json, and their reading back on resume.
  virtual void save_extra(const std::string& /*dir*/, nlohmann::json& /*state*/) {}
  virtual void load_extra(const std::string& /*dir*/, const nlohmann::json& /*state*/, std::int64_t /*step*/) {}
  // The last step is done; the final model is saved next.
  virtual void finish() {}
};

struct LoopResult {
  std::int64_t run_id = 0, first_step = 0, last_step = 0;
  double final_loss = 0, final_kd = -1, val_loss = -1, seconds = 0, tokens_per_s = 0;
  bool finished = false;          // reached `steps` (else stopped by stop_after or a signal, checkpointed)
  bool already_finished = false;  // --resume found the run finished: nothing was trained or written
  std::string interrupted_by;     // "SIGINT" / "SIGTERM" when a signal ended the run early
};

// Runs the schedule on `m` (on `device`, its parameters optimized by `opt`), with the store's run row and
// train_steps. `log` gets the loop's messages (resume, warnings); `on_step` every step. A fresh run into a folder
// that holds a model is refused (InputError: it would overwrite it); --resume of a finished run with the same
// schedule returns already_finished, having written nothing (another schedule is refused, as for a checkpoint).
LoopResult run_loop(dataset::Store& store, model::Transformer& m, torch::optim::AdamW& opt, Recipe& recipe,
                    const LoopOptions& o, const torch::Device& device,
                    const std::function<void(const TrainStep&)>& on_step,
                    const std::function<void(const std::string&)>& log);

}  // namespace distill::train
