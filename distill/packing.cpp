// distill/packing.cpp: see packing.h.
#include "distill/packing.h"

#include <algorithm>

namespace distill::train {

std::vector<Row> pack_rows(const std::vector<const Example*>& examples, std::int64_t len, int pad_id, std::int64_t k,
                           const std::vector<std::vector<std::int64_t>>& positions) {
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
      if (k > 0) {
        cur.kd_mask.push_back(0);
        cur.kd_ids.insert(cur.kd_ids.end(), std::size_t(k), 0);
        cur.kd_logp.insert(cur.kd_logp.end(), std::size_t(k), 0.0f);
      }
    }
    cur.kd_targets = 0;
    for (std::size_t j = 1; j < cur.kd_mask.size(); ++j) cur.kd_targets += cur.kd_mask[j];
    // causal_lm_loss compares logits[t] with labels[t + 1]: count what it will count.
    cur.targets = 0;
    for (std::size_t j = 1; j < cur.labels.size(); ++j) cur.targets += cur.labels[j] != -100;
    rows.push_back(std::move(cur));
    cur = Row{};
    seg = 0;
  };
  for (std::size_t ei = 0; ei < examples.size(); ++ei) {
    const Example* e = examples[ei];
    const std::vector<std::int64_t>* pos = positions.empty() ? nullptr : &positions[ei];
    const auto n = std::min<std::int64_t>(std::int64_t(e->ids.size()), len);
    if (std::int64_t(cur.ids.size()) + n > len) close();
    for (std::int64_t t = 0; t < n; ++t) {
      cur.ids.push_back(e->ids[std::size_t(t)]);
      cur.labels.push_back(t >= e->loss_from && t > 0 ? e->ids[std::size_t(t)] : -100);
      cur.positions.push_back(pos ? (*pos)[std::size_t(t)] : t);
      cur.segments.push_back(seg);
      if (k > 0) {
        const auto target = t - e->loss_from;
        const bool has = t > 0 && target >= 0 && std::size_t((target + 1) * k) <= e->kd_ids.size();
        cur.kd_mask.push_back(has);
        for (std::int64_t i = 0; i < k; ++i) {
          cur.kd_ids.push_back(has ? e->kd_ids[std::size_t(target * k + i)] : 0);
          cur.kd_logp.push_back(has ? e->kd_logp[std::size_t(target * k + i)] : 0.0f);
        }
      }
    }
    ++seg;
  }
  close();
  return rows;
}

std::vector<std::int64_t> stretched_positions(const Example& e, double max_rate, std::int64_t max_position,
                                              const std::function<double()>& draw) {
  const auto n = std::int64_t(e.ids.size());
  const double q = max_rate * draw();
  // Room for extra steps: the last token may sit at max_position - 1 at most.
  std::int64_t room = std::max<std::int64_t>(0, max_position - n), p = 0;
  std::vector<std::int64_t> out(static_cast<std::size_t>(n), 0);
  for (std::int64_t t = 1; t < n; ++t) {
    p += 1;
    if (t < e.loss_from && room > 0 && draw() < q) ++p, --room;
    out[std::size_t(t)] = p;
  }
  return out;
}

}  // namespace distill::train
