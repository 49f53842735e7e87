// eval/run_eval.cpp: see run_eval.h.
#include "eval/run_eval.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <map>
#include <set>
#include <sstream>

#include "common/config_text.h"
#include "common/errors.h"
#include "common/interrupt.h"
#include "common/sha256.h"
#include "dataset/answer.h"
#include "dataset/evals.h"
#include "dataset/samples.h"
#include "eval/protocol.h"
#include "model/device.h"
#include "model/hf_checkpoint.h"
#include "model/tokenizer.h"
#include "teacher/engine.h"
#include "teacher/generate.h"

namespace distill::eval {

namespace {

// Samples every problem K times, scores the answers and stores each completion under rep.run_id as it comes (a
// batch's worth per transaction, so a killed eval keeps them). `prompts`: each problem's prompt ids in the model's
// format, whose response starts with `prefix`; `eos`: the ids that end a sequence. `stored`: a resumed run's rows,
// not drawn again.
void evaluate(dataset::Store& store, const EvalConfig& cfg, const std::vector<dataset::ProblemRef>& problems,
              const std::vector<std::vector<int>>& prompts, const std::string& prefix,
              const std::vector<std::int64_t>& eos,
              model::Transformer& model, const model::Tokenizer& tok, const teacher::SamplingParams& sp,
              const std::vector<dataset::EvalResult>& stored, EvalReport& rep,
              const std::function<void(std::int64_t, std::int64_t)>& progress, const InterruptGuard& interrupt) {
  std::vector<ProblemOutcome> outcomes(problems.size());
  std::map<std::int64_t, std::size_t> index;  // problem id -> position
  for (std::size_t i = 0; i < problems.size(); ++i) {
    index[problems[i].id] = i;
    outcomes[i].problem_id = problems[i].id;
    outcomes[i].difficulty = problems[i].difficulty;
    outcomes[i].gold = problems[i].answer;
    outcomes[i].correct.assign(std::size_t(cfg.samples), false);
    outcomes[i].answers.assign(std::size_t(cfg.samples), std::nullopt);
    outcomes[i].tokens.assign(std::size_t(cfg.samples), 0);
    outcomes[i].seconds.assign(std::size_t(cfg.samples), 0.0);
  }
  auto record = [&](std::size_t i, std::int64_t k, const std::string& text, std::int64_t n_tokens, double seconds) {
    const auto v = dataset::verify_completion(text, problems[i].answer);
    auto& o = outcomes[i];
    o.correct[std::size_t(k)] = v.verdict == dataset::Verdict::correct;
    o.answers[std::size_t(k)] = v.extracted;
    o.tokens[std::size_t(k)] = n_tokens;
    o.seconds[std::size_t(k)] = seconds;
    return v.verdict;
  };
  std::set<std::pair<std::size_t, std::int64_t>> have;
  for (const auto& r : stored)
    if (auto it = index.find(r.problem_id); it != index.end() && r.sample_idx >= 0 && r.sample_idx < cfg.samples) {
      record(it->second, r.sample_idx, r.completion, r.n_tokens, r.latency_ms / 1e3);
      have.insert({it->second, r.sample_idx});
    }

  struct Work {
    std::size_t problem;
    std::int64_t idx;
  };
  std::vector<Work> work;
  std::deque<teacher::GenRequest> queue;
  for (std::size_t i = 0; i < problems.size(); ++i) {
    for (std::int64_t k = 0; k < cfg.samples; ++k) {
      if (have.count({i, k})) continue;
      queue.push_back({std::int64_t(work.size()), prompts[i], teacher::sample_seed(cfg.seed, problems[i].content_hash, k)});
      work.push_back({i, k});
    }
  }
  teacher::EngineOptions eo;
  eo.max_batch = cfg.batch;
  std::int64_t longest = 0;
  for (const auto& r : queue) longest = std::max<std::int64_t>(longest, std::int64_t(r.prompt.size()));
  eo.max_seq_len = longest + cfg.max_tokens + 1;
  teacher::set_eos(eo, eos);

  std::vector<dataset::EvalRow> pending;
  auto flush = [&] {
    if (!pending.empty()) dataset::insert_eval_results(store, rep.run_id, rep.model_id, pending);
    pending.clear();
  };
  const auto total = std::int64_t(work.size());
  std::int64_t done = 0, generated = 0;
  const auto t0 = std::chrono::steady_clock::now();
  if (!queue.empty()) {
    teacher::Engine engine(model, eo);
    engine.run(std::move(queue), sp, [&](teacher::GenResult&& r) {
      const auto& w = work[std::size_t(r.id)];
      const auto text = teacher::completion_text(tok, r.tokens, {}, prefix, eos);
      const auto n = std::int64_t(r.tokens.size());
      const auto verdict = record(w.problem, w.idx, text, n, r.seconds);
      pending.push_back({problems[w.problem].id, w.idx, n, text, dataset::to_string(verdict), r.seconds * 1e3});
      generated += n;
      if (std::int64_t(pending.size()) >= cfg.batch) flush();
      if (progress) progress(++done, total);
    }, {}, [&] { return interrupt.requested(); });
  }
  flush();
  rep.completed = std::int64_t(have.size()) + done;
  rep.planned = std::int64_t(have.size()) + total;
  if (done < total && interrupt.requested()) {  // stored as far as it got; no metrics from a partial run
    rep.interrupted_by = interrupt.signal_name();
    return;
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rep.tokens_per_s = double(generated) / std::max(rep.seconds, 1e-9);
  rep.resumed = std::int64_t(have.size());
  rep.by_difficulty = summarize_by_difficulty(outcomes, cfg.k, bootstrap_seed(cfg.seed));
}

}  // namespace

EvalReport run_eval(dataset::Store& store, const EvalConfig& cfg_in, const std::string& given_config,
                    const std::function<void(std::int64_t, std::int64_t)>& progress) {
  if (cfg_in.samples < 1) throw InputError("--samples " + std::to_string(cfg_in.samples) + ": expected >= 1");
  if (cfg_in.k < 0 || cfg_in.k > cfg_in.samples)
    throw InputError("--k " + std::to_string(cfg_in.k) + ": expected 0..--samples (" + std::to_string(cfg_in.samples) +
                     "; 0: all of them)");
  if (cfg_in.batch < 1) throw InputError("--batch " + std::to_string(cfg_in.batch) + ": expected >= 1");
  if (cfg_in.limit < 0) throw InputError("--limit " + std::to_string(cfg_in.limit) + ": expected >= 0 (0: all)");
  EvalConfig cfg = cfg_in;
  if (cfg.greedy) cfg.samples = 1, cfg.k = 0;  // greedy draws are all the same: one per problem says it all
  if (!cfg.role.empty() && cfg.role != "teacher" && cfg.role != "student" && cfg.role != "baseline")
    throw InputError("--role '" + cfg.role + "': expected teacher, student or baseline");
  teacher::SamplingParams sp;
  sp.temperature = cfg.greedy ? 0.0 : cfg.temperature;
  sp.top_p = cfg.top_p;
  sp.max_tokens = cfg.max_tokens;
  const auto problems = dataset::problems_of_split(store, cfg.split, cfg.limit);
  if (problems.empty())
    throw InputError(store.path() + ": no problems in split '" + cfg.split + "' (`distill data stats --db " + store.path() +
                     "` lists the splits)");
  const torch::Device device = model::parse_device(cfg.device);
  auto model = model::load_hf_dir(cfg.model_dir, device);
  auto tok = model::load_tokenizer(cfg.model_dir);
  model->config().check_tokenizer_ids(tok->vocab_size(), model::tokenizer_file(cfg.model_dir));
  teacher::check_sampling(sp, model->config().vocab_size);
  // Every prompt tokenized once, here: the context check needs the longest before anything is written.
  const auto format = teacher::PromptFormat::for_model(cfg.model_dir, *tok, cfg.prompt_format);
  const auto eos = teacher::model_eos_ids(*tok, model->config(), cfg.model_dir);
  const auto config_toml = with_config_value(given_config, "prompt-format", format.name());  // auto's choice
  std::vector<std::vector<int>> prompts;
  std::int64_t longest = 0;
  for (const auto& p : problems) {
    prompts.push_back(format.prompt_ids(p.prompt));
    longest = std::max<std::int64_t>(longest, std::int64_t(prompts.back().size()));
  }
  teacher::check_context(model->config(), cfg.model_dir, longest, cfg.max_tokens);
  const auto sha = model::checkpoint_sha256(cfg.model_dir);
  // compare groups models by their stored role: a model keeps the one it was first stored with
  if (const auto role = dataset::model_role(store, sha); role && !cfg.role.empty() && *role != cfg.role)
    throw InputError("--role " + cfg.role + ": " + cfg.model_dir + " is in the store as a " + *role +
                     " already (same weights); evaluate it with --role " + *role + " or without --role");
  else if (cfg.role.empty())
    cfg.role = role.value_or("student");
  EvalReport rep;
  rep.n_params = model->n_params();
  rep.n_active_params = model->n_active_params();
  std::vector<dataset::EvalResult> stored;
  if (cfg.resume) {  // the same protocol or nothing: the run's completions must all answer one question
    const auto runs = dataset::unfinished_eval_runs(store, sha);
    if (runs.empty())
      throw InputError("--resume: the store holds no unfinished eval of " + cfg.model_dir +
                       " (one killed or failed after storing completions)");
    // "" when `toml` has this run's protocol, else the first difference
    auto differs = [&](std::int64_t id, const std::string& toml) -> std::string {
      const auto d = protocol_difference(toml, config_toml);
      return d.empty() ? d : "eval run " + std::to_string(id) + " was made with " + d;
    };
    std::string mismatch;
    for (const auto& [id, toml] : runs) {  // newest first: the newest with this protocol
      const auto d = differs(id, toml);
      if (d.empty()) {
        rep.run_id = id;
        break;
      }
      if (mismatch.empty()) mismatch = d;
    }
    if (!rep.run_id) throw InputError("--resume: no unfinished eval of this model has this protocol (" + mismatch + ")");
    if (const auto done = dataset::newest_finished_eval_run(store, sha); done > rep.run_id)
      throw InputError("--resume: eval run " + std::to_string(done) + " of this model finished after run " +
                       std::to_string(rep.run_id) + " began, and compare shows the newest; evaluate afresh instead");
    if (!store.claim_run(rep.run_id))  // the last check, and the first write: a refused resume writes nothing
      throw InputError("--resume: eval run " + std::to_string(rep.run_id) + " is still running in another process");
    stored = dataset::eval_results_of(store, rep.run_id);
  } else {
    rep.run_id = store.begin_run("eval", config_toml);
  }
  InterruptGuard interrupt;  // Ctrl-C / SIGTERM: store what has finished and end; `--resume` continues the run
  try {
    rep.model_id = dataset::upsert_model(store, {cfg.role, cfg.model_dir, model->config().architecture(), rep.n_params,
                                                 rep.n_active_params, sha});
    rep.prompt_format = format.name();
    evaluate(store, cfg, problems, prompts, format.response_prefix(), eos, model, *tok, sp, stored, rep, progress, interrupt);
  } catch (...) {
    store.fail_run(rep.run_id);
    throw;
  }
  // An interrupted run is recorded as failed, as a killed one is: not 'ok', so --resume finds and continues it.
  store.finish_run(rep.run_id, rep.interrupted_by.empty());
  return rep;
}


}  // namespace distill::eval
