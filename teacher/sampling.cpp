// teacher/sampling.cpp: see sampling.h.
#include "teacher/sampling.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/core/DistributionsHelper.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>

#include "common/errors.h"

namespace distill::teacher {

namespace {

// Top-p keeps a token when the mass of all strictly more likely tokens is below top_p. Ties straddling the cut
// are all kept, so the result never depends on how a sort orders equal logits (CPU and CUDA sorts differ).
// In sorted order that is: the kept prefix ends at the last token whose preceding mass is below top_p, and every
// token at least as likely as that one stays.

// cand_vals: candidates' logits, most likely first; cand_probs: their probabilities. Masks below the cut.
torch::Tensor keep_nucleus(const torch::Tensor& logits, const torch::Tensor& cand_vals, const torch::Tensor& cand_probs,
                           double top_p) {
  auto n_keep = ((cand_probs.cumsum(-1) - cand_probs) < top_p).sum(-1, true).clamp_min(1);
  auto cut = cand_vals.gather(-1, n_keep - 1);
  return logits.masked_fill(logits < cut, -std::numeric_limits<float>::infinity());
}

torch::Tensor full_sort_nucleus(const torch::Tensor& logits, double top_p) {
  auto sorted = std::get<0>(logits.sort(-1, /*descending=*/true));
  return keep_nucleus(logits, sorted, sorted.softmax(-1), top_p);
}

torch::Tensor top_p_filter(const torch::Tensor& logits, double top_p) {
  // Sorting all V logits per step is the costly part; the nucleus nearly always lies in the top 64, so those are
  // tried first, and only the rows whose top 64 hold less than top_p of the mass are sorted whole. The path is
  // chosen per row, so a row's nucleus never depends on the rows batched with it (the two paths form the
  // probabilities differently, and a boundary token could fall either way).
  const auto V = logits.size(-1);
  const std::int64_t C = std::min<std::int64_t>(64, V);
  if (C == V || logits.dim() != 2) return full_sort_nucleus(logits, top_p);
  auto [top, top_idx] = logits.topk(C, -1);  // sorted descending
  auto top_probs = (top - torch::logsumexp(logits, -1, true)).exp();
  auto out = keep_nucleus(logits, top, top_probs, top_p);
  const auto short_rows = (top_probs.sum(-1) < top_p).nonzero().squeeze(-1);
  if (short_rows.numel() > 0)  // a host read: how many rows need the whole sort
    out.index_copy_(0, short_rows, full_sort_nucleus(logits.index_select(0, short_rows), top_p));
  return out;
}

// ---- the CPU kernel: the exponentials as one vectorised op over the batch, the filters per row in plain loops.
// Equals sampling_probs_ops up to fp32 summation order.
void probs_row(const float* x, const float* e, std::int64_t V, const SamplingParams& p, float* out,
               std::vector<std::int32_t>& heap) {
  // x: logits / temperature; e: exp(x - max x). Filters only raise the threshold `cut`: tokens below it drop.
  float cut = -std::numeric_limits<float>::infinity();
  if (p.top_k > 0 && p.top_k < V) {
    heap.resize(std::size_t(V));
    std::iota(heap.begin(), heap.end(), 0);
    std::nth_element(heap.begin(), heap.begin() + (p.top_k - 1), heap.end(),
                     [&](std::int32_t a, std::int32_t b) { return x[a] > x[b]; });
    cut = x[heap[std::size_t(p.top_k - 1)]];
  }
  heap.clear();
  double sum = 0;
  for (std::int64_t i = 0; i < V; ++i) {
    if (x[i] < cut) continue;
    sum += double(e[i]);
    heap.push_back(std::int32_t(i));
  }
  if (p.top_p < 1.0) {
    // Pop candidates most likely first until the mass before one reaches top_p; the last kept sets the cut.
    auto less_likely = [&](std::int32_t a, std::int32_t b) { return x[a] < x[b]; };
    std::make_heap(heap.begin(), heap.end(), less_likely);
    double cum = 0;
    float last = x[heap.front()];
    while (!heap.empty()) {
      const auto t = heap.front();
      const float pt = float(double(e[t]) / sum);
      if (!(float(cum + double(pt)) - pt < float(p.top_p))) break;
      cum += double(pt);
      last = x[t];
      std::pop_heap(heap.begin(), heap.end(), less_likely);
      heap.pop_back();
    }
    cut = std::max(cut, last);
  }
  double kept = 0;
  float emax = 0;
  for (std::int64_t i = 0; i < V; ++i) {
    out[i] = x[i] >= cut ? e[i] : 0.0f;
    kept += double(out[i]);
    emax = std::max(emax, out[i]);
  }
  if (p.min_p > 0) {  // drop p < min_p * p_max, then renormalise
    const float drop = float(p.min_p) * float(double(emax) / kept);
    double left = 0;
    for (std::int64_t i = 0; i < V; ++i) {
      if (float(double(out[i]) / kept) < drop) out[i] = 0.0f;
      left += double(out[i]);
    }
    kept = left;
  }
  const float inv = float(1.0 / kept);
  for (std::int64_t i = 0; i < V; ++i) out[i] *= inv;
}

bool use_kernel(const torch::Tensor& logits) {
  return logits.device().is_cpu() && logits.scalar_type() == torch::kFloat32 && logits.dim() == 2;
}

torch::Tensor probs_kernel(const torch::Tensor& logits, const SamplingParams& p) {
  auto x = (logits / p.temperature).contiguous();
  auto e = (x - std::get<0>(x.max(-1, true))).exp().contiguous();
  const auto B = x.size(0), V = x.size(1);
  auto out = torch::empty({B, V}, x.options());
  const float* px = x.data_ptr<float>();
  const float* pe = e.data_ptr<float>();
  float* po = out.data_ptr<float>();
  at::parallel_for(0, B, std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(V, 1)), [&](std::int64_t b0, std::int64_t b1) {
    std::vector<std::int32_t> heap;
    for (std::int64_t b = b0; b < b1; ++b) probs_row(px + b * V, pe + b * V, V, p, po + b * V, heap);
  });
  return out;
}

}  // namespace

