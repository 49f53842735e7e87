// distill/sft.cpp: see sft.h. The data stream (shuffle per epoch, pack, cut into micro-batches) is a pure
// function of the seed, so resuming replays it up to the checkpoint instead of saving it.
#include "distill/sft.h"

#include <torch/torch.h>

#include <cmath>
#include <optional>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/config_text.h"
#include "common/errors.h"
#include "common/fs.h"
#include "common/memory.h"
#include "common/rng.h"
#include "common/sha256.h"
#include "dataset/browse.h"
#include "dataset/samples.h"
#include "distill/batch.h"
#include "distill/chunked_ce.h"
#include "distill/kd.h"
#include "distill/memory_plan.h"
#include "distill/optimizer.h"
#include "distill/packing.h"
#include "distill/schedule.h"
#include "distill/trainer.h"
#include "model/device.h"
#include "model/autocast.h"
#include "model/hf_checkpoint.h"
#include "model/tokenizer.h"
#include "distill/train_state.h"
#include "student/presets.h"

namespace distill::train {

namespace fs = std::filesystem;

namespace {

// The micro-batch stream: epochs of shuffled examples packed into rows, `rows` rows at a time.
class Stream {
 public:
  // The run's stream for `cfg`: the recipe's, and the memory plan's copy of it, draw the same epochs.
  Stream(const SftConfig& cfg, const std::vector<Example>& ex, std::int64_t rows, int pad, std::int64_t k,
         std::int64_t max_position)
      : ex_(ex), len_(cfg.max_seq_len), rows_(rows), pad_(pad), k_(k), rng_(cfg.seed ^ 0x5f7ULL),
        stretch_(cfg.position_stretch), max_position_(max_position), stretch_rng_((cfg.seed ^ 0x5f7ULL) ^ 0x57e7c4ULL) {}
  std::vector<Row> next() {
    std::vector<Row> out;
    while (std::int64_t(out.size()) < rows_) {
      if (cursor_ >= epoch_.size()) refill();
      out.push_back(epoch_[cursor_++]);
    }
    return out;
  }
  std::int64_t epochs() const { return epochs_; }  // started so far

