// studio/studio.cpp: see studio.h. Each /api route is a short function from a request to JSON; guarded() adds
// the token and Host checks and maps errors to statuses (400 bad input, 409 stale view, 403 read-only).
#include "studio/studio.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/config_text.h"
#include "common/errors.h"
#include "common/interrupt.h"
#include "dataset/browse.h"
#include "dataset/curation.h"
#include "dataset/evals.h"
#include "dataset/text_rules.h"
#include "eval/compare.h"
#include "net/http.h"
#include "studio/requests.h"
#include "studio_assets.h"

namespace distill::studio {

namespace {

using nlohmann::json;
using net::HttpReply;
using net::HttpRequest;

std::string random_hex(std::size_t bytes) {
  std::ifstream in("/dev/urandom", std::ios::binary);
  std::string raw(bytes, '\0');
  if (!in.read(raw.data(), std::streamsize(bytes))) throw RuntimeFailure("cannot read /dev/urandom for the session token");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) out += hex[c >> 4], out += hex[c & 15];
  return out;
}


std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

HttpReply json_reply(const json& j, int status = 200) {
  HttpReply r;
  r.status = status;
  r.body = dump(j);
  return r;
}

// Ids and numbers in URLs are whole numbers (common/config_text); errors name the parameter.
std::int64_t whole(const std::string& name, const std::string& v) { return whole_number("parameter " + name, v); }

json opt(const std::optional<std::int64_t>& v) { return v ? json(*v) : json(nullptr); }
json opt(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }

json row_json(const dataset::ListRow& r) {
  return {{"id", r.id}, {"problem_id", r.problem_id}, {"split", r.split}, {"sample_idx", r.sample_idx},
          {"status", r.status}, {"verdict", r.verdict}, {"n_tokens", opt(r.n_tokens)}, {"snippet", r.snippet},
          {"model_id", r.model_id}, {"run_id", r.run_id}, {"status_action", opt(r.status_action)}, {"reason", r.reason}};
}

json action_json(const dataset::ActionRow& r) {
  return {{"action_id", r.id}, {"kind", r.kind}, {"params", json::parse(r.params_json, nullptr, false)},
          {"reason", r.reason}, {"actor", r.actor}, {"at", r.at}, {"n_kept", r.n_kept}, {"n_rejected", r.n_rejected},
          {"undone_by", opt(r.undone_by)}, {"undoes", opt(r.undoes)}};
}

}  // namespace

struct Studio::Impl {
  StudioOptions o;
  std::unique_ptr<dataset::Store> store;
  std::mutex m;  // one SQLite connection, one request at a time on it
  net::HttpServer http{net::ServerOptions{2048, 4u << 20, 30, 60, [](int, const std::string& msg) {
                                             return dump(json{{"error", msg}});
                                           }}};
  std::atomic<bool> stopping{false};

  std::string actor() const { return "studio:" + o.user; }

  // Every route goes through here: the Host and token checks, one request at a time on the store, errors as
  // statuses with a JSON {"error": message}.
  void guarded(const std::string& method, const std::string& path, HttpReply (Impl::*handler)(const HttpRequest&)) {
    const bool write = method == "POST";  // every POST changes the store; no GET does
    http.route(method, path, [this, write, handler](const HttpRequest& r) {
      HttpReply reply;
      try {
        if (!host_allowed(r.header("Host"))) return json_reply({{"error", "this Host is not served (DNS rebinding?)"}}, 403);
        const auto header = r.header("X-Distill-Token");
        const auto query = r.param("token");
        // A write must carry the token in the header: a form or link on another page cannot set one.
        const bool ok = net::same_secret(header, o.token) || (!write && query && net::same_secret(*query, o.token));
        if (!ok) return json_reply({{"error", "missing or wrong session token: open the URL distill studio printed"}}, 403);
        if (write && o.read_only) return json_reply({{"error", "the store is opened read-only: nothing can be changed"}}, 403);
        std::lock_guard<std::mutex> lock(m);
        std::optional<dataset::ReadTransaction> one_state;  // a view's reads agree (status and status_action)
        if (!write) one_state.emplace(store->db());
        reply = (this->*handler)(r);
      } catch (const dataset::StaleView& e) {
        return json_reply({{"error", e.what()}, {"stale", true}}, 409);
      } catch (const InputError& e) {
        return json_reply({{"error", e.what()}}, 400);
      } catch (const json::exception& e) {
        return json_reply({{"error", std::string("the request body is not the JSON expected: ") + e.what()}}, 400);
      }
      reply.headers.emplace_back("Cache-Control", "no-store");
      reply.headers.emplace_back("X-Content-Type-Options", "nosniff");
      reply.headers.emplace_back("Referrer-Policy", "no-referrer");
      return reply;
    });
  }

