// distill/packing.h: training examples packed into fixed-length rows, documents kept apart. Each row holds
// whole examples back to back (the next one starts a new row when it does not fit); positions restart at 0 for
// every document and segment ids tell attention where documents end (block-diagonal), so a packed row computes
// what the documents would compute alone. Labels are -100 outside the loss span (the prompt, padding), so the
// loss is on completion tokens only. Pure: no LibTorch, no store.
#pragma once

#include <cstdint>
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
std::vector<Row> pack_rows(const std::vector<const Example*>& examples, std::int64_t len, int pad_id, std::int64_t k = 0);

}  // namespace distill::train
