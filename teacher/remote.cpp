// teacher/remote.cpp: see remote.h. Worker threads send the requests (one HTTP connection each); the calling
// thread alone turns answers into rows and writes the store, so SQLite sees one writer as with the local engine.
#include "teacher/remote.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/config_text.h"
#include "common/errors.h"
#include "common/interrupt.h"
#include "common/rng.h"
#include "common/sha256.h"
#include "dataset/samples.h"
#include "model/tokenizer.h"
#include "net/http.h"
#include "net/sse.h"

#include <nlohmann/json.hpp>

namespace distill::teacher {

using Clock = std::chrono::steady_clock;

bool is_url_teacher(std::string_view t) {
  auto starts = [&](std::string_view p) {
    if (t.size() < p.size()) return false;
    for (std::size_t i = 0; i < p.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(t[i])) != p[i]) return false;
    return true;
  };
  return starts("http://") || starts("https://");
}

dataset::ModelRow remote_model_row(const GenerateConfig& cfg) {
  const auto url = net::redact_url(net::parse_url(cfg.teacher_dir, "--teacher"));
  dataset::ModelRow m;
  m.role = cfg.role;
  m.path = url;
  m.arch = "remote:" + cfg.remote.model;
  m.sha256 = sha256_hex("distill remote teacher\n" + url + "\n" + cfg.remote.model);
  return m;
}

std::string remote_completion(const net::Choice& c) {
  if (c.reasoning && !c.reasoning->empty()) {
    std::string s = "<think>\n";
    s += *c.reasoning;
    if (s.back() != '\n') s += '\n';
    s += "</think>";
    s += c.text.rfind('\n', 0) == 0 ? "" : "\n\n";
    s += c.text;
    return s;
  }
  if (c.text.rfind("<think>", 0) == 0 || c.text.find("</think>") == std::string::npos) return c.text;
  return "<think>\n" + c.text;
}

std::optional<std::string> remote_finish_reason(const net::Choice& c, bool stop_strings_sent) {
  if (c.finish_reason == "length") return "length";
  if (c.finish_reason != "stop" && c.finish_reason != "eos") return std::nullopt;
  if (c.stop_reason) return c.stop_reason->rfind("token:", 0) == 0 ? "eos" : "stop";
  if (c.stop_reason_sent) return "eos";  // vLLM's and SGLang's null: no stop string or token ended it
  return stop_strings_sent ? "stop" : "eos";
}