 private:
  void refill() {
    std::vector<std::size_t> order(ex_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[std::size_t(rng_.uniform(0, std::int64_t(i) - 1))]);
    std::vector<const Example*> ptrs;
    for (auto i : order) ptrs.push_back(&ex_[i]);
    std::vector<std::vector<std::int64_t>> positions;  // fresh every epoch: each pass sees other distances
    if (stretch_ > 0) {
      auto draw = [this] { return stretch_rng_.unit(); };
      for (const auto* e : ptrs) positions.push_back(stretched_positions(*e, stretch_, max_position_, draw));
    }
    epoch_ = pack_rows(ptrs, len_, pad_, k_, positions);
    cursor_ = 0;
    ++epochs_;
  }
  const std::vector<Example>& ex_;
  std::int64_t len_, rows_;
  int pad_;
  std::int64_t k_;
  Rng rng_;
  double stretch_;
  std::int64_t max_position_;
  Rng stretch_rng_;
  std::vector<Row> epoch_;
  std::size_t cursor_ = 0;
  std::int64_t epochs_ = 0;
};

// The most token positions one ragged micro-batch of the run's stream holds (to_batch's rows x width), over its
// first epoch and the micro-batch that runs into the second (or its steps, if fewer): what its activations scale
// with, where a padded batch's scale with rows x len. A resumed run or a later epoch packs otherwise; the plan's
// workspace margin covers that.
std::int64_t peak_micro_batch_tokens(const SftConfig& cfg, const std::vector<Example>& train, std::int64_t rows,
                                     std::int64_t ragged_rows, std::int64_t max_position) {
  if (train.empty()) return rows * cfg.max_seq_len;
  Stream s(cfg, train, rows, 0, 0, max_position);
  std::int64_t peak = 0;
  for (std::int64_t i = 0; i < cfg.steps * cfg.grad_accum && s.epochs() <= 1; ++i) {
    const auto batch = s.next();
    const auto layout = batch_layout(batch, ragged_rows);
    peak = std::max(peak, std::int64_t(layout.first.size() - 1) * layout.width);
  }
  return peak;
}

double val_loss(model::Transformer& m, const std::vector<Example>& val, std::int64_t len, std::int64_t rows, int pad,
                std::int64_t chunk, const torch::Device& dev) {
  if (val.empty()) return -1;
  torch::NoGradGuard g;
  const bool was = m->is_training();
  m->eval();
  std::vector<const Example*> ptrs;
  for (const auto& e : val) ptrs.push_back(&e);
  auto all = pack_rows(ptrs, len, pad);
  torch::Tensor sum = torch::zeros({}, torch::dtype(torch::kFloat64).device(dev));  // read once: no sync per batch
  std::int64_t n = 0;
  for (std::size_t i = 0; i < all.size(); i += std::size_t(rows)) {
    std::vector<Row> part(all.begin() + std::ptrdiff_t(i), all.begin() + std::ptrdiff_t(std::min(all.size(), i + std::size_t(rows))));
    auto b = to_batch(part, dev, ragged_rows_for(m, dev));
    sum += batch_loss_sum(m, b, chunk).detach().to(torch::kFloat64);
    n += b.targets;
  }
  m->train(was);
  return n ? sum.item<double>() / double(n) : -1;
}

}  // namespace

void check_position_stretch(double p) {
  if (!(p >= 0 && p <= 1)) throw InputError("--position-stretch " + number_text(p) + ": expected a number in [0, 1]");
}

std::optional<Example> sft_example(const model::Tokenizer& tok, const std::string& prompt, std::string_view completion,
                                   const std::string& finish_reason, const std::string& target) {
  return sft_example(teacher::PromptFormat::r1(tok), tok, prompt, completion, finish_reason, target);
}

std::optional<Example> sft_example(const teacher::PromptFormat& fmt, const model::Tokenizer& tok,
                                   const std::string& prompt, std::string_view completion,
                                   const std::string& finish_reason, const std::string& target) {
  Example e;
  e.ids = fmt.prompt_ids(prompt);
  e.loss_from = std::int64_t(e.ids.size());
  const auto& prefix = fmt.response_prefix();
  if (!prefix.empty() && completion.rfind(prefix, 0) == 0) completion.remove_prefix(prefix.size());
  if (target == "answer") {  // keep "</think>" and what follows it: the answer without the reasoning
    const auto close = completion.rfind("</think>");
    if (close == std::string_view::npos) return std::nullopt;
    completion.remove_prefix(close);
  }
  auto c = tok.encode(completion);
  e.ids.insert(e.ids.end(), c.begin(), c.end());
  if ((finish_reason == "eos" || finish_reason == "stop") && tok.eos_id() >= 0) e.ids.push_back(tok.eos_id());
  return e;
}

namespace {

// What the examples are, in order (their tokens, where the loss starts, whether KD covers them): a resume onto
// other samples (re-curated, same count) would continue another run's curve.
std::string data_fingerprint(const std::vector<Example>& ex) {
  Sha256 h;  // streamed: a large set is not copied
  for (const auto& e : ex) {
    for (std::int64_t v : {std::int64_t(e.ids.size()), e.loss_from, std::int64_t(e.kd_ids.size())}) h.update(&v, sizeof v);
    h.update(e.ids.data(), e.ids.size() * sizeof(e.ids[0]));
  }
  return h.hex();
}

// Every option in range before anything is read or written; each message names its flag and the value given.
void check_config(const SftConfig& c) {
  auto at_least = [](const char* flag, std::int64_t v, std::int64_t lo, const std::string& note = "") {
    if (v < lo) throw InputError(std::string(flag) + " " + std::to_string(v) + ": expected >= " + std::to_string(lo) + note);
  };
  check_train_options({c.lr, c.min_lr_ratio, c.weight_decay, c.grad_clip, c.steps, c.warmup, c.eval_every, c.threads});
  at_least("--grad-accum", c.grad_accum, 1);
  at_least("--max-seq-len", c.max_seq_len, 8);
  if (c.batch_tokens < c.max_seq_len)
    throw InputError("--batch-tokens " + std::to_string(c.batch_tokens) + ": expected >= --max-seq-len (" +
                     std::to_string(c.max_seq_len) + "), one row at least");
  at_least("--save-every", c.save_every, 0, " (0: only the final model)");
  at_least("--stop-after", c.stop_after, 0, " (0: run to --steps)");
  at_least("--vocab-chunk", c.vocab_chunk, 0, " (0: the whole vocabulary at once)");
  check_position_stretch(c.position_stretch);
  at_least("--average-last", c.average_last, 0, " (0: the last step's weights)");
  if (c.average_last > c.steps)
    throw InputError("--average-last " + std::to_string(c.average_last) + ": expected <= --steps (" +
                     std::to_string(c.steps) + ")");
  if (!(c.val_fraction >= 0 && c.val_fraction < 1))
    throw InputError("--val-fraction " + number_text(c.val_fraction) + ": expected a number in [0, 1)");
  if (c.out.empty()) throw InputError("`distill train` needs --out DIR");
  check_output_dir(c.out, "--out");
  if (c.target != "cot" && c.target != "answer") throw InputError("--target '" + c.target + "': expected cot or answer");
  if (c.target == "answer" && !c.kd.empty()) throw InputError("--kd needs --target cot (the teacher's top-k follow its reasoning)");
  if (!c.kd.empty() && (!(c.kd_weight > 0) || !std::isfinite(c.kd_weight)))
    throw InputError("--kd-weight " + number_text(c.kd_weight) + ": expected a finite number > 0");
}

}  // namespace

namespace {

// The store's samples of the configured statuses and split, refused when there are none.
std::vector<dataset::CuratedSample> load_samples(dataset::Store& store, const SftConfig& cfg) {
  auto samples = dataset::curated_samples(store, cfg.statuses, cfg.split);
  if (!samples.empty()) return samples;
  std::string statuses;
  for (auto st : cfg.statuses) statuses += std::string(statuses.empty() ? "" : ", ") + dataset::status_name(st);
  throw InputError("no samples to train on: none is " + statuses +
                   (cfg.split.empty() ? std::string() : " in split '" + cfg.split + "'") +
                   "; curate first (e.g. `distill data review --all-pending --accept`) or pick --status/--split");
}

// --tokenizer, else the student directory's own, else the one teacher's that generated every sample.
std::string tokenizer_dir_for(const SftConfig& cfg, const std::vector<dataset::CuratedSample>& samples) {
  if (!cfg.tokenizer_dir.empty()) return cfg.tokenizer_dir;
  if (!student::find_preset(cfg.student) && model::has_tokenizer(cfg.student)) return cfg.student;
  std::string dir = samples.front().model_path;
  for (const auto& s : samples)
    if (s.model_path != dir)
      throw InputError("the samples come from several teachers (" + dir + ", " + s.model_path +
                       "); name the tokenizer with --tokenizer DIR");
  return dir;
}

// --kd: the teacher's top-k ids mean something only in the student's vocabulary. Unverifiable is refused too:
// top-k ids of another vocabulary would train without an error.
void check_kd_tokenizers(const std::vector<dataset::CuratedSample>& samples, const std::string& tok_dir,
                         const std::string& tok_sha) {
  std::set<std::string> checked;
  for (const auto& s : samples) {
    if (!checked.insert(s.model_path).second) continue;
    if (!model::has_tokenizer(s.model_path))
      throw InputError("--kd needs the teacher's tokenizer, and " + s.model_path + "/tokenizer.model (or " +
                       "tokenizer.json) of the teacher that generated the samples is missing; restore that "
                       "directory, or train without --kd");
    if (model::tokenizer_fingerprint(s.model_path) != tok_sha)
      throw InputError("--kd needs the teacher's tokenizer in the student: the teacher's " +
                       model::tokenizer_file(s.model_path) + " differs from the student's " +
                       model::tokenizer_file(tok_dir) + " (sha256); train without --kd (SFT re-tokenizes the text)");
  }
}

struct ExampleSet {
  std::vector<Example> train, val;
  std::int64_t kd_k = 0, kd_examples = 0, truncated = 0;
};

// Attaches the sample's stored teacher top-k to `e` when they line up: the teacher's positions match ours only
// if re-encoding its text gives back its token count (and not after a --stop string: its tokens were cut from
// the text, and the EOS we end on is not the teacher's). The first sample's k sets the run's.
void attach_topk(dataset::Store& store, const dataset::CuratedSample& s, Example& e, std::int64_t& kd_k) {
  auto lp = dataset::sample_logprobs(store, s.id);
  const auto n_gen = std::int64_t(e.ids.size()) - e.loss_from;
  if (!lp || s.finish_reason == "stop" || (kd_k != 0 && lp->k != kd_k) || !s.n_tokens || lp->positions != *s.n_tokens ||
      *s.n_tokens != n_gen)
    return;
  kd_k = lp->k;
  e.kd_ids.assign(lp->ids.begin(), lp->ids.end());
  e.kd_logp = std::move(lp->logprobs);
}

// Examples (sft_example); validation: problems whose content hash falls in the held-out share.
ExampleSet build_examples(dataset::Store& store, const SftConfig& cfg, const std::vector<dataset::CuratedSample>& samples,
                          const teacher::PromptFormat& format, const model::Tokenizer& tok, bool kd) {
  ExampleSet set;
  for (const auto& s : samples) {
    auto made = sft_example(format, tok, s.prompt, s.completion, s.finish_reason, cfg.target);
    if (!made) continue;
    if (kd) attach_topk(store, s, *made, set.kd_k);
    const auto h = dataset::content_hash(s.prompt);
    const bool val = cfg.val_fraction > 0 && double(std::stoul(h.substr(0, 8), nullptr, 16) % 10000) < cfg.val_fraction * 10000;
    (val ? set.val : set.train).push_back(std::move(*made));
  }
  if (set.train.empty()) throw InputError("every sample fell into the validation share; lower --val-fraction");
  for (const auto& e : set.train) {
    set.kd_examples += !e.kd_ids.empty();
    set.truncated += std::int64_t(e.ids.size()) > cfg.max_seq_len;
  }
  if (kd && set.kd_examples == 0)
    throw InputError("--kd: no training sample has teacher top-k logprobs that line up with its tokens; generate with "
                     "`distill generate --topk-logprobs K`");
  return set;
}

// The student: a preset (fresh weights from the seed) or an HF directory, on the CPU.
model::Transformer build_student(const SftConfig& cfg, const model::Tokenizer& tok, const std::string& tok_dir,
                                 const std::string& tok_sha) {
  torch::manual_seed(std::int64_t(cfg.seed));
  model::Transformer m{nullptr};
  if (const auto* preset = student::find_preset(cfg.student)) {
    auto mc = preset->config;
    mc.vocab_size = tok.vocab_size();
    mc.bos_token_id = tok.bos_id();
    mc.eos_token_id = tok.eos_id();
    mc.pad_token_id = tok.pad_id();
    m = model::Transformer(mc);
  } else if (fs::is_directory(cfg.student)) {
    m = model::load_hf_dir(cfg.student, torch::kCPU);
    if (model::has_tokenizer(cfg.student) && model::tokenizer_fingerprint(cfg.student) != tok_sha)
      throw InputError("student " + cfg.student + " has its own tokenizer (" + model::tokenizer_file(cfg.student) +
                       "), different from " + model::tokenizer_file(tok_dir) + ": train with --tokenizer " + cfg.student);
    if (m->config().vocab_size < tok.vocab_size())  // HF embeddings may be padded past the tokenizer's ids
      throw InputError("student " + cfg.student + " has vocab_size " + std::to_string(m->config().vocab_size) +
                       " but the tokenizer in " + tok_dir + " has " + std::to_string(tok.vocab_size()));
  } else {
    throw InputError("--student '" + cfg.student + "' is neither a preset (" + student::preset_names() +
                     ") nor a model directory");
  }
  if (cfg.max_seq_len > m->config().max_position_embeddings)
    throw InputError("--max-seq-len " + std::to_string(cfg.max_seq_len) + ": the student takes at most " +
                     std::to_string(m->config().max_position_embeddings) + " positions (max_position_embeddings)");
  return m;
}

// A LoRA run's adapter settings, as its checkpoints record them (null without LoRA, as older checkpoints had).
// The base is part of it: an adapter resumed onto another model of the same shape would train without an error.
nlohmann::json lora_schedule(const SftConfig& c) {
  const auto& l = c.lora;
  if (l.rank <= 0) return nullptr;
  return {{"rank", l.rank}, {"alpha", l.alpha}, {"dropout", l.dropout}, {"targets", l.targets},
          {"base", fs::absolute(c.student).lexically_normal().string()}, {"base_sha256", model::checkpoint_sha256(c.student)}};
}

// SFT as the loop's recipe: packed micro-batches of the example stream, CE (+ KD) on completion tokens, the
// validation loss, and tail averaging (--average-last N: the running mean of the weights after each step with
// index >= avg_from, one tensor per parameter on the device; checkpoints inside the window carry it in
// average.safetensors, so a resumed run saves the mean an uninterrupted one would).
class SftRecipe : public Recipe {
 public:
  // `trained`: what the optimizer trains, by name (the model's parameters, or LoRA's adapters); tail averaging
  // averages these.
  SftRecipe(const SftConfig& cfg, const ExampleSet& ex, model::Transformer& m, NamedTensors trained,
            std::optional<KdKind> kd, int pad, model::Precision precision, const torch::Device& device,
            const std::function<void(const std::string&)>& log)
      : cfg_(cfg), ex_(ex), m_(m), kd_(kd), pad_(pad), precision_(precision), device_(device), log_(log),
        rows_(std::max<std::int64_t>(1, cfg.batch_tokens / cfg.max_seq_len)),
        stream_(cfg, ex.train, rows_, pad, kd ? ex.kd_k : 0, m->config().max_position_embeddings),
        avg_from_(cfg.average_last > 0 ? cfg.steps - cfg.average_last : cfg.steps), named_(std::move(trained)),
        ragged_rows_(ragged_rows_for(m, device)) {}

