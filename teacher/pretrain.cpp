// teacher/pretrain.cpp: see pretrain.h.
#include "teacher/pretrain.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <sstream>

#include "common/errors.h"
#include "common/fs.h"
#include "common/rng.h"
#include "dataset/answer.h"
#include "dataset/samples.h"
#include "distill/schedule.h"
#include "model/autocast.h"
#include "model/device.h"
#include "model/hf_checkpoint.h"
#include "model/tokenizer.h"
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

// The steps, from the first to the saved model; rows into the store under run_id.
void train_loop(dataset::Store& store, const PretrainConfig& cfg, std::int64_t run_id, model::Transformer& m,
                const torch::Device& device, torch::optim::AdamW& opt, const model::Tokenizer& tok, const std::vector<Example>& data,
                const std::vector<dataset::GoldExample>& held, PretrainReport& rep,
                const std::function<void(const StepInfo&)>& on_step, const std::function<void(const std::string&)>& log) {
  std::vector<dataset::TrainStepRow> step_rows;
  Rng rng(cfg.seed ^ 0x5eedULL);
  std::vector<std::size_t> order(data.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::size_t cursor = order.size();
  const auto t0 = std::chrono::steady_clock::now();
  std::int64_t tokens = 0;
  double ema = 0;
  for (std::int64_t step = 0; step < cfg.steps; ++step) {
    const double lr = train::lr_at(step, cfg.steps, cfg.warmup, cfg.lr, cfg.min_lr_ratio);
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    // batch: the next batch_size examples of a per-epoch shuffle, right-padded; loss on response tokens only
    std::vector<const Example*> batch;
    for (std::int64_t b = 0; b < cfg.batch_size; ++b) {
      if (cursor >= order.size()) {
        for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[std::size_t(rng.uniform(0, std::int64_t(i) - 1))]);
        cursor = 0;
      }
      batch.push_back(&data[order[cursor++]]);
    }
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
      tokens += std::int64_t(e.ids.size());
    }
    auto i64 = torch::TensorOptions().dtype(torch::kInt64);
    model::ForwardInput in;
    in.input_ids = torch::from_blob(ids.data(), {B, T}, i64).to(device);
    in.want_aux_loss = cfg.aux_coef > 0;
    torch::Tensor loss;
    {  // the trainers' precision: bf16 autocast on CUDA (the router stays fp32), fp32 on the CPU
      model::BF16Autocast autocast(device, false);
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
    ema = step == 0 ? l : 0.95 * ema + 0.05 * l;
    step_rows.push_back({step + 1, l, lr, tokens});
    if (step_rows.size() >= 50) {
      dataset::insert_train_steps(store, run_id, step_rows);
      step_rows.clear();
    }
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (on_step) on_step({step + 1, cfg.steps, ema, lr, double(tokens) / std::max(el, 1e-9)});
    if (cfg.eval_every > 0 && (step + 1) % cfg.eval_every == 0 && step + 1 < cfg.steps && !held.empty() && log) {
      auto acc = greedy_accuracy(m, tok, held, 128);
      std::ostringstream os;
      os << "step " << step + 1 << ": loss " << ema << ", greedy held-out accuracy";
      for (auto& [d, c] : acc) os << "  d" << d << " " << c.first << "/" << c.second;
      log(os.str());
    }
  }
  dataset::insert_train_steps(store, run_id, step_rows);
  rep.final_loss = ema;
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rep.tokens_per_s = double(tokens) / std::max(rep.seconds, 1e-9);
  if (!held.empty()) rep.eval_by_difficulty = greedy_accuracy(m, tok, held, 128);
  m->to(torch::kCPU);
  model::save_hf_dir(*m, cfg.out, cfg.tokenizer_dir);
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
  if (cfg.out.empty()) throw InputError("`distill pretrain` needs --out DIR");
  check_output_dir(cfg.out, "--out");
  if (cfg.threads > 0) torch::set_num_threads(cfg.threads);
  const torch::Device device = model::parse_device(cfg.device);
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

  make_output_dir(cfg.out, "--out");  // before the run row: a path that cannot be a folder fails here
  const auto run_id = store.begin_run("pretrain", config_toml);
  try {
    train_loop(store, cfg, run_id, m, device, opt, *tok, data, held, rep, on_step, log);
  } catch (...) {
    store.fail_run(run_id);
    throw;
  }
  store.finish_run(run_id, true);
  return rep;
}


}  // namespace distill::teacher