namespace {

// One attempt's result.
struct Attempt {
  bool ok = false, retryable = false, fatal = false, cancelled = false;
  int status = 0;
  std::string error;
  std::optional<double> retry_after_s;
  net::Response response;
  double latency_ms = 0;
};

std::string without(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (auto p = text.find(secret); p != std::string::npos; p = text.find(secret, p + 3)) text.replace(p, secret.size(), "***");
  return text;
}

std::string clip(std::string s, std::size_t n = 300) {
  if (s.size() > n) s.resize(n), s += "...";
  return s;
}

// A non-2xx answer: the server's own message when its body is an API error, else the start of the body. The key
// is scrubbed before anything is cut, so no part of it survives.
Attempt http_error(int status, const std::string& raw_body, const std::optional<std::string>& retry_after,
                   const std::string& secret) {
  Attempt a;
  a.status = status;
  const auto body = without(raw_body, secret);
  const auto e = net::parse_error(body);
  a.error = "HTTP " + std::to_string(status) + ": " + (e ? without(e->message, secret)
                                                         : clip(body.empty() ? "(empty body)" : body));
  a.retryable = net::retryable_status(status);
  // A bad key, an empty balance (DeepSeek's 402) or an unknown model fails every request alike.
  a.fatal = status == 401 || status == 402 || status == 403 || status == 404;
  if (retry_after) a.retry_after_s = net::parse_retry_after(*retry_after, double(std::time(nullptr)));
  return a;
}

Attempt call_once(net::HttpClient& http, net::Endpoint e, bool stream, const std::string& body,
                  const net::Headers& headers, const std::atomic<bool>& cancel, const std::string& secret) {
  Attempt a;
  if (cancel.load()) return a.cancelled = true, a;
  const auto t0 = Clock::now();
  net::SseDecoder sse;
  net::StreamAccumulator acc(e);
  std::string raw, parse_failure;
  const auto path = e == net::Endpoint::chat ? "/chat/completions" : "/completions";
  auto res = http.post(path, body, "application/json", headers, [&](std::string_view bytes, const std::string& type) {
    if (cancel.load()) return false;
    // A server may answer a streamed request whole (application/json): then the body is collected as it is.
    if (!stream || type.rfind("text/event-stream", 0) != 0) return raw.append(bytes), true;
    try {
      for (auto& ev : sse.feed(bytes))
        if (!acc.done()) acc.add(ev.data);
    } catch (const InputError& x) {
      parse_failure = x.what();
      return false;
    }
    return true;
  });
  a.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  a.status = res.status;
  if (cancel.load()) return a.cancelled = true, a;
  if (res.status == 0 && parse_failure.empty()) {
    a.error = res.error;
    a.retryable = true;
    return a;
  }
  if (res.status < 200 || res.status >= 300) return http_error(res.status, res.body, res.retry_after, secret);
  const auto type = res.content_type.substr(0, res.content_type.find(';'));
  a.retryable = true;  // a mangled answer (a proxy cut it, say) may come through whole next time
  if (stream && type != "text/event-stream" && type != "application/json") {
    a.error = "expected Content-Type text/event-stream, got '" + clip(res.content_type, 80) + "'";
    return a;
  }
  if (!stream && type != "application/json") {
    a.error = "expected Content-Type application/json, got '" + clip(res.content_type, 80) + "'";
    return a;
  }
  try {
    if (stream && type == "text/event-stream") {
      if (!parse_failure.empty()) throw InputError(parse_failure);
      if (!acc.done()) throw InputError("the event stream ended before its [DONE] event");
      a.response = acc.response();
    } else {
      // A server may answer a streamed request whole (application/json); the body went to `raw` or `res.body`.
      a.response = net::parse_response(res.streamed ? raw : res.body, e);
    }
  } catch (const InputError& x) {
    a.error = std::string("malformed response: ") + x.what();
    return a;
  }
  if (a.response.choices.empty()) {
    a.error = "malformed response: no choices";
    return a;
  }
  if (a.response.choices.front().finish_reason.empty()) {
    a.error = "malformed response: choices[0] has no finish_reason";
    return a;
  }
  a.ok = true;
  a.retryable = false;
  return a;
}

// Sleeps until `until`, in short naps; false when `cancel` ended it early.
bool sleep_until(Clock::time_point until, const std::atomic<bool>& cancel) {
  while (Clock::now() < until) {
    if (cancel.load()) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(50)));
  }
  return true;
}

// Requests start no closer together than 60 / rate seconds, across all workers.
class RateLimiter {
 public:
  explicit RateLimiter(double per_minute) : gap_(per_minute > 0 ? 60.0 / per_minute : 0) {}
  // Waits for the next slot; false when `cancel` ended the wait.
  bool acquire(const std::atomic<bool>& cancel) {
    if (gap_ <= 0) return true;
    Clock::time_point slot;
    {
      std::lock_guard<std::mutex> lock(m_);
      const auto now = Clock::now();
      slot = std::max(now, next_);
      next_ = slot + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap_));
    }
    return sleep_until(slot, cancel);
  }

 private:
  double gap_;
  std::mutex m_;
  Clock::time_point next_{};
};

bool sleep_unless(double seconds, const std::atomic<bool>& cancel) {
  return sleep_until(Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)),
                     cancel);
}

struct Outcome {
  std::size_t work = 0;  // index into plan.work
  Attempt last;
  std::int64_t attempts = 0;
};

// The shared state of a run: the next sample to send, answers waiting to be stored, and the spending guard.
class Dispatch {
 public:
  Dispatch(std::size_t n_work, const RemoteTeacherConfig& rc, std::int64_t max_tokens)
      : n_work_(n_work), rc_(rc), max_tokens_(max_tokens) {}