  std::int64_t rows() const { return rows_; }
  std::int64_t avg_from() const { return avg_from_; }

  nlohmann::json schedule() const override {
    return {{"steps", cfg_.steps}, {"seed", cfg_.seed}, {"lr", cfg_.lr}, {"min_lr_ratio", cfg_.min_lr_ratio},
            {"warmup", cfg_.warmup}, {"weight_decay", cfg_.weight_decay}, {"grad_clip", cfg_.grad_clip},
            {"grad_accum", cfg_.grad_accum}, {"batch_tokens", cfg_.batch_tokens}, {"max_seq_len", cfg_.max_seq_len},
            {"target", cfg_.target}, {"kd", cfg_.kd}, {"kd_weight", cfg_.kd_weight}, {"train_examples", ex_.train.size()},
            {"precision", model::precision_name(precision_)}, {"position_stretch", cfg_.position_stretch},
            {"average_last", cfg_.average_last}, {"lora", lora_schedule(cfg_)},
            // checked after train_examples (keys compare in sorted order): a count that differs is named as such,
            // the same count of other examples by this hash
            {"train_examples_sha256", data_fingerprint(ex_.train)}};
  }

  void skip_to(std::int64_t start) override {
    for (std::int64_t i = 0; i < start * cfg_.grad_accum; ++i) stream_.next();
  }

