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
};

struct Row {
  std::vector<std::int64_t> ids, labels, positions, segments;  // each of the row length
  std::int64_t targets = 0;                                     // labels that are not -100, after the shift
  std::int64_t used = 0;                                        // tokens that are not padding
};

// Packs examples (in the given order) into rows of `len` tokens; examples longer than `len` are cut to it.
// Padding uses `pad_id`, its own segment, label -100.
std::vector<Row> pack_rows(const std::vector<const Example*>& examples, std::int64_t len, int pad_id);

}  // namespace distill::train