  // The next sample to send, or nullopt when all are sent, the run is stopping, or the token budget is spent
  // (then stopped_by says so, and the requests in flight still finish: they are paid for). Waits while the
  // requests in flight could pass the budget, each reserving max-tokens plus the longest prompt billed so far.
  std::optional<std::size_t> next() {
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      if (stop.load() || drained_ || next_ >= n_work_) return std::nullopt;
      if (rc_.max_total_tokens <= 0) break;
      const auto reserve = max_tokens_ + longest_prompt_;
      if (billed_ + reserve > rc_.max_total_tokens && in_flight_ == 0) {
        if (stopped_by.empty()) stopped_by = "--max-total-tokens " + std::to_string(rc_.max_total_tokens);
        drained_ = true;
        cv_.notify_all();
        return std::nullopt;
      }
      if (billed_ + (in_flight_ + 1) * reserve <= rc_.max_total_tokens) break;
      cv_.wait_for(lock, std::chrono::milliseconds(100));
    }
    ++in_flight_;
    return next_++;
  }

  void finish(Outcome&& o) {
    std::lock_guard<std::mutex> lock(m_);
    --in_flight_;
    // Counted here, before the worker asks for its next sample, so that --max-failures stops the run at once.
    if (!o.last.ok && !o.last.cancelled && ++failed_ >= rc_.max_failures && !stop.load()) {
      stopped_by = std::to_string(failed_) + " requests failed (--max-failures); the last: " + o.last.error;
      stop = true;
    }
    if (o.last.ok && o.last.response.usage) {
      billed_ += o.last.response.usage->prompt_tokens + o.last.response.usage->completion_tokens;
      longest_prompt_ = std::max(longest_prompt_, o.last.response.usage->prompt_tokens);
    }
    done_.push_back(std::move(o));
    cv_.notify_all();
  }

  void halt(const std::string& why) {
    std::lock_guard<std::mutex> lock(m_);
    if (stopped_by.empty()) stopped_by = why;
    stop = true;
    cv_.notify_all();
  }

  // Answers ready to store (waits up to `wait` for one).
  std::vector<Outcome> take(std::chrono::milliseconds wait) {
    std::unique_lock<std::mutex> lock(m_);
    if (done_.empty()) cv_.wait_for(lock, wait);
    std::vector<Outcome> out(std::make_move_iterator(done_.begin()), std::make_move_iterator(done_.end()));
    done_.clear();
    return out;
  }

  std::int64_t billed() {
    std::lock_guard<std::mutex> lock(m_);
    return billed_;
  }

  std::atomic<bool> stop{false};
  std::string stopped_by;  // read once the workers have ended

 private:
  std::size_t n_work_;
  const RemoteTeacherConfig& rc_;
  std::int64_t max_tokens_;
  std::mutex m_;
  std::condition_variable cv_;
  std::size_t next_ = 0;
  std::int64_t in_flight_ = 0, billed_ = 0, failed_ = 0, longest_prompt_ = 0;
  bool drained_ = false;  // the token budget is spent: nothing new starts
  std::deque<Outcome> done_;
};

// Token texts as OpenAI-style logprobs name them, to ids: each id's text is its decoded piece, with a
// SentencePiece word-start mark read as the space it stands for. A text that two ids share is left unnamed.
class TokenTextMap {
 public:
  explicit TokenTextMap(const model::Tokenizer& tok) {
    for (int id = 0; id < tok.vocab_size(); ++id) {
      std::string text = tok.decode({id});
      if (text.empty()) continue;
      const auto piece = tok.piece(id);
      if (piece.rfind("\u2581", 0) == 0 && text.front() != ' ') text.insert(0, " ");
      // A byte-fallback piece (<0x41>) is only ever chosen for a byte no other piece covers, so a regular piece
      // with the same text wins; any other shared text is ambiguous.
      const bool byte = piece.size() == 6 && piece.rfind("<0x", 0) == 0 && piece.back() == '>';
      auto [it, fresh] = ids_.emplace(text, Entry{id, byte});
      if (fresh) continue;
      if (it->second.byte && !byte) it->second = Entry{id, false};
      else if (it->second.byte == byte) it->second.id = -1;
    }
  }
  std::optional<std::int64_t> id(const std::string& text) const {
    auto it = ids_.find(text);
    if (it == ids_.end() || it->second.id < 0) return std::nullopt;
    return it->second.id;
  }

 private:
  struct Entry {
    int id;     // -1: ambiguous
    bool byte;  // a byte-fallback piece
  };
  std::unordered_map<std::string, Entry> ids_;
};

// Top-k ids for each generated position, from the server's ids or through the teacher's tokenizer; nullopt when
// any position lacks k entries or a token cannot be named by exactly one id (then no logprobs are stored).
std::optional<std::vector<std::vector<std::pair<int, float>>>> topk_ids(const std::vector<net::TokenLogprob>& lps,
                                                                        std::int64_t k, const TokenTextMap* map) {
  std::vector<std::vector<std::pair<int, float>>> rows;
  rows.reserve(lps.size());
  for (const auto& pos : lps) {
    if (std::int64_t(pos.top.size()) < k) return std::nullopt;
    auto& row = rows.emplace_back();
    for (std::int64_t j = 0; j < k; ++j) {
      const auto& t = pos.top[std::size_t(j)];
      std::optional<std::int64_t> id = t.id;
      if (!id && map) id = map->id(t.token);
      if (!id || *id < 0 || *id > INT32_MAX) return std::nullopt;
      row.emplace_back(int(*id), float(t.logprob));
    }
  }
  return rows;
}

