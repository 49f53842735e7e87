// distill/batch.h: packed rows -> one training micro-batch on a device, and its loss sums (cross-entropy on the
// completion tokens, optionally KD on those with teacher top-k). Used by the SFT trainer (distill/sft.cpp);
// tests check that the same documents give the same loss however they are packed.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "distill/kd.h"
#include "distill/packing.h"
#include "model/transformer.h"

namespace distill::train {

// Shapes: R rows of W tokens, n targets (labels that are not -100), n_kd of them with teacher top-k (k each).
// Padded, each packed row is a row, cut to the longest (rounded up to 8); ragged, runs of packed rows go back to
// back, one run a row, padded at its end to the longest run (rounded up to kRaggedRound).
struct Batch {
  torch::Tensor ids, positions, segments;          // [R, W] int64 (labels live on as the targets below)
  torch::Tensor target_rows, target_labels;        // [n]: flat hidden rows (r*W + j-1) predicting label j; label j
  bool one_document_per_row = false;  // every row one document from position 0: the causal mask is its mask
  torch::Tensor kd_rows, kd_ids, kd_logp;          // [n_kd], [n_kd, k], [n_kd, k]
  std::int64_t targets = 0, tokens = 0, kd_targets = 0;
};

// `ragged_rows` > 0: that many ragged rows (at most one per packed row), their padding dropped; each document
// attends only to itself, so the sums are the padded batch's (up to rounding). For one long example per row and a
// short one beside it (the demo: 80-110 of 128) that saves the padding's compute. It needs attention that skips
// other documents' keys, not a dense mask over the whole row: ragged_rows_for says how many rows, or 0.
inline constexpr std::int64_t kRaggedRound = 32;  // fewer distinct matmul shapes for the primitive cache
// How to_batch lays `rows` out: the rows opening each batch row (then rows.size()), and the batch's width. Its
// tensors are [first.size() - 1, width]: what the memory plan counts (distill/sft.cpp).
struct BatchLayout {
  std::vector<std::size_t> first;
  std::int64_t width = 1;
};
BatchLayout batch_layout(const std::vector<Row>& rows, std::int64_t ragged_rows);

Batch to_batch(const std::vector<Row>& rows, const torch::Device& dev, std::int64_t ragged_rows = 0);
// 0 (padded) unless m's attention on dev reads only each document's keys (packed_attention_is_per_document); then
// enough rows that every thread has a (row, kv head) attention task.
std::int64_t ragged_rows_for(model::Transformer& m, const torch::Device& dev);
// The same for a model of config `c` with fp32 weights, before it exists (the memory plan).
std::int64_t ragged_rows_for(const model::ModelConfig& c, const torch::Device& dev);

// Sums over the batch: next-token cross-entropy over its targets, and (with a KD kind) the KD loss over the
// targets that have teacher top-k (undefined without).
// `checkpoint`: recompute each layer in backward instead of keeping its activations (ForwardInput).
std::pair<torch::Tensor, torch::Tensor> batch_loss_sums(model::Transformer& m, const Batch& b, std::int64_t vocab_chunk,
                                                        const std::optional<KdKind>& kd, bool checkpoint = false);
torch::Tensor batch_loss_sum(model::Transformer& m, const Batch& b, std::int64_t vocab_chunk);

}  // namespace distill::train
