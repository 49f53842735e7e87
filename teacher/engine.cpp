// teacher/engine.cpp: see engine.h.
#include "teacher/engine.h"

#include <torch/torch.h>

#include <algorithm>

#include "common/errors.h"
#include "model/cpu_block_cache.h"

namespace distill::teacher {

Engine::Engine(model::Transformer model, EngineOptions opt)
    : model_(std::move(model)), opt_(opt), device_(model_->parameters().front().device()) {
  model_->eval();
  model_->prepare_inference();  // stacked expert weights: the model must not change while this engine runs
  const auto dtype = model_->parameters().front().scalar_type();
  cache_ = model::KVCache::allocate(model_->config(), opt_.max_batch, opt_.max_seq_len,
                                    torch::TensorOptions().dtype(dtype).device(device_));
  for (std::int64_t s = opt_.max_batch - 1; s >= 0; --s) free_slots_.push_back(s);
}

void Engine::sample_and_record(const torch::Tensor& next, std::vector<at::Generator>& gens,
                               const std::vector<Active*>& rows) {
  auto same = [](const SamplingParams& a, const SamplingParams& b) {
    return a.temperature == b.temperature && a.top_p == b.top_p && a.top_k == b.top_k && a.min_p == b.min_p &&
           a.topk_logprobs == b.topk_logprobs;  // max_tokens does not touch the draw
  };
  std::vector<std::vector<std::size_t>> groups;  // rows by sampling parameters, first appearance first
  for (std::size_t b = 0; b < rows.size(); ++b) {
    auto g = std::find_if(groups.begin(), groups.end(),
                          [&](const auto& grp) { return same(*rows[grp.front()]->params, *rows[b]->params); });
    if (g == groups.end()) groups.push_back({b});
    else g->push_back(b);
  }
  if (groups.size() == 1) return sample_group(next, gens, rows, *rows.front()->params);
  for (const auto& grp : groups) {
    std::vector<std::int64_t> idx(grp.begin(), grp.end());
    std::vector<at::Generator> g_gens;
    std::vector<Active*> g_rows;
    for (auto b : grp) g_gens.push_back(gens[b]), g_rows.push_back(rows[b]);
    const auto sel = torch::from_blob(idx.data(), {std::int64_t(idx.size())}, torch::kInt64).to(next.device());
    sample_group(next.index_select(0, sel), g_gens, g_rows, *g_rows.front()->params);
  }
}

void Engine::sample_group(const torch::Tensor& next, std::vector<at::Generator>& gens, const std::vector<Active*>& rows,
                          const SamplingParams& p) {
  // Everything per row is picked out on the device (the chosen token's logprob, the top-k), and only that
  // crosses to the host: a [B, V] log-softmax copied each step would be ~78 MB at B 128 and a 152k vocabulary.
  auto tok = sample_tokens(next, p, gens);
  auto lp = next.log_softmax(-1).to(torch::kFloat32);
  auto chosen = lp.gather(1, tok.unsqueeze(1));  // [B, 1]
  torch::Tensor ids = tok.unsqueeze(1), vals = chosen;
  if (p.topk_logprobs > 0) {
    auto [v, i] = lp.topk(p.topk_logprobs, -1);
    ids = torch::cat({ids, i}, 1), vals = torch::cat({vals, v}, 1);
  }
  ids = ids.to(torch::kCPU).contiguous(), vals = vals.to(torch::kCPU).contiguous();
  const std::int64_t w = ids.size(1);
  for (std::size_t b = 0; b < rows.size(); ++b)
    record(*rows[b], ids.data_ptr<std::int64_t>() + std::int64_t(b) * w, vals.data_ptr<float>() + std::int64_t(b) * w, p);
}

void Engine::record(Active& a, const std::int64_t* ids, const float* vals, const SamplingParams& p) {
  // ids/vals: the chosen token and its logprob (log-softmax of the unfiltered logits), then the top-k pairs
  const int token = int(ids[0]);
  a.res.tokens.push_back(token);
  a.res.token_logprobs.push_back(vals[0]);
  if (p.topk_logprobs > 0) {
    std::vector<std::pair<int, float>> row;
    for (std::int64_t k = 0; k < p.topk_logprobs; ++k) row.emplace_back(int(ids[1 + k]), vals[1 + k]);
    a.res.topk.push_back(std::move(row));
  }
  a.pending = token;
  ++tokens_generated_;
  if (a.req.on_token) a.req.on_token(a.res);
}

bool Engine::finished(Active& a, const std::function<bool(const std::vector<int>&)>& stop) {
  const SamplingParams& p = *a.params;
  if (a.req.abandoned && a.req.abandoned->load()) {
    a.res.finish_reason = "abort";
    return true;
  }
  if (a.pending == opt_.eos_id ||
      std::find(opt_.more_eos_ids.begin(), opt_.more_eos_ids.end(), a.pending) != opt_.more_eos_ids.end()) {
    a.res.finish_reason = "eos";
    return true;
  }
  if ((stop && stop(a.res.tokens)) || (a.req.stop && a.req.stop(a.res.tokens))) {
    a.res.finish_reason = "stop";
    return true;
  }
  if (std::int64_t(a.res.tokens.size()) >= p.max_tokens || a.len + 1 >= opt_.max_seq_len) {
    a.res.finish_reason = "length";
    return true;
  }
  return false;
}

void Engine::prefill(std::vector<GenRequest>& joiners, const SamplingParams& p) {
  // Right-padded batch of the joiners' prompts; each row's logits are read at its last real token. Padding
  // writes cache entries past the prompt, which later decode steps overwrite before anything attends to them.
  const auto admitted = std::chrono::steady_clock::now();
  const auto B = std::int64_t(joiners.size());
  std::int64_t T = 0;
  for (auto& r : joiners) {
    if (r.prompt.empty()) throw InputError("generation request " + std::to_string(r.id) + " has an empty prompt");
    T = std::max<std::int64_t>(T, std::int64_t(r.prompt.size()));
  }
  if (T >= opt_.max_seq_len)  // max_seq_len - 1 prompt tokens still leave the slot room for one generated token
    throw InputError("a prompt of " + std::to_string(T) + " tokens does not fit max_seq_len " + std::to_string(opt_.max_seq_len));
  std::vector<std::int64_t> ids(std::size_t(B * T), 0), slots, last;
  for (std::int64_t b = 0; b < B; ++b) {
    const auto& pr = joiners[std::size_t(b)].prompt;
    for (std::size_t t = 0; t < pr.size(); ++t) ids[std::size_t(b * T) + t] = pr[t];
    slots.push_back(free_slots_.back());
    free_slots_.pop_back();
    last.push_back(std::int64_t(pr.size()) - 1);
  }
  auto opts = torch::TensorOptions().dtype(torch::kInt64);
  model::ForwardInput in;
  in.input_ids = torch::from_blob(ids.data(), {B, T}, opts).to(device_);
  // positions left unset: every row at 0..T-1, which lets attention use its plain causal path
  in.slots = torch::from_blob(slots.data(), {B}, opts).to(device_);
  in.cache = &cache_;
  in.kv_len = T;
  in.logits_at = torch::from_blob(last.data(), {B}, opts).to(device_);
  auto next = model_->forward(in).logits.squeeze(1);  // [B,V] at each row's last prompt token
  std::vector<Active> joined;
  std::vector<at::Generator> gens;
  for (std::int64_t b = 0; b < B; ++b) {
    gens.push_back(make_generator(joiners[std::size_t(b)].seed, device_));
    const SamplingParams* params = joiners[std::size_t(b)].params ? joiners[std::size_t(b)].params.get() : &p;
    Active a{std::move(joiners[std::size_t(b)]), params, slots[std::size_t(b)], last[std::size_t(b)] + 1, 0,
             gens.back(), {}, admitted};
    a.res.id = a.req.id;
    joined.push_back(std::move(a));
  }
  std::vector<Active*> rows;
  for (auto& a : joined) rows.push_back(&a);
  sample_and_record(next, gens, rows);
  for (auto& a : joined) active_.push_back(std::move(a));
  std::sort(active_.begin(), active_.end(), [](const Active& x, const Active& y) { return x.slot < y.slot; });
}

void Engine::decode_step() {
  const auto B = std::int64_t(active_.size());
  std::vector<std::int64_t> ids, pos, slots;
  std::int64_t kv_len = 0;
  for (auto& a : active_) {
    ids.push_back(a.pending);
    pos.push_back(a.len);
    slots.push_back(a.slot);
    kv_len = std::max(kv_len, a.len + 1);
  }
  auto opts = torch::TensorOptions().dtype(torch::kInt64);
  model::ForwardInput in;
  in.input_ids = torch::from_blob(ids.data(), {B, 1}, opts).to(device_);
  in.positions = torch::from_blob(pos.data(), {B, 1}, opts).to(device_);
  in.slots = torch::from_blob(slots.data(), {B}, opts).to(device_);
  in.cache = &cache_;
  in.kv_len = kv_len;
  if (slots.back() - slots.front() == B - 1) in.slot_begin = slots.front();  // sorted and distinct: a range
  auto next = model_->forward(in).logits.squeeze(1);  // [B,V]
  std::vector<at::Generator> gens;
  std::vector<Active*> rows;
  for (auto& a : active_) {
    gens.push_back(a.gen);
    a.len += 1;  // the pending token is in the cache now
    rows.push_back(&a);
  }
  sample_and_record(next, gens, rows);
}

namespace {

class QueueSource : public RequestSource {
 public:
  explicit QueueSource(std::deque<GenRequest> q) : q_(std::move(q)) {}
  std::int64_t waiting() override { return std::int64_t(q_.size()); }
  std::vector<GenRequest> take(std::int64_t n) override {
    std::vector<GenRequest> out;
    while (!q_.empty() && std::int64_t(out.size()) < n) out.push_back(std::move(q_.front())), q_.pop_front();
    return out;
  }
  bool wait() override { return false; }  // all there is, was there from the start

