// distill/sft.cpp: see sft.h. The data stream (shuffle per epoch, pack, cut into micro-batches) is a pure
// function of the seed, so resuming replays it up to the checkpoint instead of saving it.
#include "distill/sft.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/config_text.h"
#include "common/errors.h"
#include "common/fs.h"
#include "common/interrupt.h"
#include "common/rng.h"
#include "common/sha256.h"
#include "dataset/browse.h"
#include "dataset/samples.h"
#include "distill/batch.h"
#include "distill/chunked_ce.h"
#include "distill/kd.h"
#include "distill/optimizer.h"
#include "distill/packing.h"
#include "distill/schedule.h"
#include "model/device.h"
#include "model/autocast.h"
#include "model/hf_checkpoint.h"
#include "model/tokenizer.h"
#include "model/train_state.h"
#include "student/presets.h"
#include "teacher/generate.h"

namespace distill::train {

namespace fs = std::filesystem;

namespace {

// The micro-batch stream: epochs of shuffled examples packed into rows, `rows` rows at a time.
class Stream {
 public:
  Stream(const std::vector<Example>& ex, std::int64_t len, std::int64_t rows, int pad, std::uint64_t seed, std::int64_t k,
         double stretch, std::int64_t max_position)
      : ex_(ex), len_(len), rows_(rows), pad_(pad), k_(k), rng_(seed), stretch_(stretch), max_position_(max_position),
        stretch_rng_(seed ^ 0x57e7c4ULL) {}
  std::vector<Row> next() {
    std::vector<Row> out;
    while (std::int64_t(out.size()) < rows_) {
      if (cursor_ >= epoch_.size()) refill();
      out.push_back(epoch_[cursor_++]);
    }
    return out;
  }

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
};

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
    auto b = to_batch(part, dev);
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

SftReport run_sft(dataset::Store& store, const SftConfig& cfg, const std::string& config_toml,
                  const std::function<void(const SftStep&)>& on_step, const std::function<void(const std::string&)>& log) {
  check_config(cfg);
  if (cfg.threads > 0) torch::set_num_threads(cfg.threads);
  const torch::Device device = model::parse_device(cfg.device);
  const model::Precision precision = model::training_precision(cfg.precision, device);
  auto samples = dataset::curated_samples(store, cfg.statuses, cfg.split);
  if (samples.empty()) {
    std::string statuses;
    for (auto st : cfg.statuses) statuses += std::string(statuses.empty() ? "" : ", ") + dataset::status_name(st);
    throw InputError("no samples to train on: none is " + statuses +
                     (cfg.split.empty() ? std::string() : " in split '" + cfg.split + "'") +
                     "; curate first (e.g. `distill data review --all-pending --accept`) or pick --status/--split");
  }
  std::string tok_dir = cfg.tokenizer_dir;
  if (tok_dir.empty() && !student::find_preset(cfg.student) && model::has_tokenizer(cfg.student)) tok_dir = cfg.student;
  if (tok_dir.empty()) {
    tok_dir = samples.front().model_path;
    for (const auto& s : samples)
      if (s.model_path != tok_dir)
        throw InputError("the samples come from several teachers (" + tok_dir + ", " + s.model_path +
                         "); name the tokenizer with --tokenizer DIR");
  }
  auto tok = model::load_tokenizer(tok_dir);
  const auto tok_sha = model::tokenizer_fingerprint(tok_dir);
  const auto format = teacher::PromptFormat::for_model(tok_dir, *tok, cfg.prompt_format);
  std::optional<KdKind> kd;
  if (!cfg.kd.empty()) {
    kd = parse_kd_kind(cfg.kd);
    std::set<std::string> checked;
    for (const auto& s : samples) {  // the teacher's top-k ids mean something only in the student's vocabulary
      if (!checked.insert(s.model_path).second) continue;
      // Unverifiable is refused too: top-k ids of another vocabulary would train without an error.
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

  // Examples (sft_example); validation: problems whose content hash falls in the held-out share.
  std::vector<Example> train_ex, val_ex;
  std::int64_t kd_k = 0;
  for (const auto& s : samples) {
    auto made = sft_example(format, *tok, s.prompt, s.completion, s.finish_reason, cfg.target);
    if (!made) continue;
    Example e = std::move(*made);
    if (kd) {
      // The teacher's positions line up with ours only if re-encoding its text gives back its token count.
      auto lp = dataset::sample_logprobs(store, s.id);
      const auto n_gen = std::int64_t(e.ids.size()) - e.loss_from;
      // (Not after a --stop string: its tokens were cut from the text, and the EOS we end on is not the teacher's.)
      if (lp && lp->first > 0 && s.finish_reason != "stop" && (kd_k == 0 || lp->first == kd_k) &&
          s.n_tokens && std::int64_t(lp->second.size()) == *s.n_tokens * lp->first * 8 && *s.n_tokens == n_gen) {
        kd_k = lp->first;
        e.kd_ids.resize(std::size_t(n_gen * kd_k));
        e.kd_logp.resize(std::size_t(n_gen * kd_k));
        for (std::int64_t i = 0; i < n_gen * kd_k; ++i) {
          std::int32_t id;
          float v;
          std::memcpy(&id, lp->second.data() + i * 8, 4);
          std::memcpy(&v, lp->second.data() + i * 8 + 4, 4);
          e.kd_ids[std::size_t(i)] = id;
          e.kd_logp[std::size_t(i)] = v;
        }
      }
    }
    const auto h = dataset::content_hash(s.prompt);
    const bool val = cfg.val_fraction > 0 && double(std::stoul(h.substr(0, 8), nullptr, 16) % 10000) < cfg.val_fraction * 10000;
    (val ? val_ex : train_ex).push_back(std::move(e));
  }
  if (train_ex.empty()) throw InputError("every sample fell into the validation share; lower --val-fraction");
  std::int64_t kd_examples = 0, truncated = 0;
  for (const auto& e : train_ex) {
    kd_examples += !e.kd_ids.empty();
    truncated += std::int64_t(e.ids.size()) > cfg.max_seq_len;
  }
  if (kd && kd_examples == 0)
    throw InputError("--kd: no training sample has teacher top-k logprobs that line up with its tokens; generate with "
                     "`distill generate --topk-logprobs K`");

  // The student: a preset (fresh weights from the seed) or an HF directory.
  torch::manual_seed(std::int64_t(cfg.seed));
  model::Transformer m{nullptr};
  if (const auto* preset = student::find_preset(cfg.student)) {
    auto mc = preset->config;
    mc.vocab_size = tok->vocab_size();
    mc.bos_token_id = tok->bos_id();
    mc.eos_token_id = tok->eos_id();
    mc.pad_token_id = tok->pad_id();
    m = model::Transformer(mc);
  } else if (fs::is_directory(cfg.student)) {
    m = model::load_hf_dir(cfg.student, torch::kCPU);
    if (model::has_tokenizer(cfg.student) && model::tokenizer_fingerprint(cfg.student) != tok_sha)
      throw InputError("student " + cfg.student + " has its own tokenizer (" + model::tokenizer_file(cfg.student) +
                       "), different from " + model::tokenizer_file(tok_dir) + ": train with --tokenizer " + cfg.student);
    if (m->config().vocab_size < tok->vocab_size())  // HF embeddings may be padded past the tokenizer's ids
      throw InputError("student " + cfg.student + " has vocab_size " + std::to_string(m->config().vocab_size) +
                       " but the tokenizer in " + tok_dir + " has " + std::to_string(tok->vocab_size()));
  } else {
    throw InputError("--student '" + cfg.student + "' is neither a preset (" + student::preset_names() +
                     ") nor a model directory");
  }
  if (cfg.max_seq_len > m->config().max_position_embeddings)
    throw InputError("--max-seq-len " + std::to_string(cfg.max_seq_len) + ": the student takes at most " +
                     std::to_string(m->config().max_position_embeddings) + " positions (max_position_embeddings)");
  m->to(device);
  m->train();

  auto opt_ptr = make_adamw(*m, cfg.lr, cfg.weight_decay);
  auto& opt = *opt_ptr;

  const std::int64_t rows = std::max<std::int64_t>(1, cfg.batch_tokens / cfg.max_seq_len);
  // What a resumed run must share with the run that made the checkpoint, else its curve is another one.
  const nlohmann::json schedule = {{"steps", cfg.steps},       {"seed", cfg.seed},          {"lr", cfg.lr},
                                   {"min_lr_ratio", cfg.min_lr_ratio}, {"warmup", cfg.warmup}, {"weight_decay", cfg.weight_decay},
                                   {"grad_clip", cfg.grad_clip}, {"grad_accum", cfg.grad_accum}, {"batch_tokens", cfg.batch_tokens},
                                   {"max_seq_len", cfg.max_seq_len}, {"target", cfg.target}, {"kd", cfg.kd},
                                   {"kd_weight", cfg.kd_weight}, {"train_examples", train_ex.size()},
                                   {"precision", model::precision_name(precision)},
                                   {"position_stretch", cfg.position_stretch}, {"average_last", cfg.average_last},
                                   // checked after train_examples (keys compare in sorted order): a count that
                                   // differs is named as such, the same count of other examples by this hash
                                   {"train_examples_sha256", data_fingerprint(train_ex)}};
  Stream stream(train_ex, cfg.max_seq_len, rows, tok->pad_id(), cfg.seed ^ 0x5f7ULL, kd ? kd_k : 0, cfg.position_stretch,
                m->config().max_position_embeddings);
  std::int64_t start = 0, tokens = 0;
  // Tail averaging (--average-last N): the running mean of the weights after each step with index >= avg_from,
  // one tensor per parameter on the device, empty until that step. Checkpoints inside the window carry it
  // (average.safetensors), so a resumed run saves the mean an uninterrupted one would.
  const std::int64_t avg_from = cfg.average_last > 0 ? cfg.steps - cfg.average_last : cfg.steps;
  const auto named = m->named_parameters();
  std::vector<torch::Tensor> avg;
  auto load_average = [&](const std::string& path, std::int64_t count) {
    if (!fs::exists(path))
      throw InputError(path + ": missing; this checkpoint lies in the --average-last window and needs the mean of the "
                       "weights so far (start afresh, or resume from a checkpoint that has it)");
    auto f = model::SafetensorsFile::open(path);
    for (const auto& p : named) {
      auto t = f->get(p.key());
      if (t.sizes() != p.value().sizes())
        throw InputError(path + ": tensor " + p.key() + " has another shape than the model's parameter");
      avg.push_back(t.to(p.value().device(), p.value().scalar_type()).clone());
    }
    if (log) log("resuming the mean of the weights of " + std::to_string(count) + " steps");
  };
  if (!cfg.resume) model::refuse_earlier_checkpoints(cfg.out);
  if (cfg.resume) {
    start = model::newest_checkpoint(cfg.out);
    if (start == 0) throw InputError("--resume: no checkpoint-N/ with a trainer_state.json in " + cfg.out);
    const auto dir = cfg.out + "/checkpoint-" + std::to_string(start);
    const auto state = model::read_trainer_state(dir, start, schedule);
    model::load_state(*m, *model::SafetensorsFile::open(dir + "/model.safetensors"));
    model::load_optimizer(opt, *m, dir + "/optimizer.safetensors", start);
    tokens = state["tokens"].get<std::int64_t>();
    if (start > avg_from) load_average(dir + "/average.safetensors", start - avg_from);
    for (std::int64_t i = 0; i < start * cfg.grad_accum; ++i) stream.next();  // replay the data stream
    if (log) log("resuming from " + dir);
  }

  SftReport rep;
  rep.n_params = m->n_params();
  rep.train_examples = std::int64_t(train_ex.size());
  rep.val_examples = std::int64_t(val_ex.size());
  rep.kd_examples = kd_examples;
  rep.truncated_examples = truncated;
  rep.first_step = start + 1;
  if (log) {
    std::ostringstream os;
    os << "train: " << m->config().architecture() << ", " << rep.n_params << " params; " << train_ex.size()
       << " training examples, " << val_ex.size() << " held out; " << rows << " rows of " << cfg.max_seq_len
       << " tokens x " << cfg.grad_accum << " per step";
    log(os.str());
    // Samples of eval problems (generated on that split and accepted by hand) would flatter every number eval
    // reports afterwards.
    std::int64_t of_eval = 0;
    for (const auto& s : samples) of_eval += s.split == "eval";
    if (of_eval && cfg.split.empty())
      log("train: warning: " + std::to_string(of_eval) + " of the samples answer problems of split 'eval', the split "
          "`distill eval` measures on; --split train leaves them out");
    if (truncated)
      log("train: warning: " + std::to_string(truncated) + " of " + std::to_string(train_ex.size()) +
          " training examples are longer than --max-seq-len " + std::to_string(cfg.max_seq_len) +
          " tokens and are cut there (their ends, answer and EOS, are not trained); raise --max-seq-len to keep them");
  }
  // --out is made before the run row: a path that cannot be a directory fails here, not after the last step.
  make_output_dir(cfg.out, "--out");
  rep.run_id = store.begin_run("train", with_config_value(config_toml, "prompt-format", format.name()));
  std::vector<dataset::TrainStepRow> step_rows;
  try {
    const auto t0 = std::chrono::steady_clock::now();
    std::int64_t run_tokens = 0;
    std::int64_t end = cfg.stop_after > 0 ? std::min(cfg.steps, start + cfg.stop_after) : cfg.steps;
    InterruptGuard interrupt;  // Ctrl-C / SIGTERM: end after the current step, checkpointed, as --stop-after would
    auto checkpoint = [&](std::int64_t step) {
      model::write_checkpoint(cfg.out, step, [&](const std::string& tmp) {
        model::save_hf_dir(*m, tmp, tok_dir);  // copies to the host inside, the model stays on its device
        model::save_optimizer(opt, *m, tmp + "/optimizer.safetensors");
        if (!avg.empty()) {
          std::vector<std::pair<std::string, torch::Tensor>> named_avg;
          for (std::size_t i = 0; i < avg.size(); ++i) named_avg.emplace_back(named[i].key(), avg[i]);
          model::save_safetensors(tmp + "/average.safetensors", named_avg);
        }
        nlohmann::json state = {{"step", step}, {"tokens", tokens}, {"schedule", schedule},
                                {"lr", lr_at(step - 1, cfg.steps, cfg.warmup, cfg.lr, cfg.min_lr_ratio)}};
        write_file_atomic(tmp + "/trainer_state.json", state.dump(2) + "\n");
      });
    };
    double last = 0;
    for (std::int64_t step = start; step < end; ++step) {
      const double lr = lr_at(step, cfg.steps, cfg.warmup, cfg.lr, cfg.min_lr_ratio);
      std::vector<Batch> micro;
      std::int64_t targets = 0, kd_targets = 0;
      for (std::int64_t k = 0; k < cfg.grad_accum; ++k) {
        micro.push_back(to_batch(stream.next(), device));
        targets += micro.back().targets;
        kd_targets += micro.back().kd_targets;
      }
      opt.zero_grad();
      // The step's sums stay on the device until the step is queued: one host read per step, not two per batch.
      auto loss_sum = torch::zeros({}, torch::dtype(torch::kFloat64).device(device)), kd_total = loss_sum.clone();
      {  // autocast covers forward and backward only: its cast cache must not outlive the weights' update
        model::BF16Autocast autocast(precision, cfg.checkpoint_activations);
        for (auto& b : micro) {
          auto [l, kl] = batch_loss_sums(m, b, cfg.vocab_chunk, kd, cfg.checkpoint_activations);
          auto obj = l / double(std::max<std::int64_t>(1, targets));  // gradients sum to the step's token mean
          if (kl.defined()) {
            obj = obj + cfg.kd_weight * kl / double(std::max<std::int64_t>(1, kd_targets));
            kd_total += kl.detach().to(torch::kFloat64);
          }
          obj.backward();
          loss_sum += l.detach().to(torch::kFloat64);
          tokens += b.tokens;
          run_tokens += b.tokens;
        }
      }
      const auto grad_norm = adamw_step(opt, lr, cfg.grad_clip);
      if (step >= avg_from) {  // the k-th weights of the window enter the mean with weight 1/k
        torch::NoGradGuard no_grad;
        const auto k = step - avg_from + 1;
        if (avg.empty())
          for (const auto& p : named) avg.push_back(p.value().detach().clone());
        else
          for (std::size_t i = 0; i < avg.size(); ++i) avg[i].lerp_(named[i].value().detach(), 1.0 / double(k));
        // The last step: the model becomes the mean, which the final validation loss measures and save writes.
        if (step + 1 == cfg.steps)
          for (std::size_t i = 0; i < avg.size(); ++i) named[i].value().detach().copy_(avg[i]);
      }
      // One host read for the step's numbers: the losses and the gradient norm (when clipping computed it).
      const auto read = torch::stack({loss_sum, kd_total,
                                      grad_norm.defined() ? grad_norm.to(torch::kFloat64) : torch::zeros_like(loss_sum)})
                            .to(torch::kCPU);
      const double* got = read.data_ptr<double>();
      if (kd) rep.final_kd = got[1] / double(std::max<std::int64_t>(1, kd_targets));
      last = got[0] / double(std::max<std::int64_t>(1, targets));
      // Checked before this step can be checkpointed or saved: a non-finite KD term or gradient has already made the
      // update (and so the weights) NaN while the cross-entropy, read before it, may still look fine.
      if (!std::isfinite(last) || (kd && !std::isfinite(rep.final_kd)) || !std::isfinite(got[2]))
        throw RuntimeFailure("train: the " +
                             std::string(!std::isfinite(last) ? "loss is " + std::to_string(last)
                                         : kd && !std::isfinite(rep.final_kd) ? "KD loss is " + std::to_string(rep.final_kd)
                                                                              : "gradient norm is " + std::to_string(got[2])) +
                             " at step " + std::to_string(step + 1) +
                             "; lower --lr or raise --warmup (checkpoints so far are kept)");
      double vl = -1;
      if ((cfg.eval_every > 0 && (step + 1) % cfg.eval_every == 0) || step + 1 == cfg.steps) {
        model::BF16Autocast autocast(precision, false);  // the training loss's precision, so the two curves compare
        vl = val_loss(m, val_ex, cfg.max_seq_len, rows, tok->pad_id(), cfg.vocab_chunk, device);
      }
      if (vl >= 0) rep.val_loss = vl;
      step_rows.push_back({step + 1, last, lr, tokens, vl >= 0 ? std::optional<double>(vl) : std::nullopt});
      if (step_rows.size() >= 50) dataset::insert_train_steps(store, rep.run_id, step_rows), step_rows.clear();
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (on_step) on_step({step + 1, cfg.steps, last, lr, double(run_tokens) / std::max(el, 1e-9), vl});
      if (cfg.save_every > 0 && (step + 1) % cfg.save_every == 0 && step + 1 < cfg.steps) checkpoint(step + 1);
      if (interrupt.requested() && step + 1 < end) {
        end = step + 1;  // the loop ends here; below, the checkpoint to resume from
        rep.interrupted_by = interrupt.signal_name();
      }
    }
    dataset::insert_train_steps(store, rep.run_id, step_rows), step_rows.clear();
    rep.last_step = end;
    rep.final_loss = last;
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rep.tokens_per_s = double(run_tokens) / std::max(rep.seconds, 1e-9);
    rep.finished = end == cfg.steps;
    rep.averaged_steps = std::max<std::int64_t>(0, end - avg_from);
    if (rep.finished) {
      if (log && rep.averaged_steps > 0)
        log("train: the saved model is the mean of the weights after steps " + std::to_string(avg_from + 1) + ".." +
            std::to_string(cfg.steps) + " (--average-last " + std::to_string(cfg.average_last) + ")");
      m->to(torch::kCPU);
      model::save_hf_dir(*m, cfg.out, tok_dir);
    } else if (cfg.save_every <= 0 || end % cfg.save_every != 0) {
      checkpoint(end);  // stopped early: leave a checkpoint to resume from
    }
  } catch (...) {
    try {  // the steps before the failure are the ones a user wants to see; never mask the error itself
      dataset::insert_train_steps(store, rep.run_id, step_rows);
    } catch (...) {
    }
    store.fail_run(rep.run_id);
    throw;
  }
  store.finish_run(rep.run_id, true);
  return rep;
}

}  // namespace distill::train
