// eval/run_eval.cpp: see run_eval.h.
#include "eval/run_eval.h"

#include <torch/torch.h>

#include <chrono>
#include <deque>

#include "common/errors.h"
#include "common/sha256.h"
#include "dataset/answer.h"
#include "dataset/evals.h"
#include "dataset/samples.h"
#include "model/device.h"
#include "model/hf_checkpoint.h"
#include "model/tokenizer.h"
#include "teacher/engine.h"
#include "teacher/generate.h"

namespace distill::eval {

namespace {

// Samples every problem K times, scores the answers and stores each completion under rep.run_id.
void evaluate(dataset::Store& store, const EvalConfig& cfg, const std::vector<dataset::ProblemRef>& problems,
              model::Transformer& model, const model::Tokenizer& tok, const teacher::SamplingParams& sp,
              EvalReport& rep, const std::function<void(std::int64_t, std::int64_t)>& progress) {
  struct Work {
    std::size_t problem;
    std::int64_t idx;
  };
  std::vector<Work> work;
  std::deque<teacher::GenRequest> queue;
  for (std::size_t i = 0; i < problems.size(); ++i) {
    auto prompt = teacher::r1_prompt_ids(tok, problems[i].prompt);
    for (std::int64_t k = 0; k < cfg.samples; ++k) {
      queue.push_back({std::int64_t(work.size()), prompt, teacher::sample_seed(cfg.seed, problems[i].id, k)});
      work.push_back({i, k});
    }
  }
  teacher::EngineOptions eo;
  eo.max_batch = cfg.batch;
  std::int64_t longest = 0;
  for (const auto& r : queue) longest = std::max<std::int64_t>(longest, std::int64_t(r.prompt.size()));
  eo.max_seq_len = longest + cfg.max_tokens + 1;
  eo.eos_id = tok.eos_id();

  std::vector<ProblemOutcome> outcomes(problems.size());
  for (std::size_t i = 0; i < problems.size(); ++i) {
    outcomes[i].problem_id = problems[i].id;
    outcomes[i].difficulty = problems[i].difficulty;
    outcomes[i].gold = problems[i].answer;
    outcomes[i].correct.assign(std::size_t(cfg.samples), false);
    outcomes[i].answers.assign(std::size_t(cfg.samples), std::nullopt);
    outcomes[i].tokens.assign(std::size_t(cfg.samples), 0);
    outcomes[i].seconds.assign(std::size_t(cfg.samples), 0.0);
  }
  // Results are written in transactions of a batch's worth; the run is one eval, stored whole at the end.
  std::vector<std::tuple<std::int64_t, std::int64_t, std::string, std::string, std::int64_t, double>> rows;
  const auto total = std::int64_t(work.size());
  std::int64_t done = 0;
  const auto t0 = std::chrono::steady_clock::now();
  {
    teacher::Engine engine(model, eo);
    engine.run(std::move(queue), sp, [&](teacher::GenResult&& r) {
      const auto& w = work[std::size_t(r.id)];
      const auto& p = problems[w.problem];
      const auto text = teacher::completion_text(tok, r.tokens);
      const auto v = dataset::verify_completion(text, p.answer);
      auto& o = outcomes[w.problem];
      o.correct[std::size_t(w.idx)] = v.verdict == dataset::Verdict::correct;
      o.answers[std::size_t(w.idx)] = v.extracted;
      o.tokens[std::size_t(w.idx)] = std::int64_t(r.tokens.size());
      o.seconds[std::size_t(w.idx)] = r.seconds;
      rows.emplace_back(p.id, w.idx, text, dataset::to_string(v.verdict), std::int64_t(r.tokens.size()), r.seconds * 1e3);
      if (progress) progress(++done, total);
    });
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::int64_t generated = 0;
  for (const auto& row : rows) generated += std::get<4>(row);
  rep.tokens_per_s = double(generated) / std::max(rep.seconds, 1e-9);
  std::vector<dataset::EvalRow> out;
  for (const auto& [pid, idx, text, verdict, n, ms] : rows) out.push_back({pid, idx, n, text, verdict, ms});
  dataset::insert_eval_results(store, rep.run_id, rep.model_id, out);
  rep.by_difficulty = summarize_by_difficulty(outcomes, cfg.k, cfg.seed ^ 0xb007ULL);
}

}  // namespace

EvalReport run_eval(dataset::Store& store, const EvalConfig& cfg_in, const std::string& config_toml,
                    const std::function<void(std::int64_t, std::int64_t)>& progress) {
  if (cfg_in.samples < 1) throw InputError("--samples " + std::to_string(cfg_in.samples) + ": expected >= 1");
  if (cfg_in.k < 0 || cfg_in.k > cfg_in.samples) throw InputError("--k must lie in 0..--samples");
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
  if (problems.empty()) throw InputError("no problems in split '" + cfg.split + "'");
  const torch::Device device = model::parse_device(cfg.device);
  auto model = model::load_hf_dir(cfg.model_dir, device);
  auto tok = model::load_tokenizer(cfg.model_dir);
  teacher::check_sampling(sp, model->config().vocab_size);
  const auto sha = sha256_file_hex(cfg.model_dir + "/model.safetensors");
  // compare groups models by their stored role: a model keeps the one it was first stored with
  if (const auto role = dataset::model_role(store, sha); role && !cfg.role.empty() && *role != cfg.role)
    throw InputError("--role " + cfg.role + ": " + cfg.model_dir + " is in the store as a " + *role +
                     " already (same weights); evaluate it with --role " + *role + " or without --role");
  else if (cfg.role.empty())
    cfg.role = role.value_or("student");
  EvalReport rep;
  rep.n_params = model->n_params();
  rep.n_active_params = model->n_active_params();
  rep.model_id = dataset::upsert_model(store, {cfg.role, cfg.model_dir, model->config().architecture(), rep.n_params,
                                               rep.n_active_params, sha});
  rep.run_id = store.begin_run("eval", config_toml);
  try {
    evaluate(store, cfg, problems, model, *tok, sp, rep, progress);
  } catch (...) {
    store.finish_run(rep.run_id, false);
    throw;
  }
  store.finish_run(rep.run_id, true);
  return rep;
}


}  // namespace distill::eval
