// distill/sft.h: `distill train`: supervised fine-tuning of a student on curated teacher samples, the R1
// distillation recipe, as a recipe of the one training loop (distill/trainer.h). Examples are the R1 prompt plus
// the teacher's completion; the loss is on completion tokens only (plus logit KD on the stored teacher top-k);
// examples are packed into fixed-length rows with documents kept apart; gradient accumulation; cross-entropy over
// vocabulary slices; tail averaging of the weights. Schedule, checkpoints and --resume are the loop's.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataset/curation.h"
#include "dataset/store.h"
#include "distill/packing.h"
#include "distill/trainer.h"
#include "model/tokenizer.h"
#include "student/lora.h"
#include "teacher/prompt_format.h"

namespace distill::train {

struct SftConfig {
  std::string out;            // output directory: final HF model, checkpoint-N/ subdirectories
  std::string student = "tiny";  // a preset name (student/presets.h) or an HF directory to start from
  // default: the student directory's own tokenizer when it has one (the store holds text, so samples from any
  // teacher re-tokenize), else the tokenizer of the teacher that generated the samples
  std::string tokenizer_dir;
  std::string prompt_format = "auto";  // auto (the tokenizer directory's chat template if any, else r1) | r1 | chat_template
  std::string split;          // "" = samples of every split
  std::vector<dataset::Status> statuses = {dataset::Status::kept};
  std::int64_t steps = 200;
  std::int64_t max_seq_len = 256;   // packed row length
  std::int64_t batch_tokens = 4096; // tokens per micro-batch (rows = batch_tokens / max_seq_len)
  std::int64_t grad_accum = 1;      // micro-batches per optimizer step
  std::int64_t warmup = 20;
  double lr = 1e-3, min_lr_ratio = 0.1, weight_decay = 0.1, grad_clip = 1.0;
  double val_fraction = 0.05;       // problems held out (by content) for validation loss
  std::int64_t eval_every = 50;     // validation loss every N steps (and at the end)
  std::int64_t save_every = 0;      // checkpoint every N steps (0: only the final model)
  std::int64_t stop_after = 0;      // end this invocation after N steps of the schedule (checkpointed)
  std::int64_t vocab_chunk = 0;     // cross-entropy over slices of this many vocabulary rows (0: all at once)
  bool checkpoint_activations = false;  // recompute each layer in backward: less memory, one more forward
  double position_stretch = 0;      // randomized prompt positions up to this rate (packing.h, stretched_positions)
  std::int64_t average_last = 0;    // the saved model is the mean of the weights after each of the last N steps
                                    // (tail averaging; 0: the last step's weights)
  std::string target = "cot";       // cot: the teacher's whole completion; answer: only its final answer (the
                                    // answer-only baseline: an empty think block, then the boxed answer)
  std::string kd;                   // "" | fkl | rkl | jsd: logit distillation from the stored teacher top-k
  double kd_weight = 0.5;           // loss = CE + kd_weight * KD (both means over their positions)
  // LoRA (rank > 0): adapters on the student's projections train, its weights stay frozen; checkpoints and the
  // final `out` hold the adapter in the PEFT format (student/lora.h), whose base is --student (a directory).
  student::LoraConfig lora;
  bool resume = false;              // continue from the newest checkpoint in `out`
  bool force = false;               // train even when the memory plan says the run cannot fit (distill/memory_plan.h)
  std::uint64_t seed = 0;
  std::string device = "cpu";
  std::string precision = "auto";   // auto (bf16 autocast on CUDA, fp32 on the CPU) | bf16 (CUDA) | fp32
  int threads = 0;
};

struct SftReport {
  std::int64_t run_id = 0, n_params = 0, train_examples = 0, val_examples = 0, first_step = 0, last_step = 0;
  std::int64_t kd_examples = 0;   // training examples that carry aligned teacher top-k
  std::int64_t truncated_examples = 0;  // training examples longer than max_seq_len, cut there (logged)
  double final_kd = -1;           // KD loss (mean per position) of the last step, when --kd
  double final_loss = 0, val_loss = -1, seconds = 0, tokens_per_s = 0;
  std::int64_t averaged_steps = 0;  // steps whose weights the saved model averages (--average-last; 0: none)
  // Memory: the plan's peak, and on the CPU the measured one (peak RSS minus the RSS before the model loaded)
  std::int64_t planned_peak_bytes = 0, rss_before_model_bytes = 0, peak_rss_bytes = 0;
  bool finished = false;  // reached `steps` (else stopped by stop_after or a signal, checkpointed)
  bool already_finished = false;  // --resume found the run finished in `out`: nothing was trained or written
  std::string interrupted_by;  // "SIGINT" / "SIGTERM" when a signal ended the run early (common/interrupt.h)
};

// InputError naming --position-stretch unless 0 <= P <= 1 (train checks it, and the demo before it starts).
void check_position_stretch(double p);

// One training example of a curated sample: BOS + R1 prompt (ending in "<think>\n"), then the completion after
// its "<think>\n", then EOS when the teacher stopped by itself (finish_reason "eos", or "stop": generate cut the
// stop string from the text, and the student learns to end there); a sample cut at max_tokens ("length") gets
// none. target "answer" keeps only "</think>" and what follows it (nullopt without one).
std::optional<Example> sft_example(const model::Tokenizer& tok, const std::string& prompt, std::string_view completion,
                                   const std::string& finish_reason, const std::string& target);
// The same in the student's prompt format: its prompt, then the completion after the format's response prefix.
std::optional<Example> sft_example(const teacher::PromptFormat& fmt, const model::Tokenizer& tok,
                                   const std::string& prompt, std::string_view completion,
                                   const std::string& finish_reason, const std::string& target);

SftReport run_sft(dataset::Store& store, const SftConfig& cfg, const std::string& config_toml,
                  const std::function<void(const TrainStep&)>& on_step = {},
                  const std::function<void(const std::string&)>& log = {});

}  // namespace distill::train
