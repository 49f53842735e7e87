// distill/pretrain.h: `pretrain`: train a model from scratch on the store's gold chain-of-thought (the R1
// format: prompt, then "<think>" steps "</think>" boxed answer) and write it as an HF directory with its
// tokenizer; the shipped demo teacher is made this way. A recipe of the one training loop (distill/trainer.h):
// padded batches of a per-epoch shuffle, the loss on response tokens (plus the Switch load-balancing loss), the
// MoE routers' bias update after each step, and greedy held-out accuracy as its evaluation.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "dataset/store.h"
#include "distill/trainer.h"
#include "model/config.h"

namespace distill::train {

struct PretrainConfig {
  std::string out;                 // output HF directory
  std::string tokenizer_dir;       // holds tokenizer.model (vocab_size comes from it)
  std::string split = "train";
  std::string eval_split = "eval";
  model::ModelConfig model;        // architecture (vocab_size is overwritten by the tokenizer's)
  std::int64_t steps = 1000;
  std::int64_t batch_size = 32;
  double lr = 1e-3;
  double min_lr_ratio = 0.1;
  std::int64_t warmup = 100;
  double weight_decay = 0.1;
  double grad_clip = 1.0;
  double aux_coef = 0.0;           // Switch load-balancing loss weight
  double bias_update_rate = 1e-4;  // DeepSeek-V3 aux-loss-free balancing (sigmoid routing); 1e-3 stalled learning here
  std::int64_t eval_every = 0;     // greedy accuracy on eval_n held-out problems every N steps (0: only at the end)
  std::int64_t eval_n = 200;
  std::uint64_t seed = 0;
  std::string device = "cpu";
  std::string precision = "auto";  // auto (bf16 autocast on CUDA, fp32 on the CPU) | bf16 (CUDA) | fp32
  int threads = 0;                 // intra-op threads (0: LibTorch default)
  std::int64_t save_every = 0;     // checkpoint-N/ (model, optimizer, trainer state) every N steps (0: none)
  std::int64_t stop_after = 0;     // end this invocation after N steps, checkpointed (0: run to `steps`)
  bool resume = false;             // continue from the newest checkpoint in `out`: the curve of an uninterrupted run
};

struct PretrainReport {
  double final_loss = 0, seconds = 0, tokens_per_s = 0;
  std::int64_t n_params = 0, n_active_params = 0;
  std::map<int, std::pair<int, int>> eval_by_difficulty;  // difficulty -> (correct, total), greedy; when finished
  std::int64_t first_step = 1, last_step = 0;
  bool finished = false;  // reached `steps` (else stopped by stop_after or a signal, with a checkpoint)
  bool already_finished = false;  // --resume found the run finished in `out`: nothing was trained or written
  std::string interrupted_by;  // "SIGINT" / "SIGTERM" when a signal ended the run early (common/interrupt.h)
};

PretrainReport run_pretrain(dataset::Store& store, const PretrainConfig& cfg, const std::string& config_toml,
                            const std::function<void(const TrainStep&)>& on_step = {},
                            const std::function<void(const std::string&)>& log = {});

}  // namespace distill::train