struct RemoteRun {
  const GenerateConfig& cfg;
  const GeneratePlan& plan;
  net::Url url;
  net::Endpoint endpoint;
  std::string key;  // the API key (never stored, logged or shown)
  net::Headers headers;
  std::unique_ptr<model::Tokenizer> tok;
  std::unique_ptr<TokenTextMap> token_ids;  // when --teacher-tokenizer is given
  std::optional<PromptFormat> format;  // completions: distill's prompt (the tokenizer's chat template when given)

  net::TeacherRequest request_for(const PlannedSample& w) const {
    net::TeacherRequest r;
    r.endpoint = endpoint;
    r.model = cfg.remote.model;
    const auto& problem = plan.problems[w.problem].prompt;
    r.input = endpoint == net::Endpoint::chat ? std::string(problem) + "\n" + std::string(kR1Instruction)
              : format ? format->prompt_text(problem) : r1_prompt(problem);
    r.temperature = cfg.sampling.temperature;
    r.top_p = cfg.sampling.top_p;
    r.top_k = cfg.sampling.top_k;
    r.min_p = cfg.sampling.min_p;
    r.max_tokens = cfg.sampling.max_tokens;
    r.stop = cfg.stop;
    r.seed = w.seed;
    r.top_logprobs = cfg.sampling.topk_logprobs;
    r.token_ids = cfg.remote.token_ids;
    r.stream = cfg.remote.stream;
    return r;
  }

  // One worker: sends samples until none is left, retrying each as the policy allows.
  void work(Dispatch& d, net::HttpClient& http, std::uint64_t jitter_seed) const {
    Rng rng(jitter_seed);
    RateLimiter* limiter = rate.get();
    while (auto i = d.next()) {
      const auto body = net::request_body(request_for(plan.work[*i]));
      Outcome o;
      o.work = *i;
      for (;;) {
        if (!limiter->acquire(d.stop)) {
          o.last.cancelled = true;
          break;
        }
        ++o.attempts;
        o.last = call_once(http, endpoint, cfg.remote.stream, body, headers, d.stop, key);
        o.last.error = without(o.last.error, key);
        if (o.last.ok || o.last.cancelled) break;
        if (o.last.fatal) {
          d.halt("the server answered " + o.last.error);
          break;
        }
        if (!o.last.retryable || o.attempts > cfg.remote.retries) break;
        const double wait = net::retry_delay(backoff, int(o.attempts), o.last.retry_after_s, rng.unit());
        if (!sleep_unless(wait, d.stop)) {
          o.last.cancelled = true;
          break;
        }
      }
      d.finish(std::move(o));
    }
  }

  std::unique_ptr<RateLimiter> rate;
  net::Backoff backoff;
};

// GET /models: the endpoint is reachable, the key is taken, and the model is served, before anything is written.
void preflight(const RemoteRun& run) {
  net::HttpClient http(run.url, {10, 30, 30});
  auto res = http.get("/models", run.headers);
  const auto where = net::redact_url(run.url);
  if (res.status == 0) throw RuntimeFailure("--teacher " + where + ": " + without(res.error, run.key));
  if (res.status == 401 || res.status == 403)
    throw InputError("--teacher " + where + ": the server refused the key (HTTP " + std::to_string(res.status) +
                     "; the key comes from $" + run.cfg.remote.api_key_env + ", --api-key-env)");
  if (res.status != 200) return;  // some gateways serve completions but no model list
  try {
    const auto j = nlohmann::json::parse(res.body);
    std::vector<std::string> ids;
    for (const auto& m : j.at("data")) ids.push_back(m.at("id").get<std::string>());
    if (std::find(ids.begin(), ids.end(), run.cfg.remote.model) != ids.end() || ids.empty()) return;
    std::string list;
    for (std::size_t i = 0; i < ids.size() && i < 10; ++i) list += (i ? ", " : "") + ids[i];
    throw InputError("--teacher-model '" + run.cfg.remote.model + "': " + where + " serves " + list);
  } catch (const nlohmann::json::exception&) {
    // not a model list: leave it to the completions themselves
  }
}

}  // namespace

