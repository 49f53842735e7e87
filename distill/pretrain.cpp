// distill/pretrain.cpp: see pretrain.h.
#include "distill/pretrain.h"

#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/errors.h"
#include "common/fs.h"
#include "common/rng.h"
#include "dataset/answer.h"
#include "dataset/samples.h"
#include "distill/optimizer.h"
#include "distill/schedule.h"
#include "model/autocast.h"
#include "model/device.h"
#include "model/hf_checkpoint.h"
#include "model/tokenizer.h"
#include "teacher/engine.h"
#include "teacher/generate.h"
#include "teacher/prompt_format.h"

namespace distill::train {

using teacher::completion_text;
using teacher::Engine;
using teacher::EngineOptions;
using teacher::GenRequest;
using teacher::GenResult;
using teacher::SamplingParams;
using teacher::r1_prompt_ids;

namespace {

struct GoldRow {
  std::vector<int> ids;  // BOS prompt response EOS
  std::int64_t prompt_len;
};

std::map<int, std::pair<int, int>> greedy_accuracy(model::Transformer& m, const model::Tokenizer& tok,
                                                   const std::vector<dataset::GoldExample>& ex, std::int64_t max_tokens) {
  std::deque<GenRequest> q;
  for (std::size_t i = 0; i < ex.size(); ++i) {
    q.push_back({std::int64_t(i), r1_prompt_ids(tok, ex[i].prompt), 0});
  }
  EngineOptions eo;
  eo.max_batch = 64;
  eo.max_seq_len = 512;
  eo.eos_id = tok.eos_id();
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = max_tokens;
  const bool was_training = m->is_training();
  std::map<int, std::pair<int, int>> acc;
  {
    Engine e(m, eo);
    e.run(std::move(q), p, [&](GenResult&& r) {
      const auto& g = ex[std::size_t(r.id)];
      const bool ok = dataset::verify_completion(completion_text(tok, r.tokens), g.answer).verdict == dataset::Verdict::correct;
      auto& cell = acc[g.difficulty.value_or(0)];
      cell.first += ok;
      cell.second += 1;
    });
  }
  m->release_inference();  // training goes on: drop the stale fused copies
  m->train(was_training);
  return acc;
}

// The per-epoch shuffle of the training examples: batch after batch, and a resume replays it to its step.
class Sampler {
 public:
  Sampler(std::size_t n, std::uint64_t seed) : rng_(seed ^ 0x5eedULL), order_(n), cursor_(n) {
    for (std::size_t i = 0; i < n; ++i) order_[i] = i;
  }
  std::vector<std::size_t> next(std::int64_t batch) {
    std::vector<std::size_t> out;
    for (std::int64_t b = 0; b < batch; ++b) {
      if (cursor_ >= order_.size()) {
        for (std::size_t i = order_.size(); i > 1; --i)
          std::swap(order_[i - 1], order_[std::size_t(rng_.uniform(0, std::int64_t(i) - 1))]);
        cursor_ = 0;
      }
      out.push_back(order_[cursor_++]);
    }
    return out;
  }

 private:
  Rng rng_;
  std::vector<std::size_t> order_;
  std::size_t cursor_;
};

// Pretraining as the loop's recipe: each step the next batch_size examples of a per-epoch shuffle, right-padded,
// the loss on response tokens only (plus aux_coef times the Switch load-balancing loss), then the routers' bias
// update. The loss shown is a moving average (kept in checkpoints as "ema"); the evaluation is greedy accuracy
// on held-out problems, logged every eval_every steps and reported at the end.
class PretrainRecipe : public Recipe {
 public:
  PretrainRecipe(const PretrainConfig& cfg, const std::vector<GoldRow>& data, const std::vector<dataset::GoldExample>& held,
                 model::Transformer& m, const model::Tokenizer& tok, model::Precision precision,
                 const std::function<void(const std::string&)>& log, PretrainReport& rep)
      : cfg_(cfg), data_(data), held_(held), m_(m), tok_(tok), precision_(precision), log_(log), rep_(rep),
        sampler_(data.size(), cfg.seed) {}

  nlohmann::json schedule() const override {
    return {{"steps", cfg_.steps}, {"seed", cfg_.seed}, {"lr", cfg_.lr}, {"min_lr_ratio", cfg_.min_lr_ratio},
            {"warmup", cfg_.warmup}, {"weight_decay", cfg_.weight_decay}, {"grad_clip", cfg_.grad_clip},
            {"batch_size", cfg_.batch_size}, {"aux_coef", cfg_.aux_coef}, {"bias_update_rate", cfg_.bias_update_rate},
            {"split", cfg_.split}, {"train_examples", data_.size()},
            {"model", nlohmann::json::parse(m_->config().to_hf_json())}, {"precision", model::precision_name(precision_)}};
  }

