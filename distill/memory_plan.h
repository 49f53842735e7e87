// distill/memory_plan.h: what a training run will hold in memory, estimated before launch from the model's
// config and the run's options (`distill plan`, and `train` before it loads anything). The parts:
//   weights      every parameter, fp32 (the trainer's master copy; bf16 autocast adds a bf16 cast of each matmul
//                weight while a step runs, counted here)
//   gradients    fp32, of what trains (all parameters, or the LoRA adapters)
//   optimizer    AdamW's two fp32 moments of what trains
//   activations  what forward keeps for backward, layer by layer, for one micro-batch of batch-tokens tokens
//                (with --checkpoint-activations: each layer's input, plus one layer recomputed). `train` on the
//                CPU, whose batches are ragged, passes the most real tokens a micro-batch of its stream holds
//   logits       the output layer and the loss: [tokens, vocab] at once, or [tokens, vocab-chunk] slices
//   workspace    the process's own and allocator slack: 150 MiB (LibTorch code paged in by the first step, oneDNN's
//                kernels, thread arenas: the 0.4M-parameter tiny preset peaks about 150 MiB above its tensors on
//                the CPU) + 5% of the rest
// The peak is weights + optimizer + the larger of activations and gradients, + what backward adds at its start (the
// logits' gradient, or the last layer's widest gradients, while every activation is still alive); with gradient
// accumulation the gradients are held through later micro-batches, so their sum; --average-last adds a mean of what
// trains, counted with the weights.
// Checked against the 16 bytes/parameter rule and LoRA's own count (tests/test_train.cpp); against measured peak
// RSS on the CPU by hand (`train --json` reports both; figures in the README); on CUDA, not yet measured.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace distill::train {

struct PlanInput {
  model::ModelConfig model;
  std::int64_t seq_len = 256, batch_tokens = 4096, vocab_chunk = 0;
  std::int64_t lora_rank = 0;
  std::vector<std::string> lora_targets;  // empty: every projection of the layers
  bool lora_dropout = false;
  bool checkpoint_activations = false;
  bool bf16_autocast = false;  // CUDA's default training precision
  std::int64_t grad_accum = 1;  // > 1: the gradients are held while the next micro-batch's forward runs
  bool average_last = false;    // --average-last: a running mean of what trains (4 bytes each)
};

struct MemoryPlan {
  std::int64_t params = 0, trainable = 0;
  std::int64_t weights = 0, gradients = 0, optimizer = 0;
  std::int64_t activations = 0, activations_checkpointed = 0;  // the run's own choice is the first with checkpointing on
  std::int64_t logits = 0, workspace = 0;
  std::int64_t peak = 0;  // bytes, with the run's choices
};

MemoryPlan plan_memory(const PlanInput& in);

// The projections of layer `l` adapters may sit on: (name, in, out), as student/lora.h names them. A routed
// expert's stands for all `copies` of it (one per expert), of which each token passes `per_token`.
struct Projection {
  std::string name;
  std::int64_t in, out;
  std::int64_t copies = 1, per_token = 1;
};
std::vector<Projection> layer_projections(const model::ModelConfig& c, std::int64_t l);

// Bytes as a person reads them: "1.23 GiB", "512 MiB".
std::string bytes_text(std::int64_t b);

}  // namespace distill::train