namespace {

void check_remote(const GenerateConfig& cfg) {
  const auto& rc = cfg.remote;
  if (rc.model.empty())
    throw InputError("--teacher-model is required with a URL teacher: the model name the server serves (its /v1/models)");
  if (rc.endpoint != "chat" && rc.endpoint != "completions")
    throw InputError("--endpoint '" + rc.endpoint + "': expected chat or completions");
  if (rc.concurrency < 1 || rc.concurrency > 1024)
    throw InputError("--concurrency " + std::to_string(rc.concurrency) + ": expected 1 to 1024");
  if (rc.retries < 0) throw InputError("--retries " + std::to_string(rc.retries) + ": expected >= 0");
  if (!(rc.backoff_base_s >= 0)) throw InputError("--backoff-base: expected seconds >= 0");
  if (!(rc.request_timeout_s > 0)) throw InputError("--request-timeout: expected seconds > 0");
  if (!(rc.max_requests_per_minute >= 0)) throw InputError("--max-requests-per-minute: expected >= 0 (0: no limit)");
  if (rc.max_total_tokens < 0) throw InputError("--max-total-tokens: expected >= 0 (0: no limit)");
  if (rc.max_failures < 1) throw InputError("--max-failures: expected >= 1");
  if (rc.endpoint == "chat" && cfg.prompt_format != "auto" && !cfg.prompt_format.empty())
    throw InputError("--prompt-format " + cfg.prompt_format + ": with --endpoint chat the server applies its own chat "
                     "template; use --endpoint completions to send distill's prompt");
  const std::int64_t most = 20;  // OpenAI's cap, and vLLM's default max_logprobs
  if (cfg.sampling.topk_logprobs > most)
    throw InputError("--topk-logprobs " + std::to_string(cfg.sampling.topk_logprobs) + ": OpenAI-compatible servers "
                     "return at most " + std::to_string(most) + " per token");
  check_sampling(cfg.sampling, std::int64_t(1) << 31);
}

}  // namespace