  StepSums forward_backward(std::int64_t step, const torch::Device& device) override {
    // LoRA dropout's masks: a function of the seed and the step, so a resumed run draws the uninterrupted run's
    if (cfg_.lora.rank > 0 && cfg_.lora.dropout > 0) torch::manual_seed(std::int64_t(cfg_.seed * 1000003 + std::uint64_t(step)));
    std::vector<Batch> micro;
    StepSums s;
    s.targets = s.kd_targets = 0;
    for (std::int64_t k = 0; k < cfg_.grad_accum; ++k) {
      micro.push_back(to_batch(stream_.next(), device, ragged_rows_));
      s.targets += micro.back().targets;
      s.kd_targets += micro.back().kd_targets;
    }
    // The step's sums stay on the device until the step is queued: one host read per step, not two per batch.
    s.loss_sum = torch::zeros({}, torch::dtype(torch::kFloat64).device(device));
    if (kd_) s.kd_sum = s.loss_sum.clone();
    for (auto& b : micro) {
      auto [l, kl] = batch_loss_sums(m_, b, cfg_.vocab_chunk, kd_, cfg_.checkpoint_activations);
      auto obj = l / double(std::max<std::int64_t>(1, s.targets));  // gradients sum to the step's token mean
      if (kl.defined()) {
        obj = obj + cfg_.kd_weight * kl / double(std::max<std::int64_t>(1, s.kd_targets));
        s.kd_sum += kl.detach().to(torch::kFloat64);
      }
      obj.backward();
      s.loss_sum += l.detach().to(torch::kFloat64);
      s.tokens += b.tokens;
    }
    return s;
  }