  void skip_to(std::int64_t start) override {
    for (std::int64_t s = 0; s < start; ++s) sampler_.next(cfg_.batch_size);
  }

  StepSums forward_backward(std::int64_t, const torch::Device& device) override {
    std::vector<const GoldRow*> batch;
    for (auto i : sampler_.next(cfg_.batch_size)) batch.push_back(&data_[i]);
    std::int64_t T = 0;
    for (auto* e : batch) T = std::max<std::int64_t>(T, std::int64_t(e->ids.size()));
    const auto B = std::int64_t(batch.size());
    std::vector<std::int64_t> ids(std::size_t(B * T), tok_.pad_id()), labels(std::size_t(B * T), -100);
    StepSums s;
    for (std::int64_t b = 0; b < B; ++b) {
      const auto& e = *batch[std::size_t(b)];
      for (std::size_t t = 0; t < e.ids.size(); ++t) {
        ids[std::size_t(b * T) + t] = e.ids[t];
        if (std::int64_t(t) >= e.prompt_len) labels[std::size_t(b * T) + t] = e.ids[t];
      }
      s.tokens += std::int64_t(e.ids.size());
    }
    auto i64 = torch::TensorOptions().dtype(torch::kInt64);
    model::ForwardInput in;
    in.input_ids = torch::from_blob(ids.data(), {B, T}, i64).to(device);
    in.want_aux_loss = cfg_.aux_coef > 0;
    auto out = m_->forward(in);
    auto loss = model::causal_lm_loss(out.logits, torch::from_blob(labels.data(), {B, T}, i64).to(device));
    (out.aux_loss.defined() ? loss + cfg_.aux_coef * out.aux_loss : loss).backward();
    s.loss_sum = loss.detach().to(torch::kFloat64);  // a mean already: targets stays 1
    return s;
  }

  void after_update(std::int64_t) override {
    for (auto& moe : m_->moe_layers()) moe->update_bias(cfg_.bias_update_rate);
  }

  double shown_loss(std::int64_t step, double loss) override {
    ema_ = step == 0 ? loss : 0.95 * ema_ + 0.05 * loss;
    return ema_;
  }

  double evaluate(std::int64_t done) override {
    if (done >= cfg_.steps || held_.empty() || !log_) return -1;  // the last step's accuracy is the report's
    auto acc = greedy_accuracy(m_, tok_, held_, 128);
    std::ostringstream os;
    os << "step " << done << ": loss " << ema_ << ", greedy held-out accuracy";
    for (auto& [d, c] : acc) os << "  d" << d << " " << c.first << "/" << c.second;
    log_(os.str());
    return -1;
  }

  void save_extra(const std::string&, nlohmann::json& state) override { state["ema"] = ema_; }

  void load_extra(const std::string& dir, const nlohmann::json& state, std::int64_t) override {
    if (!state.value("ema", nlohmann::json()).is_number())
      throw InputError(dir + "/trainer_state.json: expected a number \"ema\" (the displayed loss)");
    ema_ = state["ema"].get<double>();
  }

  void finish() override {
    if (!held_.empty()) rep_.eval_by_difficulty = greedy_accuracy(m_, tok_, held_, 128);
  }