GenerateSummary generate_remote(dataset::Store& store, const GenerateConfig& cfg, const std::string& given_config,
                                const ProgressFn& progress) {
  const auto t0 = Clock::now();
  check_remote(cfg);
  const auto& rc = cfg.remote;
  GeneratePlan plan;
  RemoteRun run{cfg, plan, net::parse_url(cfg.teacher_dir, "--teacher"),
                rc.endpoint == "chat" ? net::Endpoint::chat : net::Endpoint::completions};
  if (const char* k = std::getenv(rc.api_key_env.c_str()); k && *k) {
    run.key = k;
    run.headers.emplace_back("Authorization", "Bearer " + run.key);
  }
  if (!rc.tokenizer_dir.empty()) {
    run.tok = model::load_tokenizer(rc.tokenizer_dir);
    run.token_ids = std::make_unique<TokenTextMap>(*run.tok);
  }
  std::string format_name = "server";  // chat: the server's chat template
  if (run.endpoint == net::Endpoint::completions) {
    if (run.tok) run.format = PromptFormat::for_model(rc.tokenizer_dir, *run.tok, cfg.prompt_format);
    else if (cfg.prompt_format == "chat_template")
      throw InputError("--prompt-format chat_template with a URL teacher takes its template from --teacher-tokenizer DIR");
    format_name = run.format ? run.format->name() : "r1";
  }
  const auto config_toml = with_config_value(given_config, "prompt-format", format_name);
  const auto mr = remote_model_row(cfg);
  plan = plan_generate(store, cfg, mr.sha256, config_toml);
  GenerateSummary& sum = plan.sum;
  sum.prompt_format = format_name;
  if (plan.work.empty()) return sum;
  preflight(run);

  const auto model_id = dataset::upsert_model(store, mr);
  const auto run_id = store.begin_run("generate", config_toml);
  run.rate = std::make_unique<RateLimiter>(rc.max_requests_per_minute);
  run.backoff.base_s = rc.backoff_base_s;
  Dispatch d(plan.work.size(), rc, cfg.sampling.max_tokens);
  const auto n_workers = std::size_t(std::min<std::int64_t>(rc.concurrency, std::int64_t(plan.work.size())));
  std::vector<std::unique_ptr<net::HttpClient>> clients;
  for (std::size_t i = 0; i < n_workers; ++i)
    clients.push_back(std::make_unique<net::HttpClient>(run.url, net::HttpOptions{10, rc.request_timeout_s, 60}));
  std::atomic<std::size_t> running{n_workers};
  std::vector<std::thread> workers;
  SampleSink sink(store, cfg.commit_every, progress, sum);
  auto stop_all = [&](const std::string& why) {
    d.halt(why);
    for (auto& c : clients) c->stop();
  };
  auto store_outcome = [&](Outcome& o) {
    if (o.last.cancelled) return;  // no answer came: not recorded, the next run draws it
    const auto& w = plan.work[o.work];
    dataset::RemoteRequestRow rr;
    rr.run_id = run_id, rr.model_id = model_id, rr.problem_id = plan.problems[w.problem].id;
    rr.sample_idx = w.idx, rr.seed = std::int64_t(w.seed), rr.attempts = o.attempts, rr.http_status = o.last.status;
    rr.params_json = net::request_body(run.request_for(w), true);
    ++sum.requests;
    std::optional<std::string> finish;
    if (o.last.ok) {
      finish = remote_finish_reason(o.last.response.choices.front(), !cfg.stop.empty());
      if (!finish) o.last.error = "finish_reason '" + o.last.response.choices.front().finish_reason + "': no sample kept";
    }
    if (!o.last.ok || !finish) {
      rr.error = o.last.error;
      sink.add_request(std::move(rr));
      if (++sum.failed >= rc.max_failures)  // (HTTP failures were counted by the dispatcher already)
        stop_all(std::to_string(sum.failed) + " requests failed (--max-failures); the last: " + o.last.error);
      return;
    }
    const auto& resp = o.last.response;
    const auto& c = resp.choices.front();
    auto s = planned_row(plan, w, cfg, model_id, run_id, remote_completion(c));
    s.finish_reason = *finish;
    if (resp.usage) s.n_tokens = resp.usage->completion_tokens;
    else if (!c.logprobs.empty()) s.n_tokens = std::int64_t(c.logprobs.size());
    else s.n_tokens = std::nullopt;
    if (cfg.sampling.topk_logprobs > 0) {
      auto rows = topk_ids(c.logprobs, cfg.sampling.topk_logprobs, run.token_ids.get());
      if (rows && !rows->empty() && (!resp.usage || std::int64_t(rows->size()) == resp.usage->completion_tokens)) {
        s.topk = cfg.sampling.topk_logprobs;
        s.logprobs = dataset::encode_topk(*rows, s.topk);
        s.n_tokens = std::int64_t(rows->size());
      } else {
        ++sum.logprobs_dropped;
      }
    }
    rr.ok = true;
    rr.server_model = resp.model, rr.system_fingerprint = resp.system_fingerprint, rr.response_id = resp.id;
    if (resp.usage) rr.prompt_tokens = resp.usage->prompt_tokens, rr.completion_tokens = resp.usage->completion_tokens;
    rr.latency_ms = o.last.latency_ms;
    sink.add(std::move(s), std::move(rr));
  };
  InterruptGuard interrupt;  // Ctrl-C / SIGTERM: requests in flight are dropped, what has finished is stored
  std::exception_ptr worker_error;
  std::mutex worker_error_m;
  bool signalled = false;
  try {
    for (std::size_t i = 0; i < n_workers; ++i)
      workers.emplace_back([&, i] {
        try {
          run.work(d, *clients[i], mix_seed(cfg.seed, 0x7e7e0000u + i));
        } catch (...) {
          std::lock_guard<std::mutex> lock(worker_error_m);
          if (!worker_error) worker_error = std::current_exception();
          d.halt("a worker failed");
        }
        --running;
      });
    for (;;) {
      const bool last_round = running.load() == 0;
      for (auto& o : d.take(std::chrono::milliseconds(100))) store_outcome(o);
      if (interrupt.requested() && !signalled) signalled = true, stop_all(interrupt.signal_name());
      if (last_round) break;
    }
    for (auto& t : workers) t.join();
    workers.clear();
    for (auto& o : d.take(std::chrono::milliseconds(0))) store_outcome(o);
    sink.flush();
    if (worker_error) std::rethrow_exception(worker_error);
  } catch (...) {
    stop_all("an error");
    for (auto& t : workers) t.join();
    store.fail_run(run_id);
    throw;
  }
  sum.billed_tokens = d.billed();
  if (interrupt.requested() && sum.generated < sum.planned - sum.skipped) sum.interrupted_by = interrupt.signal_name();
  else if (!interrupt.requested()) sum.stopped_by = d.stopped_by;
  store.finish_run(run_id, sum.interrupted_by.empty() && sum.failed == 0 &&
                               (sum.stopped_by.empty() || sum.stopped_by.rfind("--max-total-tokens", 0) == 0));
  sum.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return sum;
}

}  // namespace distill::teacher
