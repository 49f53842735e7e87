// teacher/generate.cpp: see generate.h.
#include "teacher/generate.h"

#include <torch/torch.h>

#include <chrono>
#include <algorithm>
#include <map>
#include <set>
#include <memory>
#include <cstring>
#include <charconv>
#include <filesystem>

#include "common/config_text.h"
#include "common/errors.h"
#include "common/fs.h"
#include "common/interrupt.h"
#include "common/rng.h"
#include "common/sha256.h"
#include "dataset/answer.h"
#include "dataset/samples.h"
#include "model/device.h"
#include "model/hf_checkpoint.h"
#include "model/tokenizer.h"
#include "teacher/engine.h"
#include "teacher/prompt_format.h"
#include "teacher/remote.h"

namespace distill::teacher {

namespace {
std::uint64_t hash64(std::string_view content_hash) {  // the first 16 hex digits
  std::uint64_t h = 0;
  for (std::size_t i = 0; i < 16 && i < content_hash.size(); ++i) {
    const char c = content_hash[i];
    h = h * 16 + std::uint64_t(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return h;
}
}  // namespace

std::uint64_t sample_seed(std::uint64_t base, std::string_view content_hash, std::int64_t idx) {
  return mix_seed(mix_seed(base, hash64(content_hash)), std::uint64_t(idx)) >> 2;  // fits int64 in SQLite
}

std::uint64_t legacy_sample_seed(std::uint64_t base, std::int64_t problem_id, std::int64_t idx) {
  return mix_seed(mix_seed(base, std::uint64_t(problem_id)), std::uint64_t(idx)) >> 2;
}

Shard parse_shard(std::string_view text) {
  Shard s;
  const auto slash = text.find('/');
  auto number = [&](std::string_view x, std::int64_t& out) {
    auto [end, ec] = std::from_chars(x.data(), x.data() + x.size(), out);
    return ec == std::errc{} && end == x.data() + x.size() && !x.empty();
  };
  if (slash == std::string_view::npos || !number(text.substr(0, slash), s.index) ||
      !number(text.substr(slash + 1), s.count) || s.count < 1 || s.index < 0 || s.index >= s.count)
    throw InputError("--shard '" + std::string(text) + "': expected I/N with 0 <= I < N (worker I of N), e.g. 0/4");
  return s;
}

bool in_shard(const Shard& s, std::string_view content_hash) {
  // Not the seed's bits: mixed once more, so a shard is not also a band of seeds.
  return s.count <= 1 || std::int64_t(mix_seed(hash64(content_hash), 0x5a4d) % std::uint64_t(s.count)) == s.index;
}

void check_context(const model::ModelConfig& c, const std::string& model_dir, std::int64_t longest_prompt,
                   std::int64_t max_tokens) {
  const auto limit = c.max_position_embeddings;
  if (longest_prompt + max_tokens <= limit) return;
  throw InputError("--max-tokens " + std::to_string(max_tokens) + ": the longest prompt (" +
                   std::to_string(longest_prompt) + " tokens) plus the completion would pass " + model_dir +
                   "'s context of " + std::to_string(limit) + " positions (max_position_embeddings); " +
                   (limit > longest_prompt ? "--max-tokens " + std::to_string(limit - longest_prompt) + " fits"
                                           : std::string("the prompt alone is too long")));
}

std::string completion_text(const model::Tokenizer& tok, std::vector<int> tokens, const std::vector<std::string>& stop,
                            std::string_view prefix, const std::vector<std::int64_t>& more_eos) {
  if (!tokens.empty() && (tokens.back() == tok.eos_id() ||
                          std::find(more_eos.begin(), more_eos.end(), tokens.back()) != more_eos.end()))
    tokens.pop_back();
  std::string text = tok.decode(tokens);
  cut_at_stop(text, stop);
  text.insert(0, prefix);
  return text;
}

std::optional<std::string> cut_at_stop(std::string& text, const std::vector<std::string>& stops) {
  std::size_t cut = std::string::npos;
  std::optional<std::string> hit;
  for (const auto& s : stops)
    if (auto p = text.find(s); !s.empty() && p != std::string::npos && p < cut) cut = p, hit = s;
  if (hit) text.resize(cut);
  return hit;
}

std::function<bool(const std::vector<int>&)> stop_rule(const model::Tokenizer& tok, std::vector<std::string> stops) {
  if (stops.empty()) return {};
  return [&tok, stops = std::move(stops)](const std::vector<int>& ids) {
    const std::string text = tok.decode(ids);
    for (const auto& s : stops)
      if (!s.empty() && text.find(s) != std::string::npos) return true;
    return false;
  };
}

std::vector<std::int64_t> model_eos_ids(const model::Tokenizer& tok, const model::ModelConfig& c, const std::string& dir) {
  std::set<std::int64_t> ids;
  if (tok.eos_id() >= 0) ids.insert(tok.eos_id());
  if (c.eos_token_id >= 0) ids.insert(c.eos_token_id);
  // config.json may list several (ModelConfig keeps the first); its eos_token_id reads as generation_config's does.
  const auto cfg_path = (std::filesystem::path(dir) / "config.json").string();
  if (std::filesystem::exists(cfg_path))
    for (auto id : model::parse_generation_config(read_file(cfg_path), cfg_path).eos_token_ids) ids.insert(id);
  for (auto id : model::read_generation_config(dir).eos_token_ids) ids.insert(id);
  return {ids.begin(), ids.end()};
}

void set_eos(EngineOptions& eo, const std::vector<std::int64_t>& ids) {
  eo.eos_id = ids.empty() ? -1 : ids.front();
  eo.more_eos_ids.assign(ids.empty() ? ids.end() : ids.begin() + 1, ids.end());
}

GeneratePlan plan_generate(dataset::Store& store, const GenerateConfig& cfg, const std::string& model_sha256,
                           const std::string& config_toml) {
  if (cfg.samples < 1) throw InputError("--samples " + std::to_string(cfg.samples) + ": expected >= 1");
  if (cfg.commit_every < 1) throw InputError("--commit-every " + std::to_string(cfg.commit_every) + ": expected >= 1");
  if (cfg.limit < 0) throw InputError("--limit " + std::to_string(cfg.limit) + ": expected >= 0 (0: all)");
  GeneratePlan plan;
  plan.problems = dataset::problems_of_split(store, cfg.split, cfg.limit);
  if (plan.problems.empty()) throw InputError("the store has no problems in split '" + cfg.split + "'");
  const auto known_id = dataset::model_id_of(store, model_sha256);
  const auto done = known_id ? dataset::stored_sample_keys(store, *known_id) : dataset::StoredSampleKeys{};
  auto& sum = plan.sum;
  // A stored sample under this run's key is skipped: the run resumes. One drawn with other settings is another
  // run's, and skipping it would quietly draw nothing new, so the run is refused.
  std::int64_t foreign = 0;
  const dataset::StoredSampleSettings* example = nullptr;
  std::map<std::int64_t, bool> drawn_by;  // runs whose samples this one would keep -> both greedy
  for (std::size_t i = 0; i < plan.problems.size(); ++i) {
    const auto& prob = plan.problems[i];
    if (!in_shard(cfg.shard, prob.content_hash)) continue;
    for (std::int64_t k = 0; k < cfg.samples; ++k) {
      const auto seed = sample_seed(cfg.seed, prob.content_hash, k);
      ++sum.planned;
      auto it = done.find({prob.id, k, std::int64_t(seed)});
      if (it == done.end()) it = done.find({prob.id, k, std::int64_t(legacy_sample_seed(cfg.seed, prob.id, k))});
      if (it != done.end()) {
        const auto& was = it->second;
        const bool greedy = is_greedy(cfg.sampling) && was.temperature < kGreedyBelowTemperature;  // filters moot
        if ((!greedy && (was.temperature != cfg.sampling.temperature || was.top_p != cfg.sampling.top_p)) ||
            was.max_tokens != cfg.sampling.max_tokens || (cfg.sampling.topk_logprobs > 0 && !was.has_logprobs))
          ++foreign, example = &was;
        else
          drawn_by[was.run_id] = greedy;
        ++sum.skipped;
        continue;
      }
      plan.work.push_back({i, k, seed});
    }
  }
  // The settings a sample row does not hold, from the config of the run that drew it.
  const auto now = config_values(config_toml);
  for (const auto& [run, greedy] : drawn_by) {
    const auto before = config_values(dataset::run_config_toml(store, run));
    for (const char* key : {"top-k", "min-p", "stop", "topk-logprobs", "prompt-format", "endpoint"}) {
      if (greedy && (std::string(key) == "top-k" || std::string(key) == "min-p")) continue;  // moot when greedy
      const auto x = before.find(key), y = now.find(key);
      if (x == before.end() || y == now.end() || same_value(x->second, y->second)) continue;
      if (std::string(key) == "prompt-format" && x->second == "auto") continue;  // stored unresolved by older runs
      throw InputError("samples planned here are stored already under these seeds, drawn by generate run " +
                       std::to_string(run) + " with " + key + " = " + x->second + " (this run has " + y->second +
                       "): this run would keep them and draw nothing new for them. Draw afresh with another --seed, "
                       "or repeat those settings to resume");
    }
  }
  if (foreign)
    throw InputError(std::to_string(foreign) + " of the planned samples are stored already under these seeds, drawn " +
                     "with temperature " + number_text(example->temperature) + ", top-p " + number_text(example->top_p) +
                     ", max-tokens " + std::to_string(example->max_tokens) +
                     (example->has_logprobs ? "" : ", without top-k logprobs") + ": this run would keep them and draw " +
                     "nothing new for them. Draw afresh with another --seed, or repeat those settings to resume");
  return plan;
}

dataset::SampleRow planned_row(const GeneratePlan& plan, const PlannedSample& w, const GenerateConfig& cfg,
                               std::int64_t model_id, std::int64_t run_id, std::string completion) {
  dataset::SampleRow s;
  s.problem_id = plan.problems[w.problem].id;
  s.model_id = model_id;
  s.run_id = run_id;
  s.sample_idx = w.idx;
  s.seed = std::int64_t(w.seed);
  s.temperature = cfg.sampling.temperature;
  s.top_p = cfg.sampling.top_p;
  s.max_tokens = cfg.sampling.max_tokens;
  s.completion = std::move(completion);
  dataset::set_verification(s, dataset::verify_completion(s.completion, plan.problems[w.problem].answer));
  return s;
}

void SampleSink::add(dataset::SampleRow&& row) {
  ++sum_.generated;
  if (row.n_tokens) sum_.tokens += *row.n_tokens;
  if (row.verdict == "correct") ++sum_.correct;
  rows_.push_back(std::move(row));
  if (std::int64_t(rows_.size()) >= commit_every_) flush();
  if (progress_) progress_(sum_.generated, sum_.planned - sum_.skipped, sum_.tokens);
}

void SampleSink::add(dataset::SampleRow&& row, dataset::RemoteRequestRow&& lineage) {
  requests_.push_back(std::move(lineage));
  add(std::move(row));  // flushes both, or neither
}

void SampleSink::add_request(dataset::RemoteRequestRow&& r) {
  requests_.push_back(std::move(r));
  if (std::int64_t(requests_.size()) >= commit_every_) flush();
}

void SampleSink::flush() {
  if (rows_.empty() && requests_.empty()) return;
  dataset::insert_samples(store_, rows_, requests_);
  rows_.clear();
  requests_.clear();
}

LoadedTeacher load_teacher(const std::string& dir, const std::string& device) {
  LoadedTeacher t{model::load_hf_dir(dir, model::parse_device(device)), model::load_tokenizer(dir), {}};
  t.model->config().check_tokenizer_ids(t.tok->vocab_size(), model::tokenizer_file(dir));
  t.eos = model_eos_ids(*t.tok, t.model->config(), dir);
  return t;
}

namespace {

GenerateSummary generate_local(dataset::Store& store, const GenerateConfig& cfg, const std::string& given_config,
                               const ProgressFn& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  if (cfg.batch < 1) throw InputError("--batch " + std::to_string(cfg.batch) + ": expected >= 1");
  auto [model, tok, eos] = load_teacher(cfg.teacher_dir, cfg.device);
  check_sampling(cfg.sampling, model->config().vocab_size);

  dataset::ModelRow mr;
  mr.role = cfg.role;
  mr.path = std::filesystem::absolute(cfg.teacher_dir).string();
  mr.arch = model->config().architecture();
  mr.n_params = model->n_params();
  mr.n_active_params = model->n_active_params();
  mr.sha256 = model::checkpoint_sha256(cfg.teacher_dir);
  const auto format = PromptFormat::for_model(cfg.teacher_dir, *tok, cfg.prompt_format);
  const auto config_toml = with_config_value(given_config, "prompt-format", format.name());  // auto's choice
  // The model's row is written only once every check below has passed: a refused run leaves the store as it was.
  auto plan = plan_generate(store, cfg, mr.sha256, config_toml);
  GenerateSummary& sum = plan.sum;
  sum.prompt_format = format.name();
  if (plan.work.empty()) return sum;

  std::deque<GenRequest> queue;
  std::vector<int> prompt;  // tokenized once per problem
  std::size_t prompt_of = SIZE_MAX;
  std::int64_t longest = 0;
  for (std::size_t i = 0; i < plan.work.size(); ++i) {
    const auto& w = plan.work[i];
    if (w.problem != prompt_of) prompt = format.prompt_ids(plan.problems[w.problem].prompt), prompt_of = w.problem;
    longest = std::max<std::int64_t>(longest, std::int64_t(prompt.size()));
    queue.push_back({std::int64_t(i), prompt, w.seed});
  }
  check_context(model->config(), cfg.teacher_dir, longest, cfg.sampling.max_tokens);
  const auto model_id = dataset::upsert_model(store, mr);
  const auto run_id = store.begin_run("generate", config_toml);
  EngineOptions eo;
  eo.max_batch = cfg.batch;
  eo.max_seq_len = longest + cfg.sampling.max_tokens + 1;
  set_eos(eo, eos);
  std::unique_ptr<Engine> engine;  // made inside the try: its KV cache may not fit
  SampleSink sink(store, cfg.commit_every, progress, sum);
  const auto stop_fn = stop_rule(*tok, cfg.stop);
  InterruptGuard interrupt;  // Ctrl-C / SIGTERM: store what has finished, then end (a rerun draws the rest)
  try {
    engine = std::make_unique<Engine>(model, eo);
    engine->run(std::move(queue), cfg.sampling, [&](GenResult&& r) {
      // a stop string itself is not part of the completion
      auto text = completion_text(*tok, r.tokens, r.finish_reason == "stop" ? cfg.stop : std::vector<std::string>{},
                                  format.response_prefix(), eos);
      auto s = planned_row(plan, plan.work[std::size_t(r.id)], cfg, model_id, run_id, std::move(text));
      s.n_tokens = std::int64_t(r.tokens.size());
      s.finish_reason = r.finish_reason;
      if (cfg.sampling.topk_logprobs > 0) {
        s.topk = cfg.sampling.topk_logprobs;
        s.logprobs = dataset::encode_topk(r.topk, s.topk);
      }
      sink.add(std::move(s));
    }, stop_fn, [&] { return interrupt.requested(); });
    sink.flush();
  } catch (...) {
    store.fail_run(run_id);
    throw;
  }
  if (interrupt.requested() && sum.generated < sum.planned - sum.skipped) sum.interrupted_by = interrupt.signal_name();
  store.finish_run(run_id, sum.interrupted_by.empty());
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

}  // namespace

GenerateSummary run_generate(dataset::Store& store, const GenerateConfig& cfg, const std::string& config_toml,
                             const ProgressFn& progress) {
  if (is_url_teacher(cfg.teacher_dir)) return generate_remote(store, cfg, config_toml, progress);
  return generate_local(store, cfg, config_toml, progress);
}

}  // namespace distill::teacher
