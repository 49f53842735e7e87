// teacher/pretrain.cpp: see pretrain.h.
#include "teacher/pretrain.h"

#include <torch/torch.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <cmath>
#include <sstream>

#include "common/errors.h"
#include "common/fs.h"
#include "common/interrupt.h"
#include "common/rng.h"
#include "dataset/answer.h"
#include "dataset/samples.h"
#include "distill/schedule.h"
#include "model/autocast.h"
#include "model/device.h"
#include "model/hf_checkpoint.h"
#include "model/tokenizer.h"
#include "model/train_state.h"
#include "model/weights_io.h"
#include "teacher/engine.h"
#include "teacher/generate.h"
#include "teacher/prompt_format.h"

namespace distill::teacher {

namespace {

struct Example {
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

// Where a run starts and what it carries over from a checkpoint.
struct Progress {
  std::int64_t start = 0, tokens = 0;
  double ema = 0;
};

// Steps at.start..end-1; rows into the store under run_id; checkpoint(step, at) every save_every steps. A signal
// caught by `interrupt` ends the loop after the current step, with `end` moved there and `stopped_by_signal` set.
// Returns the tokens this run trained on.
std::int64_t train_loop(dataset::Store& store, const PretrainConfig& cfg, std::int64_t run_id, model::Transformer& m,
                const torch::Device& device, model::Precision precision, torch::optim::AdamW& opt, const model::Tokenizer& tok, const std::vector<Example>& data,
                const std::vector<dataset::GoldExample>& held, Progress& at, std::int64_t& end,
                const InterruptGuard& interrupt, bool& stopped_by_signal,
                const std::function<void(std::int64_t, const Progress&)>& checkpoint,
                const std::function<void(const StepInfo&)>& on_step, const std::function<void(const std::string&)>& log) {
  std::vector<dataset::TrainStepRow> step_rows;
  Sampler sampler(data.size(), cfg.seed);
  for (std::int64_t s = 0; s < at.start; ++s) sampler.next(cfg.batch_size);  // replay to the checkpoint's step
  const auto t0 = std::chrono::steady_clock::now();
  std::int64_t run_tokens = 0;
  for (std::int64_t step = at.start; step < end; ++step) {
    const double lr = train::lr_at(step, cfg.steps, cfg.warmup, cfg.lr, cfg.min_lr_ratio);
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    // batch: the next batch_size examples of a per-epoch shuffle, right-padded; loss on response tokens only
    std::vector<const Example*> batch;
    for (auto i : sampler.next(cfg.batch_size)) batch.push_back(&data[i]);
    std::int64_t T = 0;
    for (auto* e : batch) T = std::max<std::int64_t>(T, std::int64_t(e->ids.size()));
    const auto B = std::int64_t(batch.size());
    std::vector<std::int64_t> ids(std::size_t(B * T), tok.pad_id()), labels(std::size_t(B * T), -100);
    for (std::int64_t b = 0; b < B; ++b) {
      const auto& e = *batch[std::size_t(b)];
      for (std::size_t t = 0; t < e.ids.size(); ++t) {
        ids[std::size_t(b * T) + t] = e.ids[t];
        if (std::int64_t(t) >= e.prompt_len) labels[std::size_t(b * T) + t] = e.ids[t];
      }
      at.tokens += std::int64_t(e.ids.size());
      run_tokens += std::int64_t(e.ids.size());
    }
    auto i64 = torch::TensorOptions().dtype(torch::kInt64);
    model::ForwardInput in;
    in.input_ids = torch::from_blob(ids.data(), {B, T}, i64).to(device);
    in.want_aux_loss = cfg.aux_coef > 0;
    torch::Tensor loss;
    {  // the trainers' precision: bf16 autocast on CUDA (the router stays fp32), fp32 on the CPU
      model::BF16Autocast autocast(precision, false);
      auto out = m->forward(in);
      loss = model::causal_lm_loss(out.logits, torch::from_blob(labels.data(), {B, T}, i64).to(device));
      auto total = out.aux_loss.defined() ? loss + cfg.aux_coef * out.aux_loss : loss;
      opt.zero_grad();
      total.backward();
    }
    if (cfg.grad_clip > 0) torch::nn::utils::clip_grad_norm_(m->parameters(), cfg.grad_clip);
    opt.step();
    for (auto& moe : m->moe_layers()) moe->update_bias(cfg.bias_update_rate);
    const double l = loss.item<double>();
    if (!std::isfinite(l))
      throw RuntimeFailure("pretrain: the loss is " + std::to_string(l) + " at step " + std::to_string(step + 1) +
                           "; lower --lr or raise --warmup");
    at.ema = step == 0 ? l : 0.95 * at.ema + 0.05 * l;
    step_rows.push_back({step + 1, l, lr, at.tokens});
    if (step_rows.size() >= 50) {
      dataset::insert_train_steps(store, run_id, step_rows);
      step_rows.clear();
    }
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (on_step) on_step({step + 1, cfg.steps, at.ema, lr, double(run_tokens) / std::max(el, 1e-9)});
    if (cfg.eval_every > 0 && (step + 1) % cfg.eval_every == 0 && step + 1 < cfg.steps && !held.empty() && log) {
      auto acc = greedy_accuracy(m, tok, held, 128);
      std::ostringstream os;
      os << "step " << step + 1 << ": loss " << at.ema << ", greedy held-out accuracy";
      for (auto& [d, c] : acc) os << "  d" << d << " " << c.first << "/" << c.second;
      log(os.str());
    }
    if (cfg.save_every > 0 && (step + 1) % cfg.save_every == 0 && step + 1 < cfg.steps) {
      dataset::insert_train_steps(store, run_id, step_rows);  // the store holds every step a checkpoint has
      step_rows.clear();
      checkpoint(step + 1, at);
    }
    if (interrupt.requested() && step + 1 < end) end = step + 1, stopped_by_signal = true;
  }
  dataset::insert_train_steps(store, run_id, step_rows);
  return run_tokens;
}

}  // namespace

PretrainReport run_pretrain(dataset::Store& store, const PretrainConfig& cfg, const std::string& config_toml,
                            const std::function<void(const StepInfo&)>& on_step,
                            const std::function<void(const std::string&)>& log) {
  train::check_train_options({cfg.lr, cfg.min_lr_ratio, cfg.weight_decay, cfg.grad_clip, cfg.steps, cfg.warmup,
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
  if (cfg.threads > 0) torch::set_num_threads(cfg.threads);
  const torch::Device device = model::parse_device(cfg.device);
  const model::Precision precision = model::training_precision(cfg.precision, device);
  auto tok = model::load_tokenizer(cfg.tokenizer_dir);
  auto gold = dataset::gold_examples(store, cfg.split);
  if (gold.empty()) throw InputError("the store has no problems with gold solutions in split '" + cfg.split + "'");
  auto held = dataset::gold_examples(store, cfg.eval_split);
  if (std::int64_t(held.size()) > cfg.eval_n) held.resize(std::size_t(cfg.eval_n));

  std::vector<Example> data;
  data.reserve(gold.size());
  for (const auto& g : gold) {
    Example e;
    e.ids = r1_prompt_ids(*tok, g.prompt);
    e.prompt_len = std::int64_t(e.ids.size());
    auto r = tok->encode(r1_response_from_solution(g.solution));
    e.ids.insert(e.ids.end(), r.begin(), r.end());
    e.ids.push_back(tok->eos_id());
    data.push_back(std::move(e));
  }

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
  PretrainReport rep;
  rep.n_params = m->n_params();
  rep.n_active_params = m->n_active_params();
  if (log) {
    std::ostringstream os;
    os << "pretrain: " << mc.architecture() << ", " << rep.n_params << " params (" << rep.n_active_params
       << " active), " << data.size() << " training examples, " << held.size() << " held-out";
    log(os.str());
  }

  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : m->named_parameters()) {
    const bool nd = p.value().dim() < 2 || p.key().find("norm") != std::string::npos;
    (nd ? no_decay : decay).push_back(p.value());
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(cfg.lr).betas({0.9, 0.95}).weight_decay(cfg.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(cfg.lr).betas({0.9, 0.95}).weight_decay(0.0)));
  torch::optim::AdamW opt(std::move(groups));

  // What a resumed run must share with the run that made the checkpoint, else its curve is another one.
  const nlohmann::json schedule = {
      {"steps", cfg.steps}, {"seed", cfg.seed}, {"lr", cfg.lr}, {"min_lr_ratio", cfg.min_lr_ratio},
      {"warmup", cfg.warmup}, {"weight_decay", cfg.weight_decay}, {"grad_clip", cfg.grad_clip},
      {"batch_size", cfg.batch_size}, {"aux_coef", cfg.aux_coef}, {"bias_update_rate", cfg.bias_update_rate},
      {"split", cfg.split}, {"train_examples", data.size()}, {"model", nlohmann::json::parse(mc.to_hf_json())},
      {"precision", model::precision_name(precision)}};
  Progress at;
  if (!cfg.resume) model::refuse_earlier_checkpoints(cfg.out);
  if (cfg.resume) {
    at.start = model::newest_checkpoint(cfg.out);
    if (at.start == 0) throw InputError("--resume: no checkpoint-N/ with a trainer_state.json in " + cfg.out);
    const auto dir = cfg.out + "/checkpoint-" + std::to_string(at.start);
    const auto state = model::read_trainer_state(dir, at.start, schedule);
    if (!state.value("ema", nlohmann::json()).is_number())
      throw InputError(dir + "/trainer_state.json: expected a number \"ema\" (the displayed loss)");
    model::load_state(*m, *model::SafetensorsFile::open(dir + "/model.safetensors"));
    model::load_optimizer(opt, *m, dir + "/optimizer.safetensors", at.start);
    at.tokens = state["tokens"].get<std::int64_t>();
    at.ema = state["ema"].get<double>();
    if (log) log("resuming from " + dir);
  }
  std::int64_t end = cfg.stop_after > 0 ? std::min(cfg.steps, at.start + cfg.stop_after) : cfg.steps;
  auto checkpoint = [&](std::int64_t step, const Progress& p) {
    model::write_checkpoint(cfg.out, step, [&](const std::string& tmp) {
      model::save_hf_dir(*m, tmp, cfg.tokenizer_dir);
      model::save_optimizer(opt, *m, tmp + "/optimizer.safetensors");
      const nlohmann::json state = {{"step", step}, {"tokens", p.tokens}, {"ema", p.ema}, {"schedule", schedule}};
      write_file_atomic(tmp + "/trainer_state.json", state.dump(2) + "\n");
    });
  };

  make_output_dir(cfg.out, "--out");  // before the run row: a path that cannot be a folder fails here
  const auto run_id = store.begin_run("pretrain", config_toml);
  try {
    const auto t0 = std::chrono::steady_clock::now();
    InterruptGuard interrupt;  // Ctrl-C / SIGTERM: end after the current step, checkpointed, as --stop-after would
    bool stopped_by_signal = false;
    const auto run_tokens = train_loop(store, cfg, run_id, m, device, precision, opt, *tok, data, held, at, end, interrupt,
                                       stopped_by_signal, checkpoint, on_step, log);
    if (stopped_by_signal) rep.interrupted_by = interrupt.signal_name();
    rep.final_loss = at.ema;
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rep.tokens_per_s = double(run_tokens) / std::max(rep.seconds, 1e-9);
    rep.first_step = at.start + 1;
    rep.last_step = end;
    rep.finished = end == cfg.steps;
    if (rep.finished) {
      if (!held.empty()) rep.eval_by_difficulty = greedy_accuracy(m, *tok, held, 128);
      model::save_hf_dir(*m, cfg.out, cfg.tokenizer_dir);
    } else if (cfg.save_every <= 0 || end % cfg.save_every != 0) {
      checkpoint(end, at);  // stopped early: leave a checkpoint to resume from
    }
  } catch (...) {
    store.fail_run(run_id);
    throw;
  }
  store.finish_run(run_id, true);
  return rep;
}


}  // namespace distill::teacher
