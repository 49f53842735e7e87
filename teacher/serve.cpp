// teacher/serve.cpp: see serve.h. HTTP threads parse and check a request, queue its sequences (one per choice)
// for the engine thread, and wait on the request's Job for tokens: whole answers once all choices end, streams
// chunk by chunk as tokens arrive. The engine thread alone touches the model.
#include "teacher/serve.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "common/interrupt.h"
#include "net/http.h"
#include "net/openai_wire.h"
#include "teacher/engine.h"
#include "teacher/generate.h"
#include "teacher/prompt_format.h"

namespace distill::teacher {

namespace {

using Clock = std::chrono::steady_clock;

// One choice of a request, as the engine fills it.
struct ChoiceState {
  std::vector<int> tokens;
  std::vector<float> logprobs;
  std::vector<std::vector<std::pair<int, float>>> topk;
  std::string finish;  // the engine's: eos | stop | length | abort ("" while running)
};

// One HTTP request's sequences.
struct Job {
  std::mutex m;
  std::condition_variable cv;
  std::vector<ChoiceState> choices;
  std::shared_ptr<std::atomic<bool>> abandoned = std::make_shared<std::atomic<bool>>(false);
  std::int64_t done = 0;
};

// The engine's admission queue: bounded, closed on shutdown.
class Admission : public RequestSource {
 public:
  explicit Admission(std::int64_t capacity) : capacity_(capacity) {}
  // All of `reqs` or none (a request's choices join together).
  bool push(std::vector<GenRequest>&& reqs) {
    std::lock_guard<std::mutex> lock(m_);
    if (closed_ || std::int64_t(q_.size() + reqs.size()) > capacity_) return false;
    for (auto& r : reqs) q_.push_back(std::move(r));
    cv_.notify_all();
    return true;
  }
  std::int64_t waiting() override {
    std::lock_guard<std::mutex> lock(m_);
    return std::int64_t(q_.size());
  }
  std::vector<GenRequest> take(std::int64_t n) override {
    std::lock_guard<std::mutex> lock(m_);
    std::vector<GenRequest> out;
    while (!q_.empty() && std::int64_t(out.size()) < n) out.push_back(std::move(q_.front())), q_.pop_front();
    return out;
  }
  bool wait() override {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait(lock, [&] { return closed_ || !q_.empty(); });
    return !q_.empty() || !closed_;
  }
  void close() {
    std::lock_guard<std::mutex> lock(m_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  std::int64_t capacity_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<GenRequest> q_;
  bool closed_ = false;
};

net::HttpReply error_reply(int status, const std::string& message, const std::string& type, const std::string& param = "",
                           const std::string& code = "") {
  net::HttpReply r;
  r.status = status;
  r.body = net::error_body(message, type, param, code);
  return r;
}

class Server {
 public:
  explicit Server(const ServeConfig& cfg) : cfg_(cfg), admission_(cfg.max_queue) {
    check();
    auto t = load_teacher(cfg.model_dir, cfg.device);
    model_ = t.model;
    tok_ = std::move(t.tok);
    eos_ = t.eos;
    format_ = PromptFormat::for_model(cfg.model_dir, *tok_, cfg.prompt_format);
    name_ = cfg.served_name.empty() ? std::filesystem::path(cfg.model_dir).lexically_normal().filename().string()
                                    : cfg.served_name;
    if (name_.empty()) name_ = std::filesystem::absolute(cfg.model_dir).parent_path().filename().string();
    EngineOptions eo;
    eo.max_batch = cfg.batch;
    eo.max_seq_len = cfg.max_seq_len > 0 ? cfg.max_seq_len : model_->config().max_position_embeddings;
    set_eos(eo, eos_);
    engine_ = std::make_unique<Engine>(model_, eo);
    if (!cfg.api_key_env.empty()) {
      const char* k = std::getenv(cfg.api_key_env.c_str());
      if (!k || !*k) throw InputError("--api-key-env " + cfg.api_key_env + ": the variable is not set (or empty)");
      key_ = k;
    }
  }

  void run(const std::function<void(const std::string&)>& listening) {
    net::ServerOptions so;
    so.threads = std::size_t(cfg_.http_threads);
    so.max_body_bytes = std::size_t(cfg_.max_body_bytes);
    so.error_body = [](int status, const std::string& message) {
      return net::error_body(message, status == 404 ? "NotFoundError" : status == 413 ? "invalid_request_error"
                                                                                      : "server_error");
    };
    net::HttpServer http(so);
    http.route("GET", "/health", [this](const net::HttpRequest&) {
      net::HttpReply r;
      r.status = draining_ ? 503 : 200;
      r.body = draining_ ? R"({"status": "shutting down"})" : R"({"status": "ok"})";
      return r;
    });
    http.route("GET", "/v1/models", [this](const net::HttpRequest& req) {
      if (auto denied = authorize(req)) return *denied;
      net::HttpReply r;
      r.body = models_body();
      return r;
    });
    http.route("POST", "/v1/chat/completions", [this](const net::HttpRequest& req) { return complete(req, net::Endpoint::chat); });
    http.route("POST", "/v1/completions", [this](const net::HttpRequest& req) { return complete(req, net::Endpoint::completions); });
    const int port = http.bind(cfg_.host, cfg_.port);

    std::exception_ptr engine_error;
    std::thread engine_thread([&] {
      try {
        engine_->run(admission_, SamplingParams{}, [this](GenResult&& r) { finish(std::move(r)); });
      } catch (...) {
        engine_error = std::current_exception();
        {
          std::lock_guard<std::mutex> lock(jobs_m_);
          dead_ = true;  // complete() refuses from now on
        }
        admission_.close();
        fail_all();  // the requests waiting on it end with an error instead of waiting forever
        http.stop();
      }
    });
    InterruptGuard interrupt;
    std::atomic<bool> served{false};
    std::thread watcher([&] {
      while (!served.load() && !interrupt.requested()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (served.load()) return;
      std::cerr << "serve: " << interrupt.signal_name() << ": finishing the requests in flight\n";
      draining_ = true;
      const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(cfg_.shutdown_grace_s));
      bool abandoned = false;
      while (!served.load()) {
        http.stop();  // no new connections (again: a stop before the listen loop runs is not kept)
        if (!abandoned && Clock::now() >= until) abandon_all(), abandoned = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
    auto join_all = [&] {
      served = true;
      watcher.join();
      admission_.close();
      engine_thread.join();
    };
    const auto url = "http://" + (cfg_.host.find(':') != std::string::npos ? "[" + cfg_.host + "]" : cfg_.host) + ":" +
                     std::to_string(port) + "/v1";
    try {
      listening(url);
      http.serve();
    } catch (...) {
      join_all();
      throw;
    }
    join_all();
    if (engine_error) std::rethrow_exception(engine_error);
  }

 private:
  void check() const {
    if (cfg_.batch < 1) throw InputError("--batch " + std::to_string(cfg_.batch) + ": expected >= 1");
    if (cfg_.max_queue < 1) throw InputError("--max-queue " + std::to_string(cfg_.max_queue) + ": expected >= 1");
    if (cfg_.http_threads < 1) throw InputError("--http-threads: expected >= 1");
    if (cfg_.max_body_bytes < 1024) throw InputError("--max-body-bytes: expected >= 1024");
    if (cfg_.port < 0 || cfg_.port > 65535) throw InputError("--port " + std::to_string(cfg_.port) + ": expected 0 to 65535");
    if (cfg_.max_seq_len < 0) throw InputError("--max-seq-len: expected >= 0 (0: the model's context)");
  }

  std::string models_body() const;

  std::optional<net::HttpReply> authorize(const net::HttpRequest& req) const {
    if (key_.empty() || net::same_secret(req.header("Authorization"), "Bearer " + key_)) return std::nullopt;
    return error_reply(401, "Incorrect API key provided (send Authorization: Bearer with the server's key).",
                       "invalid_request_error", "", "invalid_api_key");
  }

  void abandon_all() {
    std::lock_guard<std::mutex> lock(jobs_m_);
    for (auto& [id, j] : jobs_) j.first->abandoned->store(true);
  }

  // The engine is gone: every sequence it held ends as aborted.
  void fail_all() {
    std::lock_guard<std::mutex> lock(jobs_m_);
    for (auto& [id, j] : jobs_) {
      std::lock_guard<std::mutex> jl(j.first->m);
      auto& c = j.first->choices[j.second];
      if (c.finish.empty()) c.finish = "abort", ++j.first->done;
      j.first->cv.notify_all();
    }
    jobs_.clear();
  }

  // The engine's result for sequence `r.id`: the choice ends.
  void finish(GenResult&& r) {
    std::shared_ptr<Job> job;
    std::size_t idx = 0;
    {
      std::lock_guard<std::mutex> lock(jobs_m_);
      auto it = jobs_.find(r.id);
      if (it == jobs_.end()) return;
      job = it->second.first;
      idx = it->second.second;
      jobs_.erase(it);
    }
    std::lock_guard<std::mutex> lock(job->m);
    auto& c = job->choices[idx];
    c.tokens = std::move(r.tokens);
    c.logprobs = std::move(r.token_logprobs);
    c.topk = std::move(r.topk);
    c.finish = r.finish_reason;
    ++job->done;
    job->cv.notify_all();
  }

  // The text of a choice so far: EOS dropped, cut before the first stop string.
  struct Text {
    std::string text;
    std::optional<std::string> stop;  // the stop string that ended it
  };
  Text text_of(const std::vector<int>& tokens, const std::vector<std::string>& stops) const {
    std::vector<int> ids = tokens;
    if (!ids.empty() && std::find(eos_.begin(), eos_.end(), ids.back()) != eos_.end()) ids.pop_back();
    Text t{tok_->decode(ids), std::nullopt};
    t.stop = cut_at_stop(t.text, stops);
    return t;
  }

  net::TopLogprob named(int id, float lp, bool token_ids) const {
    if (token_ids) return {"token_id:" + std::to_string(id), id, lp};
    auto text = tok_->decode({id});
    return {text.empty() ? tok_->piece(id) : text, id, lp};  // EOS and other specials by name
  }

  std::vector<net::TokenLogprob> logprobs_of(const ChoiceState& c, std::size_t from, std::size_t to, bool token_ids) const {
    std::vector<net::TokenLogprob> out;
    for (std::size_t i = from; i < to && i < c.tokens.size(); ++i) {
      net::TokenLogprob t{named(c.tokens[i], c.logprobs[i], token_ids), {}};
      if (i < c.topk.size())
        for (const auto& [id, lp] : c.topk[i]) t.top.push_back(named(id, lp, token_ids));
      out.push_back(std::move(t));
    }
    return out;
  }

  static std::string finish_name(const std::string& engine_reason) {
    return engine_reason == "length" ? "length" : engine_reason == "abort" ? "abort" : "stop";
  }

  net::HttpReply complete(const net::HttpRequest& req, net::Endpoint e);
  net::HttpReply whole(const std::shared_ptr<Job>& job, const net::Request& r, net::Endpoint e, const net::ServedHeader& h,
                       std::int64_t prompt_tokens);
  net::HttpReply streamed(const std::shared_ptr<Job>& job, const net::Request& r, net::Endpoint e,
                          const net::ServedHeader& h, std::int64_t prompt_tokens);

  const ServeConfig& cfg_;
  model::Transformer model_{nullptr};
  std::unique_ptr<model::Tokenizer> tok_;
  std::vector<std::int64_t> eos_;
  PromptFormat format_;
  std::string name_, key_;
  std::unique_ptr<Engine> engine_;
  Admission admission_;
  std::atomic<bool> draining_{false};
  bool dead_ = false;  // the engine failed (under jobs_m_)
  std::mutex jobs_m_;
  std::unordered_map<std::int64_t, std::pair<std::shared_ptr<Job>, std::size_t>> jobs_;  // sequence id -> choice
  std::atomic<std::int64_t> next_id_{0};
  std::atomic<std::uint64_t> request_count_{0};
};

std::string Server::models_body() const {
  nlohmann::json m = {{"id", name_}, {"object", "model"}, {"created", 0}, {"owned_by", "distill"},
                      {"max_model_len", engine_->max_seq_len()}};
  return nlohmann::json{{"object", "list"}, {"data", nlohmann::json::array({m})}}.dump();
}

net::HttpReply Server::complete(const net::HttpRequest& req, net::Endpoint e) {
  if (auto denied = authorize(req)) return *denied;
  if (draining_) return error_reply(503, "the server is shutting down", "server_error");
  net::Request r;
  try {
    r = net::parse_request(req.body, e);
  } catch (const net::RequestError& x) {
    return error_reply(400, x.message, "invalid_request_error", x.param);
  }
  if (r.model != name_)
    return error_reply(404, "The model `" + r.model + "` does not exist (this server serves `" + name_ + "`).",
                       "NotFoundError", "model", "model_not_found");
  std::vector<int> prompt;
  if (e == net::Endpoint::chat) {
    std::vector<std::pair<std::string, std::string>> turns;
    for (const auto& m : r.messages) turns.emplace_back(m.role, m.content);
    prompt = format_.chat_ids(turns);
  } else {
    prompt = tok_->encode_with_specials(r.prompt);
  }
  const auto limit = engine_->max_seq_len();
  const auto n_prompt = std::int64_t(prompt.size());
  if (prompt.empty()) return error_reply(400, "the prompt is empty", "invalid_request_error", e == net::Endpoint::chat ? "messages" : "prompt");
  if (!r.max_tokens_given && e == net::Endpoint::chat) r.max_tokens = std::max<std::int64_t>(1, limit - n_prompt - 1);
  if (n_prompt + r.max_tokens >= limit)
    return error_reply(400, "This model's maximum context length is " + std::to_string(limit - 1) + " tokens. However, you "
                       "requested " + std::to_string(n_prompt + r.max_tokens) + " tokens (" + std::to_string(n_prompt) +
                       " in the " + (e == net::Endpoint::chat ? "messages" : "prompt") + ", " +
                       std::to_string(r.max_tokens) + " in the completion).",
                       "invalid_request_error", n_prompt >= limit - 1 ? (e == net::Endpoint::chat ? "messages" : "prompt") : "max_tokens");
  auto params = std::make_shared<SamplingParams>();
  params->temperature = r.temperature;
  params->top_p = r.top_p;
  params->top_k = r.top_k;
  params->min_p = r.min_p;
  params->max_tokens = r.max_tokens;
  params->topk_logprobs = r.logprobs || r.top_logprobs > 0 ? r.top_logprobs : 0;
  try {
    check_sampling(*params, model_->config().vocab_size);
  } catch (const InputError& x) {
    return error_reply(400, x.what(), "invalid_request_error");
  }
  auto job = std::make_shared<Job>();
  job->choices.resize(std::size_t(r.n));
  std::uint64_t base_seed = r.seed ? std::uint64_t(*r.seed) : std::random_device{}() * 0x100000000ull + std::random_device{}();
  std::vector<GenRequest> seqs;
  std::vector<std::int64_t> ids;
  for (std::int64_t i = 0; i < r.n; ++i) {
    GenRequest g;
    g.id = next_id_++;
    g.prompt = prompt;
    g.seed = base_seed + std::uint64_t(i);
    g.params = params;
    g.abandoned = job->abandoned;
    g.stop = stop_rule(*tok_, r.stop);
    if (r.stream) {
      g.on_token = [job, i](const GenResult& res) {
        std::lock_guard<std::mutex> lock(job->m);
        auto& c = job->choices[std::size_t(i)];
        c.tokens.push_back(res.tokens.back());
        c.logprobs.push_back(res.token_logprobs.back());
        if (!res.topk.empty()) c.topk.push_back(res.topk.back());
        job->cv.notify_all();
      };
    }
    ids.push_back(g.id);
    seqs.push_back(std::move(g));
  }
  {
    std::lock_guard<std::mutex> lock(jobs_m_);
    if (dead_) return error_reply(503, "the server's engine failed; it is shutting down", "server_error");
    for (std::int64_t i = 0; i < r.n; ++i) jobs_[ids[std::size_t(i)]] = {job, std::size_t(i)};
  }
  if (!admission_.push(std::move(seqs))) {
    std::lock_guard<std::mutex> lock(jobs_m_);
    for (auto id : ids) jobs_.erase(id);
    return error_reply(503, "the server is at capacity (" + std::to_string(cfg_.max_queue) +
                       " sequences waiting); retry later", "server_error", "", "overloaded");
  }
  net::ServedHeader h;
  h.id = std::string(e == net::Endpoint::chat ? "chatcmpl-" : "cmpl-") + std::to_string(++request_count_);
  h.model = name_;
  h.created = std::int64_t(std::time(nullptr));
  return r.stream ? streamed(job, r, e, h, n_prompt) : whole(job, r, e, h, n_prompt);
}

net::HttpReply Server::whole(const std::shared_ptr<Job>& job, const net::Request& r, net::Endpoint e,
                             const net::ServedHeader& h, std::int64_t prompt_tokens) {
  std::unique_lock<std::mutex> lock(job->m);
  job->cv.wait(lock, [&] { return job->done == std::int64_t(job->choices.size()); });
  std::vector<net::ServedChoice> out;
  net::Usage usage{prompt_tokens, 0};
  for (const auto& c : job->choices) {
    if (c.finish == "abort") return error_reply(503, "the request was aborted (the server is shutting down, or its engine failed)", "server_error");
    auto t = text_of(c.tokens, r.stop);
    net::ServedChoice sc{t.text, finish_name(c.finish), c.finish == "stop" ? t.stop : std::nullopt, {}};
    if (r.logprobs || r.top_logprobs > 0) sc.logprobs = logprobs_of(c, 0, c.tokens.size(), r.token_ids);
    usage.completion_tokens += std::int64_t(c.tokens.size());
    out.push_back(std::move(sc));
  }
  net::HttpReply reply;
  reply.body = net::response_body(e, h, out, usage, r.logprobs || r.top_logprobs > 0);
  return reply;
}

net::HttpReply Server::streamed(const std::shared_ptr<Job>& job, const net::Request& r, net::Endpoint e,
                                const net::ServedHeader& h, std::int64_t prompt_tokens) {
  net::HttpReply reply;
  reply.content_type = "text/event-stream";
  reply.headers.emplace_back("Cache-Control", "no-cache");
  reply.stream = [this, job, r, e, h, prompt_tokens](const std::function<bool(std::string_view)>& write) {
    auto send = [&](const std::string& data) { return write("data: " + data + "\n\n"); };
    const bool with_lp = r.logprobs || r.top_logprobs > 0;
    std::size_t hold = 0;  // text held back while it may be the start of a stop string
    for (const auto& s : r.stop) hold = std::max(hold, s.size() ? s.size() - 1 : 0);
    struct Sent {
      std::size_t tokens = 0, bytes = 0;
      bool opened = false, closed = false;
    };
    std::vector<Sent> sent(job->choices.size());
    std::int64_t completion_tokens = 0;
    for (;;) {
      std::vector<std::string> events;
      bool all_closed = true;
      {
        std::unique_lock<std::mutex> lock(job->m);
        job->cv.wait_for(lock, std::chrono::milliseconds(200));
        for (std::size_t i = 0; i < job->choices.size(); ++i) {
          auto& c = job->choices[i];
          auto& s = sent[i];
          if (s.closed) continue;
          const bool ended = !c.finish.empty();
          if (!ended && c.tokens.size() == s.tokens && s.opened) {
            all_closed = false;
            continue;
          }
          auto t = text_of(c.tokens, r.stop);
          // Only whole characters, and (until the end) nothing that may yet turn out to be a stop string.
          std::size_t upto = t.text.size();
          if (!ended) {
            upto = upto > hold ? upto - hold : 0;
            while (upto > s.bytes && upto < t.text.size() && (static_cast<unsigned char>(t.text[upto]) & 0xC0) == 0x80) --upto;
            // Tokens that end inside a character decode to U+FFFD (one per byte) until the rest arrives.
            while (upto >= s.bytes + 3 && t.text.compare(upto - 3, 3, "\xEF\xBF\xBD") == 0) upto -= 3;
          }
          std::string delta = upto > s.bytes && t.text.size() >= upto ? t.text.substr(s.bytes, upto - s.bytes) : "";
          const std::size_t tok_to = c.tokens.size();
          std::vector<net::TokenLogprob> lps;
          if (with_lp) lps = logprobs_of(c, s.tokens, tok_to, r.token_ids);
          const bool role = e == net::Endpoint::chat && !s.opened;
          if (!delta.empty() || role || !lps.empty())
            events.push_back(net::chunk_body(e, h, std::int64_t(i), delta, with_lp ? &lps : nullptr, "", std::nullopt, role));
          s.opened = true;
          s.bytes = std::max(s.bytes, upto);
          s.tokens = tok_to;
          if (ended) {
            events.push_back(net::chunk_body(e, h, std::int64_t(i), "", nullptr, finish_name(c.finish),
                                             c.finish == "stop" ? t.stop : std::nullopt));
            s.closed = true;
            completion_tokens += std::int64_t(c.tokens.size());
          } else {
            all_closed = false;
          }
        }
      }
      for (const auto& ev : events)
        if (!send(ev)) {
          job->abandoned->store(true);  // the client hung up: the engine drops its sequences
          return;
        }
      if (all_closed) break;
    }
    if (r.include_usage) send(net::usage_chunk(e, h, {prompt_tokens, completion_tokens}));
    write("data: [DONE]\n\n");
  };
  return reply;
}

}  // namespace

void run_serve(const ServeConfig& cfg, const std::function<void(const std::string& url)>& listening) {
  Server server(cfg);
  server.run(listening);
}

}  // namespace distill::teacher
