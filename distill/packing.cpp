// distill/packing.cpp: see packing.h.
#include "distill/packing.h"

#include <algorithm>

namespace distill::train {

std::vector<Row> pack_rows(const std::vector<const Example*>& examples, std::int64_t len, int pad_id) {
  std::vector<Row> rows;
  Row cur;
  std::int64_t seg = 0;
  auto close = [&] {
    if (cur.ids.empty()) return;
    const auto used = std::int64_t(cur.ids.size());
    cur.used = used;
    for (std::int64_t j = used; j < len; ++j) {
      cur.ids.push_back(pad_id);
      cur.labels.push_back(-100);
      cur.positions.push_back(0);
      cur.segments.push_back(seg + 1 + j);  // every pad token alone: it attends to nothing else
    }
    // causal_lm_loss compares logits[t] with labels[t + 1]: count what it will count.
    cur.targets = 0;
    for (std::size_t j = 1; j < cur.labels.size(); ++j) cur.targets += cur.labels[j] != -100;
    rows.push_back(std::move(cur));
    cur = Row{};
    seg = 0;
  };
  for (const Example* e : examples) {
    const auto n = std::min<std::int64_t>(std::int64_t(e->ids.size()), len);
    if (std::int64_t(cur.ids.size()) + n > len) close();
    for (std::int64_t t = 0; t < n; ++t) {
      cur.ids.push_back(e->ids[std::size_t(t)]);
      cur.labels.push_back(t >= e->loss_from && t > 0 ? e->ids[std::size_t(t)] : -100);
      cur.positions.push_back(t);
      cur.segments.push_back(seg);
    }
    ++seg;
  }
  close();
  return rows;
}

}  // namespace distill::train