  bool host_allowed(const std::string& host) const {
    if (o.host == "0.0.0.0" || o.host == "::") return true;  // served to the network on purpose
    const auto colon = host.rfind(':');
    const auto name = colon == std::string::npos || host.back() == ']' ? host : host.substr(0, colon);
    return name == o.host || name == "127.0.0.1" || name == "localhost" || name == "[::1]" || name == "[" + o.host + "]";
  }

  HttpReply page(const HttpRequest&) {
    const auto nonce = random_hex(16);
    std::string html = kIndexHtml;
    for (std::string::size_type at; (at = html.find("__NONCE__")) != std::string::npos;) html.replace(at, 9, nonce);
    HttpReply r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::move(html);
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'none'; script-src 'nonce-" + nonce + "'; style-src 'nonce-" + nonce +
                               "'; img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'");
    return r;
  }

  HttpReply overview(const HttpRequest&) {
    const auto st = dataset::curation_stats(*store);
    json j;
    j["store"] = o.db;
    j["user"] = actor();
    j["read_only"] = o.read_only;
    j["by_status"] = st.by_status;
    j["by_split_verdict"] = st.by_split_verdict;
    j["funnel"] = json::array();
    for (const auto& [stage, n] : st.funnel) j["funnel"].push_back({{"stage", stage}, {"samples", n}});
    j["length_bucket"] = st.length_bucket;
    j["length_histogram"] = json::array();
    for (const auto& [lo, n] : st.length_histogram) j["length_histogram"].push_back({{"from", lo}, {"samples", n}});
    j["by_difficulty"] = json::array();
    for (const auto& [d, pr] : st.by_difficulty)
      j["by_difficulty"].push_back({{"difficulty", d}, {"samples", pr.samples}, {"correct", pr.correct}, {"problems", pr.problems}});
    return json_reply(j);
  }

  HttpReply facets(const HttpRequest&) {
    const auto f = dataset::sample_facets(*store);
    json j{{"splits", f.splits}, {"runs", json::array()}, {"models", json::array()},
           {"reasons", dataset::recent_reasons(*store)}, {"user", actor()}, {"read_only", o.read_only}};
    for (const auto& [id, name] : f.runs) j["runs"].push_back({{"id", id}, {"name", name}});
    for (const auto& [id, name] : f.models) j["models"].push_back({{"id", id}, {"name", name}});
    return json_reply(j);
  }

  // The sample filters, named as in `data list` (min_tokens for --min-tokens); at most 500 rows a page.
  static dataset::ListQuery query_of(const HttpRequest& r) {
    return parse_filters([&](const std::string& name) { return r.param(name); });
  }

  HttpReply samples(const HttpRequest& r) {
    const auto q = query_of(r);
    const auto rows = dataset::list_samples(*store, q);
    json j{{"samples", json::array()}, {"next", nullptr}};
    for (const auto& row : rows) j["samples"].push_back(row_json(row));
    if (std::int64_t(rows.size()) == q.limit && !rows.empty()) {
      const auto& last = rows.back();
      const auto key = q.sort == dataset::ListQuery::Sort::tokens ? last.n_tokens.value_or(-1) : last.id;
      j["next"] = std::to_string(key) + ":" + std::to_string(last.id);
    }
    return json_reply(j);
  }

  // The count of matches; with stamp=1 also what a bulk action must find unchanged (a little slower: it reads
  // the states of every match).
  HttpReply count(const HttpRequest& r) {
    const auto q = query_of(r);
    if (r.param("stamp").value_or("") != "1") return json_reply({{"count", dataset::count_samples(*store, q)}});
    const auto stamp = dataset::match_stamp(*store, q);
    return json_reply({{"count", std::stoll(stamp.substr(0, stamp.find(':')))}, {"stamp", stamp}});
  }

  HttpReply sample(const HttpRequest& r) {
    const auto v = dataset::sample_view(*store, whole("id", r.matches.at(0)));
    const auto parts = dataset::split_completion(v.completion);
    json j{{"id", v.id}, {"problem_id", v.problem_id}, {"sample_idx", v.sample_idx}, {"seed", v.seed},
           {"n_tokens", opt(v.n_tokens)}, {"split", v.split}, {"prompt", v.prompt}, {"gold", v.gold},
           {"think", parts.think}, {"answer", parts.answer}, {"verdict", v.verdict}, {"finish_reason", v.finish_reason},
           {"created_at", v.created_at}, {"status", v.status}, {"status_action", opt(v.status_action)},
           {"extracted_answer", opt(v.extracted_answer)}, {"extract_rule", opt(v.extract_rule)},
           {"verifier", opt(v.verifier)}, {"imported_from", v.imported_from}, {"temperature", v.temperature},
           {"top_p", v.top_p}, {"model", {{"id", v.model_id}, {"path", v.model_path}, {"role", v.model_role}}},
           {"run_id", v.run_id}, {"prompt_format", v.prompt_format}, {"difficulty", v.difficulty ? json(*v.difficulty) : json(nullptr)},
           {"history", json::array()}, {"siblings", json::array()}};
    for (const auto& h : v.history)
      j["history"].push_back({{"action_id", h.id}, {"kind", h.kind}, {"decision", h.decision}, {"reason", h.reason},
                              {"actor", h.actor}, {"at", h.at}, {"undone_by", opt(h.undone_by)}, {"undoes", opt(h.undoes)}});
    dataset::ListQuery q;
    q.problem_id = v.problem_id;
    q.limit = 12;
    for (const auto& row : dataset::list_samples(*store, q)) {
      if (row.id == v.id) continue;
      auto s = dataset::sample_view(*store, row.id);
      j["siblings"].push_back({{"id", s.id}, {"status", s.status}, {"verdict", s.verdict}, {"n_tokens", opt(s.n_tokens)},
                               {"answer", dataset::split_completion(s.completion).answer}, {"extracted_answer", opt(s.extracted_answer)}});
    }
    return json_reply(j);
  }

  HttpReply problem(const HttpRequest& r) {
    const auto v = dataset::problem_view(*store, whole("id", r.matches.at(0)));
    json j{{"id", v.id}, {"source", v.source}, {"split", v.split}, {"prompt", v.prompt}, {"gold", v.answer},
           {"solution", opt(v.solution)}, {"difficulty", v.difficulty ? json(*v.difficulty) : json(nullptr)},
           {"n_samples", v.n_samples}, {"samples", json::array()}, {"evals", json::array()}};
    for (const auto& row : v.samples) j["samples"].push_back(row_json(row));
    for (const auto& e : v.evals)
      j["evals"].push_back({{"run_id", e.run_id}, {"model_id", e.model_id}, {"role", e.role}, {"model", e.model_path},
                            {"sample_idx", e.sample_idx}, {"verdict", e.verdict}, {"n_tokens", e.n_tokens},
                            {"answer", dataset::split_completion(e.completion).answer}, {"completion", e.completion},
                            {"run_status", e.run_status}});
    return json_reply(j);
  }

  HttpReply log(const HttpRequest& r) {
    auto rows = dataset::list_actions(*store);
    if (auto s = r.param("sample"); s && !s->empty()) {
      std::set<std::int64_t> ids;
      for (const auto& h : dataset::curation_history(*store, whole("sample", *s))) ids.insert(h.id);
      std::erase_if(rows, [&](const auto& a) { return !ids.count(a.id); });
    }
    std::int64_t limit = 200;
    if (auto l = r.param("limit"); l && !l->empty()) limit = whole("limit", *l);
    if (std::int64_t(rows.size()) > limit) rows.resize(std::size_t(limit));
    json j = json::array();
    for (const auto& a : rows) j.push_back(action_json(a));
    return json_reply({{"actions", j}});
  }

  static json outcome_json(const dataset::ReviewOutcome& out) {
    return {{"action_id", out.action_id == 0 ? json(nullptr) : json(out.action_id)}, {"changed", out.changed},
            {"unchanged", out.unchanged}};
  }

  HttpReply review(const HttpRequest& r) {
    const auto q = parse_review(r.body);
    const auto out = dataset::review_samples(*store, q.ids, q.keep, q.reason, actor(), dump({{"via", "studio"}}), q.seen);
    return json_reply(outcome_json(out));
  }

  // Every match of the filters, as one action; the stamp is what /api/count gave for the same filters, and the action
  // is refused if the matches changed since.
  HttpReply bulk(const HttpRequest& r) {
    const auto b = parse_bulk(r.body);
    const auto out = dataset::review_query(*store, b.query, b.keep, b.reason, actor(), b.stamp, b.params_json);
    return json_reply(outcome_json(out));
  }

  HttpReply undo(const HttpRequest& r) {
    const auto id = dataset::undo_action(*store, parse_undo(r.body), actor());
    return json_reply({{"undo_id", id}});
  }

  HttpReply runs(const HttpRequest&) {
    json j = json::array();
    for (const auto& r : dataset::eval_runs(*store))
      j.push_back({{"id", r.id}, {"status", r.status}, {"started_at", r.started_at}, {"hidden", r.hidden}, {"answers", r.answers}});
    return json_reply({{"runs", j}});
  }

  // The compare report's content for the runs named (runs=3,5), else each model's newest run that is not hidden.
  HttpReply compare(const HttpRequest& r) {
    dataset::EvalRunSelection sel;
    if (auto v = r.param("runs"))
      for (const auto& id : split_list(*v)) sel.runs.push_back(whole("runs", id));
    HttpReply reply;
    reply.body = eval::comparison_json(eval::compare_models(*store, std::nullopt, sel));
    return reply;
  }

  void routes() {
    guarded("GET", "/", &Impl::page);
    guarded("GET", "/api/overview", &Impl::overview);
    guarded("GET", "/api/facets", &Impl::facets);
    guarded("GET", "/api/samples", &Impl::samples);
    guarded("GET", "/api/count", &Impl::count);
    guarded("GET", R"(/api/sample/(\d+))", &Impl::sample);
    guarded("GET", R"(/api/problem/(\d+))", &Impl::problem);
    guarded("GET", "/api/log", &Impl::log);
    guarded("GET", "/api/runs", &Impl::runs);
    guarded("GET", "/api/compare", &Impl::compare);
    guarded("POST", "/api/review", &Impl::review);
    guarded("POST", "/api/bulk", &Impl::bulk);
    guarded("POST", "/api/undo", &Impl::undo);
  }
};