  void after_update(std::int64_t step) override {
    if (step < avg_from_) return;
    torch::NoGradGuard no_grad;
    const auto k = step - avg_from_ + 1;  // the k-th weights of the window enter the mean with weight 1/k
    if (avg_.empty())
      for (const auto& [name, t] : named_) avg_.push_back(t.detach().clone());
    else
      for (std::size_t i = 0; i < avg_.size(); ++i) avg_[i].lerp_(named_[i].second.detach(), 1.0 / double(k));
    // The last step: the model becomes the mean, which the final validation loss measures and save writes.
    if (step + 1 == cfg_.steps)
      for (std::size_t i = 0; i < avg_.size(); ++i) named_[i].second.detach().copy_(avg_[i]);
  }

  double evaluate(std::int64_t) override {
    model::BF16Autocast autocast(precision_, false);  // the training loss's precision, so the two curves compare
    return val_loss(m_, ex_.val, cfg_.max_seq_len, rows_, pad_, cfg_.vocab_chunk, device_);
  }

  void save_extra(const std::string& dir, nlohmann::json&) override {
    if (avg_.empty()) return;
    std::vector<std::pair<std::string, torch::Tensor>> named_avg;
    for (std::size_t i = 0; i < avg_.size(); ++i) named_avg.emplace_back(named_[i].first, avg_[i]);
    model::save_safetensors(dir + "/average.safetensors", named_avg);
  }

