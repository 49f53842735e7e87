// distill/batch.cpp: see batch.h.
#include "distill/batch.h"

#include <torch/torch.h>

#include "distill/chunked_ce.h"

namespace distill::train {

namespace {
// Which of `rows` open each of `n` ragged rows: contiguous runs of about equal token counts (a run ends where the
// next row's middle would cross its share of the total).
std::vector<std::size_t> ragged_groups(const std::vector<Row>& rows, std::int64_t n, std::int64_t total) {
  std::vector<std::size_t> first = {0};
  std::int64_t sum = 0;
  for (std::size_t ri = 0; ri + 1 < rows.size() && std::int64_t(first.size()) < n; ++ri) {
    sum += rows[ri].used;
    if ((2 * sum + rows[ri + 1].used) * n >= 2 * total * std::int64_t(first.size())) first.push_back(ri + 1);
  }
  return first;
}
}  // namespace

BatchLayout batch_layout(const std::vector<Row>& rows, std::int64_t ragged_rows) {
  const auto L = std::int64_t(rows[0].ids.size());
  const bool ragged = ragged_rows > 0;
  std::int64_t total = 0;
  for (const auto& r : rows) total += r.used;
  // Padded: one row per row, cut to the longest (rounded up to 8): columns past every row's last real token
  // would be padding in all rows. Ragged: runs of rows back to back, each run padded at its end only.
  BatchLayout out;
  auto& first = out.first;
  if (ragged) first = ragged_groups(rows, std::min<std::int64_t>(ragged_rows, std::int64_t(rows.size())), total);
  else
    for (std::size_t ri = 0; ri < rows.size(); ++ri) first.push_back(ri);
  first.push_back(rows.size());
  const auto R = std::int64_t(first.size()) - 1;
  std::int64_t W = 1;
  for (std::int64_t g = 0; g < R; ++g) {
    std::int64_t n = 0;
    for (auto ri = first[std::size_t(g)]; ri < first[std::size_t(g) + 1]; ++ri) n += rows[ri].used;
    W = std::max(W, n);
  }
  out.width = ragged ? (W + kRaggedRound - 1) / kRaggedRound * kRaggedRound : std::min(L, (W + 7) / 8 * 8);
  return out;
}

Batch to_batch(const std::vector<Row>& rows, const torch::Device& dev, std::int64_t ragged_rows) {
  const auto L = std::int64_t(rows[0].ids.size());
  const std::int64_t k = rows[0].kd_mask.empty() ? 0 : std::int64_t(rows[0].kd_ids.size()) / L;
  const bool ragged = ragged_rows > 0;
  const auto layout = batch_layout(rows, ragged_rows);
  const auto& first = layout.first;
  const auto R = std::int64_t(first.size()) - 1, W = layout.width;
  Batch b;
  std::vector<std::int64_t> ids, pos, seg, target_rows, target_labels, kd_rows, kd_ids;
  std::vector<float> kd_logp;
  b.one_document_per_row = !ragged;
  for (std::int64_t g = 0; g < R; ++g) {
    std::int64_t next_segment = 0;
    for (auto ri = first[std::size_t(g)]; ri < first[std::size_t(g) + 1]; ++ri) {
      const auto& r = rows[ri];
      const auto row0 = std::int64_t(ids.size()), width = ragged ? r.used : W;
      for (std::int64_t j = 1; j < width; ++j) {
        if (r.labels[std::size_t(j)] != -100) {
          target_rows.push_back(row0 + j - 1);  // the hidden state that predicts label j
          target_labels.push_back(r.labels[std::size_t(j)]);
        }
        if (k == 0 || !r.kd_mask[std::size_t(j)]) continue;
        kd_rows.push_back(row0 + j - 1);
        for (std::int64_t i = 0; i < k; ++i) {
          kd_ids.push_back(r.kd_ids[std::size_t(j * k + i)]);
          kd_logp.push_back(r.kd_logp[std::size_t(j * k + i)]);
        }
      }
      // One document at positions 0..used-1, then padding: a causal mask gives the document what its segment
      // mask gives it (padding comes after it, and nothing learns from the padding). A stretched document needs
      // its positions passed.
      for (std::int64_t j = 0; j < r.used; ++j)
        b.one_document_per_row &= r.segments[std::size_t(j)] == 0 && r.positions[std::size_t(j)] == j;
      ids.insert(ids.end(), r.ids.begin(), r.ids.begin() + width);
      pos.insert(pos.end(), r.positions.begin(), r.positions.begin() + width);
      if (!ragged) seg.insert(seg.end(), r.segments.begin(), r.segments.begin() + width);
      for (std::int64_t j = 0; ragged && j < width; ++j)  // segment ids rising along the row, as packing makes them
        seg.push_back(next_segment + r.segments[std::size_t(j)]);
      if (ragged && width > 0) next_segment = seg.back() + 1;
      b.targets += r.targets;
      b.tokens += r.used;
      b.kd_targets += r.kd_targets;
    }
    // Every pad token alone at position 0, as in a packed row; its id is never read (nothing learns from it).
    while (ragged && std::int64_t(ids.size()) < (g + 1) * W) ids.push_back(0), pos.push_back(0), seg.push_back(next_segment++);
  }
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  b.ids = torch::from_blob(ids.data(), {R, W}, i64).clone().to(dev);
  b.positions = torch::from_blob(pos.data(), {R, W}, i64).clone().to(dev);
  b.segments = torch::from_blob(seg.data(), {R, W}, i64).clone().to(dev);
  const auto n_targets = std::int64_t(target_rows.size());
  b.target_rows = torch::from_blob(target_rows.data(), {n_targets}, i64).clone().to(dev);
  b.target_labels = torch::from_blob(target_labels.data(), {n_targets}, i64).clone().to(dev);
  if (!kd_rows.empty()) {
    const auto n = std::int64_t(kd_rows.size());
    b.kd_rows = torch::from_blob(kd_rows.data(), {n}, i64).clone().to(dev);
    b.kd_ids = torch::from_blob(kd_ids.data(), {n, k}, i64).clone().to(dev);
    b.kd_logp = torch::from_blob(kd_logp.data(), {n, k}, torch::kFloat32).clone().to(dev);
  }
  return b;
}

std::int64_t ragged_rows_for(model::Transformer& m, const torch::Device& dev) {
  if (!m->packed_attention_is_per_document(dev)) return 0;
  return ragged_rows_for(m->config(), dev);
}

std::int64_t ragged_rows_for(const model::ModelConfig& c, const torch::Device& dev) {
  if (!model::TransformerImpl::packed_attention_is_per_document(c, dev, true)) return 0;
  const std::int64_t kv = std::max<std::int64_t>(1, c.num_key_value_heads);
  return std::max<std::int64_t>(1, (std::int64_t(at::get_num_threads()) + kv - 1) / kv);
}

// Sums over the batch: next-token cross-entropy over its targets, and (with a KD kind) the KD loss over the
// targets that have teacher top-k.
std::pair<torch::Tensor, torch::Tensor> batch_loss_sums(model::Transformer& m, const Batch& b, std::int64_t vocab_chunk,
                                                        const std::optional<KdKind>& kd, bool checkpoint) {
  model::ForwardInput in;
  in.input_ids = b.ids;
  if (!b.one_document_per_row) {
    in.positions = b.positions;
    in.segment_ids = b.segments;
  }
  in.hidden_only = true;
  in.checkpoint_layers = checkpoint;
  auto h = m->forward(in).hidden;  // [R, L, D]
  const auto D = h.size(2);
  // Only the positions that predict a completion token reach the output layer: the prompt's hidden states
  // (most of every row here) would only be multiplied by the vocabulary to be ignored.
  auto ce = chunked_cross_entropy_sum(h.reshape({-1, D}).index_select(0, b.target_rows), m->output_weight(),
                                      b.target_labels, vocab_chunk);
  torch::Tensor kd_sum;
  if (kd && b.kd_rows.defined()) {
    kd_sum = chunked_kd_loss_sum(h.reshape({-1, D}).index_select(0, b.kd_rows), m->output_weight(), b.kd_ids, b.kd_logp,
                                 *kd, vocab_chunk);
  }
  return {ce, kd_sum};
}

torch::Tensor batch_loss_sum(model::Transformer& m, const Batch& b, std::int64_t vocab_chunk) {
  return batch_loss_sums(m, b, vocab_chunk, std::nullopt).first;
}

}  // namespace distill::train