Studio::Studio(StudioOptions o) : impl_(std::make_unique<Impl>()) {
  if (o.user.empty()) throw InputError("--user is empty: actions are logged as studio:USER");
  if (o.token.empty()) o.token = random_hex(24);
  impl_->o = std::move(o);
  impl_->store = dataset::Store::open(impl_->o.db, dataset::OpenMode::read);
  impl_->o.read_only = impl_->o.read_only || impl_->store->read_only();  // browse a store this process cannot write
  impl_->routes();
}

Studio::~Studio() = default;

void Studio::run(const std::function<void(const std::string&)>& listening) {
  auto& im = *impl_;
  const int port = im.http.bind(im.o.host, im.o.port);
  InterruptGuard interrupt;
  std::atomic<bool> served{false};
  std::thread watcher([&] {
    while (!served.load() && !interrupt.requested() && !im.stopping.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    while (!served.load()) {  // a stop before the listen loop runs is not kept: repeat until it ends
      im.http.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  const auto host = im.o.host.find(':') != std::string::npos ? "[" + im.o.host + "]" : im.o.host;
  try {
    listening("http://" + host + ":" + std::to_string(port) + "/?token=" + im.o.token);
    im.http.serve();
  } catch (...) {
    served = true;
    watcher.join();
    throw;
  }
  served = true;
  watcher.join();
}

void Studio::stop() { impl_->stopping = true; }

bool Studio::read_only() const { return impl_->o.read_only; }

bool Studio::snapshot() const { return impl_->store->snapshot(); }

}  // namespace distill::studio