  void load_extra(const std::string& dir, const nlohmann::json&, std::int64_t step) override {
    if (step <= avg_from_) return;
    const auto path = dir + "/average.safetensors";
    if (!fs::exists(path))
      throw InputError(path + ": missing; this checkpoint lies in the --average-last window and needs the mean of the "
                       "weights so far (start afresh, or resume from a checkpoint that has it)");
    auto f = model::SafetensorsFile::open(path);
    for (const auto& [name, live] : named_) {
      auto t = f->get(name);
      if (t.sizes() != live.sizes())
        throw InputError(path + ": tensor " + name + " has another shape than the model's parameter");
      avg_.push_back(t.to(live.device(), live.scalar_type()).clone());
    }
    if (log_) log_("resuming the mean of the weights of " + std::to_string(step - avg_from_) + " steps");
  }

  void finish() override {
    if (log_ && avg_from_ < cfg_.steps)
      log_("train: the saved model is the mean of the weights after steps " + std::to_string(avg_from_ + 1) + ".." +
           std::to_string(cfg_.steps) + " (--average-last " + std::to_string(cfg_.average_last) + ")");
  }

 private:
  const SftConfig& cfg_;
  const ExampleSet& ex_;
  model::Transformer& m_;
  std::optional<KdKind> kd_;
  int pad_;
  model::Precision precision_;
  torch::Device device_;
  const std::function<void(const std::string&)>& log_;
  std::int64_t rows_;
  Stream stream_;
  std::int64_t avg_from_;
  NamedTensors named_;
  std::vector<torch::Tensor> avg_;
  std::int64_t ragged_rows_;  // to_batch's: the device and model do not change during the run
};

// LoRA on the student: adapters attached and trained alone (the optimizer holds only their state); checkpoints
// and the final folder hold the adapter in the PEFT format with the tokenizer beside it.
std::unique_ptr<torch::optim::AdamW> setup_lora(const SftConfig& cfg, model::Transformer& m, const std::string& tok_dir,
                                                LoopOptions& o, const std::function<void(const std::string&)>& log) {
  if (student::find_preset(cfg.student))
    throw InputError("--lora-rank adapts a pretrained student: --student must be a model directory, not the preset '" +
                     cfg.student + "' (whose weights would be random)");
  const auto adapted = student::add_lora(*m, cfg.lora);
  o.params = student::lora_tensors(*m);
  std::int64_t n = 0;
  for (const auto& [name, t] : o.params) n += t.numel();
  if (log)
    log("train: LoRA rank " + std::to_string(cfg.lora.rank) + " on " + std::to_string(adapted.size()) +
        " projections: " + std::to_string(n) + " trainable parameters of " + std::to_string(m->n_params() + n));
  const std::string base = fs::absolute(cfg.student).lexically_normal().string();
  o.save_weights = [&m, &cfg, base, tok_dir](const std::string& dir) {
    student::save_peft_adapter(*m, cfg.lora, base, dir);
    for (const auto& f : model::tokenizer_files(tok_dir))
      write_file_atomic(dir + "/" + f, read_file(tok_dir + "/" + f));
  };
  o.load_weights = [&m](const std::string& dir) { student::load_adapter_weights(*m, dir); };
  return make_adamw(o.params, cfg.lr, cfg.weight_decay);
}

// The memory plan of this run, before the model loads: a run that cannot fit the machine's RAM is refused
// (InputError with the numbers and what to change) unless --force; one over what is free now is only warned of.
// Returns the planned peak in bytes. (On CUDA the device's size is not queried yet: `distill plan --gpu-mem`.)
std::int64_t check_memory(const SftConfig& cfg, const ExampleSet& ex, const model::Tokenizer& tok, const torch::Device& device,
                          model::Precision precision, const std::function<void(const std::string&)>& log) {
  auto model = student::student_config(cfg.student);
  if (!model) return 0;  // not a model directory: build_student says so
  PlanInput in;
  in.model = *model;
  if (student::find_preset(cfg.student)) in.model.vocab_size = tok.vocab_size();  // a preset takes the tokenizer's
  const auto rows = std::max<std::int64_t>(1, cfg.batch_tokens / cfg.max_seq_len);
  in.seq_len = cfg.max_seq_len, in.batch_tokens = rows * cfg.max_seq_len;
  // Ragged batches (the CPU) hold only their documents' tokens: plan for the fullest micro-batch of the stream.
  if (const auto ragged_rows = ragged_rows_for(in.model, device); ragged_rows > 0)
    in.batch_tokens = std::max<std::int64_t>(1, peak_micro_batch_tokens(cfg, ex.train, rows, ragged_rows,
                                                                        in.model.max_position_embeddings));
  in.vocab_chunk = cfg.vocab_chunk, in.lora_rank = cfg.lora.rank, in.lora_targets = cfg.lora.targets;
  in.lora_dropout = cfg.lora.dropout > 0, in.checkpoint_activations = cfg.checkpoint_activations;
  in.bf16_autocast = precision == model::Precision::bf16_autocast;
  in.grad_accum = cfg.grad_accum, in.average_last = cfg.average_last > 0;
  const auto plan = plan_memory(in);
  if (!device.is_cpu()) return plan.peak;
  const auto total = total_ram_bytes(), free = available_ram_bytes();
  const std::string numbers = "the plan's peak is " + bytes_text(plan.peak) + " (weights " + bytes_text(plan.weights) +
                              ", gradients " + bytes_text(plan.gradients) + ", optimizer " + bytes_text(plan.optimizer) +
                              ", activations " + bytes_text(cfg.checkpoint_activations ? plan.activations_checkpointed
                                                                                       : plan.activations) + ")";
  if (total > 0 && plan.peak > total && !cfg.force)
    throw InputError("train: this run cannot fit the machine's " + bytes_text(total) + " of RAM: " + numbers +
                     "; see `distill plan` for what to change (--lora-rank, --checkpoint-activations, a smaller "
                     "--batch-tokens), or pass --force to try anyway");
  if (log && free > 0 && plan.peak > free)
    log("train: warning: " + numbers + ", more than the " + bytes_text(free) + " free now");
  return plan.peak;
}

void log_start(const SftConfig& cfg, const model::Transformer& m, const ExampleSet& ex, std::int64_t rows,
               const std::vector<dataset::CuratedSample>& samples, const std::function<void(const std::string&)>& log) {
  if (!log) return;
  std::ostringstream os;
  os << "train: " << m->config().architecture() << ", " << m->n_params() << " params; " << ex.train.size()
     << " training examples, " << ex.val.size() << " held out; " << rows << " rows of " << cfg.max_seq_len
     << " tokens x " << cfg.grad_accum << " per step";
  log(os.str());
  // Samples of eval problems (generated on that split and accepted by hand) would flatter every number eval
  // reports afterwards.
  std::int64_t of_eval = 0;
  for (const auto& s : samples) of_eval += s.split == "eval";
  if (of_eval && cfg.split.empty())
    log("train: warning: " + std::to_string(of_eval) + " of the samples answer problems of split 'eval', the split "
        "`distill eval` measures on; --split train leaves them out");
  if (ex.truncated)
    log("train: warning: " + std::to_string(ex.truncated) + " of " + std::to_string(ex.train.size()) +
        " training examples are longer than --max-seq-len " + std::to_string(cfg.max_seq_len) +
        " tokens and are cut there (their ends, answer and EOS, are not trained); raise --max-seq-len to keep them");
}

}  // namespace

SftReport run_sft(dataset::Store& store, const SftConfig& cfg, const std::string& config_toml,
                  const std::function<void(const TrainStep&)>& on_step, const std::function<void(const std::string&)>& log) {
  check_config(cfg);
  SftReport rep;
  if (cfg.threads > 0) torch::set_num_threads(cfg.threads);
  const torch::Device device = model::parse_device(cfg.device);
  const model::Precision precision = model::training_precision(cfg.precision, device);
  const auto samples = load_samples(store, cfg);
  const std::string tok_dir = tokenizer_dir_for(cfg, samples);
  auto tok = model::load_tokenizer(tok_dir);
  const auto tok_sha = model::tokenizer_fingerprint(tok_dir);
  const auto format = teacher::PromptFormat::for_model(tok_dir, *tok, cfg.prompt_format);
  std::optional<KdKind> kd;
  if (!cfg.kd.empty()) {
    kd = parse_kd_kind(cfg.kd);
    check_kd_tokenizers(samples, tok_dir, tok_sha);
  }
  const ExampleSet ex = build_examples(store, cfg, samples, format, *tok, kd.has_value());
  rep.planned_peak_bytes = check_memory(cfg, ex, *tok, device, precision, log);
  rep.rss_before_model_bytes = current_rss_bytes();
  auto m = build_student(cfg, *tok, tok_dir, tok_sha);
  m->to(device);
  m->train();
  LoopOptions o;
  auto opt = cfg.lora.rank > 0 ? setup_lora(cfg, m, tok_dir, o, log) : make_adamw(*m, cfg.lr, cfg.weight_decay);
  SftRecipe recipe(cfg, ex, m, o.params.empty() ? named_parameters(*m) : o.params, kd, tok->pad_id(), precision, device, log);
  o.kind = "train";
  o.out = cfg.out;
  o.tokenizer_dir = tok_dir;
  o.config_toml = with_config_value(config_toml, "prompt-format", format.name());
  o.steps = cfg.steps, o.warmup = cfg.warmup, o.eval_every = cfg.eval_every, o.save_every = cfg.save_every;
  o.stop_after = cfg.stop_after, o.lr = cfg.lr, o.min_lr_ratio = cfg.min_lr_ratio, o.grad_clip = cfg.grad_clip;
  o.resume = cfg.resume, o.checkpoint_activations = cfg.checkpoint_activations, o.precision = precision;

  rep.n_params = m->n_params();
  rep.train_examples = std::int64_t(ex.train.size());
  rep.val_examples = std::int64_t(ex.val.size());
  rep.kd_examples = ex.kd_examples;
  rep.truncated_examples = ex.truncated;
  log_start(cfg, m, ex, recipe.rows(), samples, log);
  const auto r = run_loop(store, m, *opt, recipe, o, device, on_step, log);
  rep.run_id = r.run_id, rep.first_step = r.first_step, rep.last_step = r.last_step;
  rep.final_loss = r.final_loss, rep.final_kd = r.final_kd, rep.val_loss = r.val_loss;
  rep.seconds = r.seconds, rep.tokens_per_s = r.tokens_per_s;
  rep.finished = r.finished, rep.interrupted_by = r.interrupted_by, rep.already_finished = r.already_finished;
  rep.averaged_steps = std::max<std::int64_t>(0, r.last_step - recipe.avg_from());
  rep.peak_rss_bytes = peak_rss_bytes();
  return rep;
}

}  // namespace distill::train