 private:
  const PretrainConfig& cfg_;
  const std::vector<GoldRow>& data_;
  const std::vector<dataset::GoldExample>& held_;
  model::Transformer& m_;
  const model::Tokenizer& tok_;
  model::Precision precision_;
  const std::function<void(const std::string&)>& log_;
  PretrainReport& rep_;
  Sampler sampler_;
  double ema_ = 0;
};

void check_pretrain_config(const PretrainConfig& cfg) {
  check_train_options({cfg.lr, cfg.min_lr_ratio, cfg.weight_decay, cfg.grad_clip, cfg.steps, cfg.warmup,
                       cfg.eval_every, cfg.threads});
  auto number_at_least_0 = [](const char* flag, double v) {
    if (!(v >= 0) || !std::isfinite(v)) throw InputError(std::string(flag) + " " + number_text(v) + ": expected a finite number >= 0");
  };
  number_at_least_0("--aux-coef", cfg.aux_coef);
  number_at_least_0("--bias-update-rate", cfg.bias_update_rate);
  if (cfg.batch_size < 1) throw InputError("--batch-size " + std::to_string(cfg.batch_size) + ": expected >= 1");
  if (cfg.eval_n < 0) throw InputError("--eval-n " + std::to_string(cfg.eval_n) + ": expected >= 0");
  if (cfg.save_every < 0) throw InputError("--save-every " + std::to_string(cfg.save_every) + ": expected >= 0 (0: no checkpoints)");
  if (cfg.stop_after < 0) throw InputError("--stop-after " + std::to_string(cfg.stop_after) + ": expected >= 0 (0: run to --steps)");
  if (cfg.out.empty()) throw InputError("`distill pretrain` needs --out DIR");
  check_output_dir(cfg.out, "--out");
}

// BOS, the R1 prompt, the gold solution as the response, EOS; the loss starts after the prompt.
std::vector<GoldRow> gold_training_examples(const std::vector<dataset::GoldExample>& gold, const model::Tokenizer& tok) {
  std::vector<GoldRow> data;
  data.reserve(gold.size());
  for (const auto& g : gold) {
    GoldRow e;
    e.ids = r1_prompt_ids(tok, g.prompt);
    e.prompt_len = std::int64_t(e.ids.size());
    auto r = tok.encode(teacher::r1_response_from_solution(g.solution));
    e.ids.insert(e.ids.end(), r.begin(), r.end());
    e.ids.push_back(tok.eos_id());
    data.push_back(std::move(e));
  }
  return data;
}

}  // namespace

PretrainReport run_pretrain(dataset::Store& store, const PretrainConfig& cfg, const std::string& config_toml,
                            const std::function<void(const TrainStep&)>& on_step,
                            const std::function<void(const std::string&)>& log) {
  check_pretrain_config(cfg);
  PretrainReport rep;
  if (cfg.threads > 0) torch::set_num_threads(cfg.threads);
  const torch::Device device = model::parse_device(cfg.device);
  const model::Precision precision = model::training_precision(cfg.precision, device);
  auto tok = model::load_tokenizer(cfg.tokenizer_dir);
  auto gold = dataset::gold_examples(store, cfg.split);
  if (gold.empty()) throw InputError("the store has no problems with gold solutions in split '" + cfg.split + "'");
  auto held = dataset::gold_examples(store, cfg.eval_split);
  if (std::int64_t(held.size()) > cfg.eval_n) held.resize(std::size_t(cfg.eval_n));
  const auto data = gold_training_examples(gold, *tok);

  model::ModelConfig mc = cfg.model;
  mc.vocab_size = tok->vocab_size();
  mc.bos_token_id = tok->bos_id();
  mc.eos_token_id = tok->eos_id();
  mc.pad_token_id = tok->pad_id();
  mc.validate("pretrain model config");
  torch::manual_seed(std::int64_t(cfg.seed));
  model::Transformer m(mc);
  m->to(device);
  m->train();
  rep.n_params = m->n_params();
  rep.n_active_params = m->n_active_params();
  if (log) {
    std::ostringstream os;
    os << "pretrain: " << mc.architecture() << ", " << rep.n_params << " params (" << rep.n_active_params
       << " active), " << data.size() << " training examples, " << held.size() << " held-out";
    log(os.str());
  }
  auto opt = make_adamw(*m, cfg.lr, cfg.weight_decay);
  PretrainRecipe recipe(cfg, data, held, m, *tok, precision, log, rep);
  LoopOptions o;
  o.kind = "pretrain";
  o.out = cfg.out;
  o.tokenizer_dir = cfg.tokenizer_dir;
  o.config_toml = config_toml;
  o.steps = cfg.steps, o.warmup = cfg.warmup, o.eval_every = cfg.eval_every, o.save_every = cfg.save_every;
  o.stop_after = cfg.stop_after, o.lr = cfg.lr, o.min_lr_ratio = cfg.min_lr_ratio, o.grad_clip = cfg.grad_clip;
  o.resume = cfg.resume, o.precision = precision;
  const auto r = run_loop(store, m, *opt, recipe, o, device, on_step, log);
  rep.final_loss = r.final_loss, rep.seconds = r.seconds, rep.tokens_per_s = r.tokens_per_s;
  rep.first_step = r.first_step, rep.last_step = r.last_step, rep.finished = r.finished;
  rep.interrupted_by = r.interrupted_by, rep.already_finished = r.already_finished;
  return rep;
}

}  // namespace distill::train