 private:
  std::deque<GenRequest> q_;
};

}  // namespace

void Engine::run(std::deque<GenRequest> queue, const SamplingParams& p, const std::function<void(GenResult&&)>& on_done,
                 const std::function<bool(const std::vector<int>&)>& stop, const std::function<bool()>& cancel) {
  QueueSource source(std::move(queue));
  run(source, p, on_done, stop, cancel);
}

void Engine::run(RequestSource& source, const SamplingParams& p, const std::function<void(GenResult&&)>& on_done,
                 const std::function<bool(const std::vector<int>&)>& stop, const std::function<bool()>& cancel) {
  c10::InferenceMode inference;
  auto retire = [&] {
    for (std::size_t i = 0; i < active_.size();) {
      if (finished(active_[i], stop)) {
        free_slots_.push_back(active_[i].slot);
        active_[i].res.seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - active_[i].start).count();
        on_done(std::move(active_[i].res));
        active_.erase(active_.begin() + std::ptrdiff_t(i));
      } else {
        ++i;
      }
    }
  };
  const auto min_join =
      std::min(opt_.max_batch, opt_.min_join > 0 ? opt_.min_join : std::max<std::int64_t>(1, opt_.max_batch / 8));
  for (;;) {
    if (cancel && cancel()) {
      for (const auto& a : active_) free_slots_.push_back(a.slot);
      active_.clear();
      return;
    }
    const auto waiting = source.waiting();
    if (active_.empty() && waiting == 0) {
      if (!source.wait()) return;
      continue;
    }
    const auto free = std::int64_t(free_slots_.size());
    if (waiting > 0 && free > 0 && (free >= min_join || active_.empty() || waiting <= free)) {
      auto joiners = source.take(free);
      if (!joiners.empty()) {
        prefill(joiners, p);
        model::cpu_cache::end_of_step();  // prompts differ in length: their blocks need not be kept
        retire();
        continue;
      }
    }
    if (active_.empty()) continue;
    decode_step();
    retire();
  }
}

}  // namespace distill::teacher
