// distill/trainer.cpp: see trainer.h. The loop is a small class so that each phase (start or resume, one step,
// checkpoint, finish) reads on its own.
#include "distill/trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <vector>

#include "common/errors.h"
#include "common/fs.h"
#include "common/interrupt.h"
#include "dataset/samples.h"
#include "model/cpu_block_cache.h"
#include "distill/optimizer.h"
#include "distill/schedule.h"
#include "distill/train_state.h"
#include "model/hf_checkpoint.h"
#include "model/weights_io.h"

namespace distill::train {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFinishedFile = "trainer_state.json";  // in `out` itself: written last by a finished run

// The finished marker of `out`, checked against this run's schedule (distill/train_state.h names a key that
// differs); null when there is none (an unfinished or fresh folder).
nlohmann::json finished_marker(const std::string& out, const nlohmann::json& schedule) {
  const auto path = out + "/" + kFinishedFile;
  if (!fs::exists(path)) return nullptr;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": not JSON (" + e.what() + ")");
  }
  if (!j.is_object() || j.value("finished", nlohmann::json()) != true || !j.value("step", nlohmann::json()).is_number_integer())
    throw InputError(path + ": expected an object with \"finished\": true and an integer \"step\"");
  return read_trainer_state(out, j["step"].get<std::int64_t>(), schedule);
}

class Loop {
 public:
  Loop(dataset::Store& store, model::Transformer& m, torch::optim::AdamW& opt, Recipe& r, const LoopOptions& o,
       const torch::Device& device, const std::function<void(const TrainStep&)>& on_step,
       const std::function<void(const std::string&)>& log)
      : store_(store), m_(m), opt_(opt), r_(r), o_(o), device_(device), on_step_(on_step), log_(log),
        schedule_(r.schedule()), params_(o.params.empty() ? named_parameters(*m) : o.params) {}

  LoopResult run() {
    start_or_resume();
    if (res_.already_finished) return res_;
    make_output_dir(o_.out, "--out");  // before the run row: a path that cannot be a folder fails here
    res_.run_id = store_.begin_run(o_.kind, o_.config_toml);
    try {
      const auto t0 = std::chrono::steady_clock::now();
      InterruptGuard interrupt;  // Ctrl-C / SIGTERM: end after the current step, checkpointed, as --stop-after would
      std::int64_t end = o_.stop_after > 0 ? std::min(o_.steps, start_ + o_.stop_after) : o_.steps;
      for (std::int64_t step = start_; step < end; ++step) {
        one_step(step, t0);
        if (interrupt.requested() && step + 1 < end) {
          end = step + 1;
          res_.interrupted_by = interrupt.signal_name();
        }
      }
      flush_rows();
      res_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      res_.tokens_per_s = double(run_tokens_) / std::max(res_.seconds, 1e-9);
      res_.last_step = end;
      finish(end);
    } catch (...) {
      try {  // the steps before the failure are the ones a user wants to see; never mask the error itself
        flush_rows();
      } catch (...) {
      }
      store_.fail_run(res_.run_id);
      throw;
    }
    store_.finish_run(res_.run_id, true);
    return res_;
  }

 private:
  // From step 1, into an --out that holds no model and no checkpoint.
  void start_fresh() {
    refuse_earlier_checkpoints(o_.out);
    if (fs::exists(o_.out + "/config.json") || fs::exists(o_.out + "/adapter_config.json") ||
        fs::exists(o_.out + "/" + kFinishedFile))
      throw InputError("--out " + o_.out + " already holds a model (config.json or adapter_config.json); training "
                       "into it would overwrite it: choose another --out" +
                       (o_.kind == "train" ? " (to train that model further, start a new run from it: --student " +
                                                 o_.out + " --out NEW_DIR)"
                                           : std::string()));
    res_.first_step = 1;
  }

  void start_or_resume() {
    if (!o_.resume) return start_fresh();
    if (const auto marker = finished_marker(o_.out, schedule_); !marker.is_null()) {
      // its checkpoints too: one made with other settings is not this run's, and saying "finished" would hide it
      if (const auto n = newest_checkpoint(o_.out); n > 0)
        read_trainer_state(o_.out + "/checkpoint-" + std::to_string(n), n, schedule_);
      res_.already_finished = res_.finished = true;
      res_.first_step = res_.last_step = marker["step"].get<std::int64_t>();
      return;
    }
    start_ = newest_checkpoint(o_.out);
    if (start_ == 0) {
      if (!fs::is_directory(o_.out)) throw InputError("--resume: " + o_.out + " does not exist: no run to continue there");
      // stopped (killed, out of disk space) before its first checkpoint: nothing to continue from, so it starts over
      start_fresh();
      if (log_) log_("no checkpoint-N/ in " + o_.out + " yet: starting from step 1");
      return;
    }
    const auto dir = o_.out + "/checkpoint-" + std::to_string(start_);
    const auto state = read_trainer_state(dir, start_, schedule_);
    if (o_.load_weights) o_.load_weights(dir);
    else model::load_state(*m_, *model::SafetensorsFile::open(dir + "/model.safetensors"));
    load_optimizer(opt_, params_, dir + "/optimizer.safetensors", start_);
    tokens_ = state["tokens"].get<std::int64_t>();
    r_.load_extra(dir, state, start_);
    r_.skip_to(start_);
    res_.first_step = start_ + 1;
    if (log_) log_("resuming from " + dir);
  }