torch::Tensor sampling_probs(const torch::Tensor& logits, const SamplingParams& p) {
  if (!is_greedy(p) && use_kernel(logits)) return probs_kernel(logits, p);
  return sampling_probs_ops(logits, p);
}

torch::Tensor sampling_probs_ops(const torch::Tensor& logits_in, const SamplingParams& p) {
  auto logits = logits_in.to(torch::kFloat32);
  if (is_greedy(p)) {
    auto idx = logits.argmax(-1, true);
    return torch::zeros_like(logits).scatter_(-1, idx, 1.0);
  }
  logits = logits / p.temperature;
  const auto V = logits.size(-1);
  const float ninf = -std::numeric_limits<float>::infinity();
  if (p.top_k > 0 && p.top_k < V) {
    auto kth = std::get<0>(logits.topk(p.top_k, -1)).narrow(-1, p.top_k - 1, 1);  // [B,1]
    logits = logits.masked_fill(logits < kth, ninf);
  }
  if (p.top_p < 1.0) logits = top_p_filter(logits, p.top_p);
  auto probs = logits.softmax(-1);
  if (p.min_p > 0) {
    auto pmax = std::get<0>(probs.max(-1, true));
    probs = probs.masked_fill(probs < p.min_p * pmax, 0.0);
    probs = probs / probs.sum(-1, true);
  }
  return probs;
}

torch::Tensor sample_tokens(const torch::Tensor& logits, const SamplingParams& p, std::vector<at::Generator>& gens) {
  if (is_greedy(p)) return logits.argmax(-1);
  auto probs = sampling_probs(logits, p);
  TORCH_CHECK(std::int64_t(gens.size()) == probs.size(0), "one generator per row");
  // One draw per row, batched: what at::multinomial(probs[i], 1) does (argmax of p / q with q ~ Exp(1) drawn
  // from the row's generator), with only the noise fill left per row. Draws equal multinomial's exactly.
  if (!use_kernel(probs)) {
    auto q = torch::empty_like(probs);
    for (std::size_t i = 0; i < gens.size(); ++i) q[std::int64_t(i)].exponential_(1.0, gens[i]);
    return (probs / q).argmax(-1);
  }
  // CPU: the same draws without materialising q. exponential_ on a CPU float tensor takes, per element, one
  // uniform double from the generator and maps it through transformation::exponential, then casts to float; we
  // call those same LibTorch functions, but take the logarithm only where p > 0 (elsewhere p / q is 0, or NaN
  // when q is 0, which argmax would pick). The stream advances exactly as exponential_ would advance it.
  const auto B = probs.size(0), V = probs.size(1);
  auto tok = torch::empty({B}, torch::kInt64);
  const float* pp = probs.data_ptr<float>();
  auto* pt = tok.data_ptr<std::int64_t>();
  at::parallel_for(0, B, 4, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t b = b0; b < b1; ++b) {
      auto* g = at::check_generator<at::CPUGeneratorImpl>(gens[std::size_t(b)]);
      std::lock_guard<std::mutex> lock(g->mutex_);
      at::uniform_real_distribution<double> uniform(0.0, 1.0);
      const float* row = pp + b * V;
      std::int64_t best = -1;
      float best_v = 0;
      bool nan = false;
      for (std::int64_t i = 0; i < V; ++i) {
        const double u = uniform(g);  // drawn for every element, so the stream stays in step
        if (nan || (row[i] == 0.0f && u != 0.0)) continue;
        const float q = static_cast<float>(at::transformation::exponential<double>(u, 1.0));
        const float v = row[i] / q;
        if (std::isnan(v)) best = i, nan = true;  // argmax takes the first NaN as the largest
        else if (best < 0 || v > best_v) best_v = v, best = i;
      }
      pt[b] = best;
    }
  });
  return tok;
}

void check_sampling(const SamplingParams& p, std::int64_t vocab_size) {
  if (!(p.temperature >= 0) || !std::isfinite(p.temperature))
    throw InputError("--temperature " + number_text(p.temperature) + ": expected a finite number >= 0 (0: greedy)");
  if (!(p.top_p > 0 && p.top_p <= 1)) throw InputError("--top-p " + number_text(p.top_p) + ": expected a number in (0, 1]");
  if (p.top_k < 0) throw InputError("--top-k " + std::to_string(p.top_k) + ": expected >= 0 (0: off)");
  if (!(p.min_p >= 0 && p.min_p <= 1)) throw InputError("--min-p " + number_text(p.min_p) + ": expected a number in [0, 1]");
  if (p.max_tokens < 1) throw InputError("--max-tokens " + std::to_string(p.max_tokens) + ": expected >= 1");
  if (p.topk_logprobs < 0 || p.topk_logprobs > vocab_size)
    throw InputError("--topk-logprobs " + std::to_string(p.topk_logprobs) + ": expected 0.." + std::to_string(vocab_size) +
                     " (the vocabulary size)");
}

at::Generator make_generator(std::uint64_t seed, const torch::Device& device) {
  auto g = at::globalContext().defaultGenerator(device).clone();
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_current_seed(seed);
  return g;
}

}  // namespace distill::teacher
