// distill/packing.h: training examples packed into fixed-length rows, documents kept apart. Each row holds
// whole examples back to back (the next one starts a new row when it does not fit); positions restart at 0 for
// every document (or follow a stretched list, below) and segment ids tell attention where documents end
// (block-diagonal), so a packed row computes what the documents would compute alone. Labels are -100 outside
// the loss span (the prompt, padding), so the loss is on completion tokens only. Pure: no LibTorch, no store.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace distill::train {

struct Example {
  std::vector<int> ids;        // BOS, prompt, completion, EOS
  std::int64_t loss_from = 0;  // ids[loss_from..] are targets (the completion and EOS)
  // Optional teacher top-k for the targets ids[loss_from..]: k (id, logprob) pairs per target, in order.
  std::vector<int> kd_ids;
  std::vector<float> kd_logp;
};

struct Row {
  std::vector<std::int64_t> ids, labels, positions, segments;  // each of the row length
  std::int64_t targets = 0;                                     // labels that are not -100, after the shift
  std::int64_t used = 0;                                        // tokens that are not padding
  // With teacher top-k (k > 0): per position, whether its label has a teacher distribution, and k pairs each.
  std::vector<std::uint8_t> kd_mask;
  std::vector<int> kd_ids;
  std::vector<float> kd_logp;
  std::int64_t kd_targets = 0;
};

// Packs examples (in the given order) into rows of `len` tokens; examples longer than `len` are cut to it.
// Padding uses `pad_id`, its own segment, label -100.
// `k` > 0 also packs the examples' teacher top-k (examples without one get none).
// `positions`, when given, holds one position list per example (as stretched_positions makes them) in place of
// 0..n-1.
std::vector<Row> pack_rows(const std::vector<const Example*>& examples, std::int64_t len, int pad_id, std::int64_t k = 0,
                           const std::vector<std::vector<std::int64_t>>& positions = {});

// Position stretch (`distill train --position-stretch P`), a randomized-position augmentation for length
// generalisation: a rate q is drawn uniformly from [0, P], and each prompt token after BOS advances the position
// by 2 instead of 1 with probability q; the completion's positions follow on one by one. Relative distances
// from the completion back into the prompt then vary by up to P, so a longer prompt at test time (one more
// step in the problem, say) lands on distances the student has seen instead of beyond them. Positions stay
// strictly increasing from 0 and never pass `max_position - 1`. `draw` returns a uniform double in [0, 1).
std::vector<std::int64_t> stretched_positions(const Example& e, double max_rate, std::int64_t max_position,
                                              const std::function<double()>& draw);

}  // namespace distill::train