  void one_step(std::int64_t step, std::chrono::steady_clock::time_point t0) {
    const double lr = lr_at(step, o_.steps, o_.warmup, o_.lr, o_.min_lr_ratio);
    opt_.zero_grad();
    StepSums s;
    {  // autocast covers forward and backward only: its cast cache must not outlive the weights' update
      model::BF16Autocast autocast(o_.precision, o_.checkpoint_activations);
      s = r_.forward_backward(step, device_);
    }
    tokens_ += s.tokens;
    run_tokens_ += s.tokens;
    const auto grad_norm = adamw_step(opt_, lr, o_.grad_clip);
    r_.after_update(step);
    model::cpu_cache::end_of_step();  // the blocks of this step's shapes stay mapped for the next
    // One host read for the step's numbers: the losses and the gradient norm (when clipping computed it).
    const auto zero = torch::zeros({}, torch::dtype(torch::kFloat64).device(device_));
    const auto read = torch::stack({s.loss_sum.to(torch::kFloat64), s.kd_sum.defined() ? s.kd_sum.to(torch::kFloat64) : zero,
                                    grad_norm.defined() ? grad_norm.to(torch::kFloat64) : zero})
                          .to(torch::kCPU);
    const double* got = read.data_ptr<double>();
    const double loss = got[0] / double(std::max<std::int64_t>(1, s.targets));
    if (s.kd_sum.defined()) res_.final_kd = got[1] / double(std::max<std::int64_t>(1, s.kd_targets));
    check_finite(step, loss, s.kd_sum.defined(), got[2]);
    res_.final_loss = r_.shown_loss(step, loss);
    double vl = -1;
    if ((o_.eval_every > 0 && (step + 1) % o_.eval_every == 0) || step + 1 == o_.steps) vl = r_.evaluate(step + 1);
    if (vl >= 0) res_.val_loss = vl;
    rows_.push_back({step + 1, loss, lr, tokens_, vl >= 0 ? std::optional<double>(vl) : std::nullopt});
    if (rows_.size() >= 50) flush_rows();
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (on_step_) on_step_({step + 1, o_.steps, res_.final_loss, lr, double(run_tokens_) / std::max(el, 1e-9), vl});
    if (o_.save_every > 0 && (step + 1) % o_.save_every == 0 && step + 1 < o_.steps) {
      flush_rows();  // the store holds every step a checkpoint has
      checkpoint(step + 1);
    }
  }

  // Before this step can be checkpointed or saved: a non-finite KD term or gradient has already made the update
  // (and so the weights) NaN while the cross-entropy, read before it, may still look fine.
  void check_finite(std::int64_t step, double loss, bool kd, double grad_norm) const {
    std::string what;
    if (!std::isfinite(loss)) what = "loss is " + std::to_string(loss);
    else if (kd && !std::isfinite(res_.final_kd)) what = "KD loss is " + std::to_string(res_.final_kd);
    else if (!std::isfinite(grad_norm)) what = "gradient norm is " + std::to_string(grad_norm);
    if (!what.empty())
      throw RuntimeFailure(o_.kind + ": the " + what + " at step " + std::to_string(step + 1) +
                           "; lower --lr or raise --warmup (checkpoints so far are kept)");
  }


  void checkpoint(std::int64_t step) {
    write_checkpoint(o_.out, step, [&](const std::string& tmp) {
      save_weights(tmp);  // copies to the host inside, the model stays on its device
      save_optimizer(opt_, params_, tmp + "/optimizer.safetensors");
      nlohmann::json state = {{"step", step}, {"tokens", tokens_}, {"schedule", schedule_},
                              {"lr", lr_at(step - 1, o_.steps, o_.warmup, o_.lr, o_.min_lr_ratio)}};
      r_.save_extra(tmp, state);
      write_file_atomic(tmp + "/trainer_state.json", state.dump(2) + "\n");
    });
  }

  void finish(std::int64_t end) {
    res_.finished = end == o_.steps;
    if (!res_.finished) {
      if (o_.save_every <= 0 || end % o_.save_every != 0) checkpoint(end);  // stopped early: a checkpoint to resume from
      return;
    }
    r_.finish();
    if (!o_.save_weights) m_->to(torch::kCPU);  // (an adapter is written from where it is; the base stays put)
    save_weights(o_.out);
    const nlohmann::json marker = {{"finished", true}, {"step", end}, {"kind", o_.kind}, {"run_id", res_.run_id},
                                   {"tokens", tokens_}, {"schedule", schedule_}};
    write_file_atomic(o_.out + "/" + kFinishedFile, marker.dump(2) + "\n");  // last: the model is whole
  }

  void save_weights(const std::string& dir) {
    if (o_.save_weights) o_.save_weights(dir);
    else model::save_hf_dir(*m_, dir, o_.tokenizer_dir);
  }

  void flush_rows() {
    dataset::insert_train_steps(store_, res_.run_id, rows_);
    rows_.clear();
  }

  dataset::Store& store_;
  model::Transformer& m_;
  torch::optim::AdamW& opt_;
  Recipe& r_;
  const LoopOptions& o_;
  torch::Device device_;
  const std::function<void(const TrainStep&)>& on_step_;
  const std::function<void(const std::string&)>& log_;
  const nlohmann::json schedule_;
  const NamedTensors params_;
  std::int64_t start_ = 0, tokens_ = 0, run_tokens_ = 0;
  std::vector<dataset::TrainStepRow> rows_;
  LoopResult res_;
};

}  // namespace

LoopResult run_loop(dataset::Store& store, model::Transformer& m, torch::optim::AdamW& opt, Recipe& recipe,
                    const LoopOptions& o, const torch::Device& device,
                    const std::function<void(const TrainStep&)>& on_step,
                    const std::function<void(const std::string&)>& log) {
  return Loop(store, m, opt, recipe, o, device, on_step, log).run();
}

}  // namespace distill::train
