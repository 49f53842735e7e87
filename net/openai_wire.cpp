// net/openai_wire.cpp: see openai_wire.h.
#include "net/openai_wire.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/errors.h"

namespace distill::net {

using nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw InputError("response: " + path + ": " + what);
}

const json& member(const json& o, const char* key, const std::string& path) {
  auto it = o.find(key);
  if (it == o.end()) bad(path + "." + key, "missing");
  return *it;
}

// A string member; null and absent give "" where `optional` (OpenAI sends "content": null with tool calls).
std::string text_of(const json& o, const char* key, const std::string& path, bool optional) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) {
    if (optional) return "";
    bad(path + "." + key, "missing");
  }
  if (!it->is_string()) bad(path + "." + key, std::string("expected a string, got ") + it->type_name());
  return it->get<std::string>();
}

double number_of(const json& v, const std::string& path) {
  if (!v.is_number()) bad(path, std::string("expected a number, got ") + v.type_name());
  return v.get<double>();
}

// A token count: a whole number from 0 to 2^53 (a larger double has no int64 value to convert to).
std::int64_t count_of(const json& v, const std::string& path) {
  const double d = number_of(v, path);
  if (!(d >= 0 && d <= 9007199254740992.0) || d != std::floor(d)) bad(path, "expected a whole number from 0 to 2^53");
  return std::int64_t(d);
}

TopLogprob top_of(const std::string& token, double logprob) { return {token, token_id_of(token), logprob}; }

// A chat-style entry {"token", "logprob", ...}; llama.cpp's server adds the token's "id".
TopLogprob entry_of(const json& e, const std::string& p) {
  auto t = top_of(text_of(e, "token", p, false), number_of(member(e, "logprob", p), p + ".logprob"));
  if (auto id = e.find("id"); id != e.end() && !id->is_null()) {
    if (!id->is_number_integer()) bad(p + ".id", "expected an integer token id");
    t.id = id->get<std::int64_t>();
  }
  return t;
}

// Chat logprobs: {"content": [{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}]}.
std::vector<TokenLogprob> chat_logprobs(const json& lp, const std::string& path) {
  std::vector<TokenLogprob> out;
  if (lp.is_null()) return out;
  if (!lp.is_object()) bad(path, "expected an object");
  auto c = lp.find("content");
  if (c == lp.end() || c->is_null()) return out;
  if (!c->is_array()) bad(path + ".content", "expected an array");
  for (std::size_t i = 0; i < c->size(); ++i) {
    const auto p = path + ".content[" + std::to_string(i) + "]";
    const json& t = (*c)[i];
    if (!t.is_object()) bad(p, "expected an object");
    TokenLogprob tl{entry_of(t, p), {}};
    if (auto tops = t.find("top_logprobs"); tops != t.end() && !tops->is_null()) {
      if (!tops->is_array()) bad(p + ".top_logprobs", "expected an array");
      for (std::size_t k = 0; k < tops->size(); ++k) {
        const auto q = p + ".top_logprobs[" + std::to_string(k) + "]";
        const json& e = (*tops)[k];
        if (!e.is_object()) bad(q, "expected an object");
        tl.top.push_back(entry_of(e, q));
      }
    }
    out.push_back(std::move(tl));
  }
  return out;
}

// Completions logprobs: {"tokens": [...], "token_logprobs": [...], "top_logprobs": [{token: logprob}, ...]}.
std::vector<TokenLogprob> completion_logprobs(const json& lp, const std::string& path) {
  std::vector<TokenLogprob> out;
  if (lp.is_null()) return out;
  if (!lp.is_object()) bad(path, "expected an object");
  if (lp.contains("content") && !lp.contains("tokens")) return chat_logprobs(lp, path);  // llama.cpp's server
  const json& toks = member(lp, "tokens", path);
  const json& lps = member(lp, "token_logprobs", path);
  if (!toks.is_array() || !lps.is_array() || toks.size() != lps.size())
    bad(path, "expected arrays tokens and token_logprobs of one length");
  const json* tops = nullptr;
  if (auto t = lp.find("top_logprobs"); t != lp.end() && !t->is_null()) {
    if (!t->is_array() || t->size() != toks.size()) bad(path + ".top_logprobs", "expected one entry per token");
    tops = &*t;
  }
  for (std::size_t i = 0; i < toks.size(); ++i) {
    const auto p = path + ".tokens[" + std::to_string(i) + "]";
    if (!toks[i].is_string()) bad(p, "expected a string");
    // The first prompt token of an echo has a null logprob; a generated one never does.
    const double v = lps[i].is_null() ? -INFINITY : number_of(lps[i], path + ".token_logprobs[" + std::to_string(i) + "]");
    TokenLogprob tl{top_of(toks[i].get<std::string>(), v), {}};
    if (tops && !(*tops)[i].is_null()) {
      const json& m = (*tops)[i];
      if (!m.is_object()) bad(path + ".top_logprobs[" + std::to_string(i) + "]", "expected an object");
      for (const auto& [tok, val] : m.items())
        tl.top.push_back(top_of(tok, number_of(val, path + ".top_logprobs[" + std::to_string(i) + "]." + tok)));
      std::stable_sort(tl.top.begin(), tl.top.end(), [](const auto& a, const auto& b) { return a.logprob > b.logprob; });
    }
    out.push_back(std::move(tl));
  }
  return out;
}

std::optional<std::string> stop_reason_of(const json& c, const std::string& path) {
  const char* key = c.contains("stop_reason") ? "stop_reason" : "matched_stop";  // vLLM's, SGLang's
  auto it = c.find(key);
  if (it == c.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return "token:" + std::to_string(it->get<std::int64_t>());
  bad(path + "." + key, "expected a string, a token id or null");
}

// One choice of a whole response, or (delta) of a streamed chunk, merged into `into`.
void merge_choice(const json& c, Endpoint e, bool delta, const std::string& path, Choice& into) {
  if (!c.is_object()) bad(path, "expected an object");
  if (e == Endpoint::chat) {
    const json& m = member(c, delta ? "delta" : "message", path);
    const auto mp = path + (delta ? ".delta" : ".message");
    if (!m.is_object()) bad(mp, "expected an object");
    into.text += text_of(m, "content", mp, true);
    // vLLM 0.11.1 and later name it "reasoning" (for a while sending both, alike); DeepSeek, SGLang and llama.cpp
    // "reasoning_content".
    const char* key = m.contains("reasoning") && !m["reasoning"].is_null() ? "reasoning" : "reasoning_content";
    if (auto r = m.find(key); r != m.end() && !r->is_null()) {
      if (!r->is_string()) bad(mp + "." + key, "expected a string");
      into.reasoning = into.reasoning.value_or("") + r->get<std::string>();
    }
  } else {
    into.text += text_of(c, "text", path, delta);
  }
  if (auto lp = c.find("logprobs"); lp != c.end()) {
    auto more = e == Endpoint::chat ? chat_logprobs(*lp, path + ".logprobs") : completion_logprobs(*lp, path + ".logprobs");
    into.logprobs.insert(into.logprobs.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  const auto finish = text_of(c, "finish_reason", path, delta);
  if (!finish.empty()) into.finish_reason = finish;
  if (auto s = stop_reason_of(c, path)) into.stop_reason = s;
  if (c.contains("stop_reason") || c.contains("matched_stop")) into.stop_reason_sent = into.stop_reason_sent || !finish.empty() || !delta;
}

json parse_object(std::string_view body, const char* what) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& ex) {
    throw InputError(std::string(what) + ": not valid JSON (" + ex.what() + ")");
  }
  if (!j.is_object()) throw InputError(std::string(what) + ": expected a JSON object, got " + j.type_name());
  return j;
}

// The fields every body and chunk has: id, model, system_fingerprint, usage; choices merged by index.
void merge_body(const json& j, Endpoint e, bool delta, Response& r) {
  if (auto v = j.find("error"); v != j.end() && !v->is_null()) bad("error", "the server sent an error in the body");
  if (r.id.empty()) r.id = text_of(j, "id", "response", true);
  if (r.model.empty()) r.model = text_of(j, "model", "response", true);
  if (r.system_fingerprint.empty()) r.system_fingerprint = text_of(j, "system_fingerprint", "response", true);
  if (auto u = j.find("usage"); u != j.end() && !u->is_null()) {
    if (!u->is_object()) bad("usage", "expected an object");
    r.usage = Usage{count_of(member(*u, "prompt_tokens", "usage"), "usage.prompt_tokens"),
                    count_of(member(*u, "completion_tokens", "usage"), "usage.completion_tokens")};
  }
  const json& cs = member(j, "choices", "response");
  if (!cs.is_array()) bad("choices", "expected an array");
  for (std::size_t i = 0; i < cs.size(); ++i) {
    const auto path = "choices[" + std::to_string(i) + "]";
    if (!cs[i].is_object()) bad(path, "expected an object");
    const double idx = cs[i].contains("index") ? number_of(cs[i]["index"], path + ".index") : double(i);
    if (idx < 0 || idx > 4096 || idx != std::floor(idx)) bad(path + ".index", "expected a small whole number");
    auto it = std::find_if(r.choices.begin(), r.choices.end(), [&](const Choice& c) { return c.index == std::int64_t(idx); });
    if (it == r.choices.end()) {
      r.choices.push_back(Choice{std::int64_t(idx), "", std::nullopt, "", std::nullopt, {}});
      it = r.choices.end() - 1;
    }
    merge_choice(cs[i], e, delta, path, *it);
  }
  std::sort(r.choices.begin(), r.choices.end(), [](const Choice& a, const Choice& b) { return a.index < b.index; });
}

}  // namespace

std::optional<std::int64_t> token_id_of(std::string_view token) {
  constexpr std::string_view prefix = "token_id:";
  if (token.substr(0, prefix.size()) != prefix) return std::nullopt;
  const auto digits = token.substr(prefix.size());
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || p != digits.data() + digits.size() || digits.empty() || v < 0) return std::nullopt;
  return v;
}

Response parse_response(std::string_view body, Endpoint e) {
  const json j = parse_object(body, "response");
  Response r;
  merge_body(j, e, false, r);
  return r;
}

void StreamAccumulator::add(std::string_view data) {
  if (done_) throw InputError("response stream: data after [DONE]");
  if (data == "[DONE]") {
    done_ = true;
    return;
  }
  merge_body(parse_object(data, "response chunk"), endpoint_, true, r_);
}

std::optional<ApiError> parse_error(std::string_view body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception&) {
    return std::nullopt;
  }
  if (!j.is_object()) return std::nullopt;
  const json* e = nullptr;
  if (auto it = j.find("error"); it != j.end() && it->is_object()) e = &*it;
  else if (j.value("object", json()) == "error") e = &j;  // any type: {"object": 5} is no error body
  if (!e) return std::nullopt;
  auto str = [&](const char* k) {
    auto it = e->find(k);
    if (it == e->end() || it->is_null()) return std::string();
    return it->is_string() ? it->get<std::string>() : it->dump();
  };
  return ApiError{str("type"), str("message"), str("code")};
}

bool retryable_status(int status) {
  return status == 0 || status == 408 || status == 409 || status == 429 || (status >= 500 && status <= 599);
}

std::optional<double> parse_retry_after(std::string_view v, double now_unix) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (v.size() > 9) return std::nullopt;  // more than ~30 years: not a real request
    return double(std::stoll(std::string(v)));
  }
  // IMF-fixdate, the one HTTP-date form servers send: "Wed, 21 Oct 2015 07:28:00 GMT".
  std::tm tm{};
  const std::string s(v);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  return std::max(0.0, double(timegm(&tm)) - now_unix);
}

double retry_delay(const Backoff& b, int attempt, std::optional<double> retry_after_s, double unit) {
  const double cap = std::min(b.max_s, b.base_s * std::ldexp(1.0, std::clamp(attempt - 1, 0, 30)));
  const double jittered = cap * std::clamp(unit, 0.0, 1.0);  // "full jitter": clients spread out after a shared 429
  return retry_after_s ? std::max(jittered, std::min(*retry_after_s, 3600.0)) : jittered;
}

// ---- requests --------------------------------------------------------------------------------------------

namespace {

[[noreturn]] void refuse(const std::string& param, const std::string& message) { throw RequestError(message, param); }

const json* field(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::string plain(double x) { return x == std::floor(x) && std::fabs(x) < 1e15 ? std::to_string(std::int64_t(x)) : json(x).dump(); }

double number_in(const json& j, const char* key, double def, double lo, double hi, bool lo_open, bool integer) {
  const json* v = field(j, key);
  if (!v) return def;
  if (!v->is_number() || (integer && !v->is_number_integer()))
    refuse(key, std::string("'") + key + "' must be " + (integer ? "an integer" : "a number") + ", got " + v->type_name());
  const double x = v->get<double>();
  if (!(lo_open ? x > lo : x >= lo) || x > hi) {
    std::string range = (lo_open ? "(" : "[") + plain(lo) + ", " + plain(hi) + "]";
    refuse(key, std::string("'") + key + "' must lie in " + range + ", got " + v->dump());
  }
  return x;
}

bool bool_in(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v) return false;
  if (!v->is_boolean()) refuse(key, std::string("'") + key + "' must be a boolean, got " + v->type_name());
  return v->get<bool>();
}

// A message's content: a string, or an array of parts of which only text parts are served.
std::string content_of(const json& m, const std::string& param) {
  const json* c = field(m, "content");
  if (!c) refuse(param + ".content", "'" + param + ".content' is missing");
  if (c->is_string()) return c->get<std::string>();
  if (!c->is_array()) refuse(param + ".content", "'" + param + ".content' must be a string or an array of text parts");
  std::string out;
  for (std::size_t i = 0; i < c->size(); ++i) {
    const json& part = (*c)[i];
    const auto p = param + ".content[" + std::to_string(i) + "]";
    if (!part.is_object() || part.value("type", json()) != "text" || !part.contains("text") || !part["text"].is_string())
      refuse(p, "'" + p + "': only text parts ({\"type\": \"text\", \"text\": ...}) are served");
    out += part["text"].get<std::string>();
  }
  return out;
}

std::vector<ChatMessage> messages_of(const json& j) {
  const json* ms = field(j, "messages");
  if (!ms || !ms->is_array() || ms->empty()) refuse("messages", "'messages' must be a non-empty array");
  std::vector<ChatMessage> out;
  for (std::size_t i = 0; i < ms->size(); ++i) {
    const auto p = "messages[" + std::to_string(i) + "]";
    const json& m = (*ms)[i];
    if (!m.is_object()) refuse(p, "'" + p + "' must be an object");
    const json* role = field(m, "role");
    if (!role || !role->is_string()) refuse(p + ".role", "'" + p + ".role' must be a string");
    const auto r = role->get<std::string>();
    if (r != "system" && r != "user" && r != "assistant" && r != "developer")
      refuse(p + ".role", "'" + p + ".role' is '" + r + "': expected system, user or assistant (tools are not served)");
    out.push_back({r == "developer" ? "system" : r, content_of(m, p)});
  }
  return out;
}

std::vector<std::string> stops_of(const json& j) {
  const json* s = field(j, "stop");
  if (!s) return {};
  std::vector<std::string> out;
  if (s->is_string()) out.push_back(s->get<std::string>());
  else if (s->is_array())
    for (const auto& x : *s) {
      if (!x.is_string()) refuse("stop", "'stop' must be a string or an array of strings");
      out.push_back(x.get<std::string>());
    }
  else refuse("stop", "'stop' must be a string or an array of strings");
  if (out.size() > 4) refuse("stop", "'stop' takes at most 4 strings");
  for (const auto& x : out)
    if (x.empty()) refuse("stop", "'stop' strings must not be empty");
  return out;
}

}  // namespace

Request parse_request(std::string_view body, Endpoint e) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& ex) {
    refuse("", std::string("the body is not valid JSON (") + ex.what() + ")");
  }
  if (!j.is_object()) refuse("", std::string("the body must be a JSON object, got ") + j.type_name());
  for (const char* unsupported : {"tools", "functions", "tool_choice", "best_of", "suffix", "response_format"})
    if (field(j, unsupported)) refuse(unsupported, std::string("'") + unsupported + "' is not served by distill serve");
  Request r;
  r.endpoint = e;
  const json* model = field(j, "model");
  if (!model || !model->is_string()) refuse("model", "'model' must be a string");
  r.model = model->get<std::string>();
  if (e == Endpoint::chat) {
    r.messages = messages_of(j);
    r.logprobs = bool_in(j, "logprobs");
    r.top_logprobs = std::int64_t(number_in(j, "top_logprobs", 0, 0, 20, false, true));
    if (r.top_logprobs > 0 && !r.logprobs) refuse("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  } else {
    const json* p = field(j, "prompt");
    if (!p || !p->is_string()) refuse("prompt", "'prompt' must be a string (token-id and batched prompts are not served)");
    r.prompt = p->get<std::string>();
    if (bool_in(j, "echo")) refuse("echo", "'echo' is not served by distill serve");
    r.top_logprobs = std::int64_t(number_in(j, "logprobs", 0, 0, 5, false, true));
    r.logprobs = field(j, "logprobs") != nullptr;
  }
  const char* mt = e == Endpoint::chat && field(j, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  r.max_tokens_given = field(j, mt) != nullptr;
  r.max_tokens = std::int64_t(number_in(j, mt, 16, 1, 1e9, false, true));
  r.temperature = number_in(j, "temperature", 1.0, 0, 2, false, false);
  r.top_p = number_in(j, "top_p", 1.0, 0, 1, true, false);
  r.n = std::int64_t(number_in(j, "n", 1, 1, 16, false, true));
  r.top_k = std::max<std::int64_t>(0, std::int64_t(number_in(j, "top_k", 0, -1, 1e9, false, true)));
  r.min_p = number_in(j, "min_p", 0, 0, 1, false, false);
  r.stop = stops_of(j);
  if (const json* seed = field(j, "seed")) {
    if (!seed->is_number_integer()) refuse("seed", "'seed' must be an integer");
    r.seed = seed->get<std::int64_t>();
  }
  r.stream = bool_in(j, "stream");
  r.token_ids = bool_in(j, "return_tokens_as_token_ids");
  if (const json* so = field(j, "stream_options")) {
    if (!so->is_object()) refuse("stream_options", "'stream_options' must be an object");
    r.include_usage = bool_in(*so, "include_usage");
  }
  return r;
}

std::string request_body(const TeacherRequest& r, bool params_only) {
  json j = {{"model", r.model}, {"temperature", r.temperature}, {"top_p", r.top_p}, {"max_tokens", r.max_tokens}};
  if (!params_only) {
    if (r.endpoint == Endpoint::chat) j["messages"] = json::array({{{"role", "user"}, {"content", r.input}}});
    else j["prompt"] = r.input;
  }
  if (r.top_k > 0) j["top_k"] = r.top_k;
  if (r.min_p > 0) j["min_p"] = r.min_p;
  if (!r.stop.empty()) j["stop"] = r.stop;
  if (r.seed) j["seed"] = *r.seed;
  if (r.top_logprobs > 0) {
    if (r.endpoint == Endpoint::chat) {
      j["logprobs"] = true;
      j["top_logprobs"] = r.top_logprobs;
    } else {
      j["logprobs"] = r.top_logprobs;
    }
    if (r.token_ids) j["return_tokens_as_token_ids"] = true;
  }
  if (r.stream) {
    j["stream"] = true;
    j["stream_options"] = {{"include_usage", true}};
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

json bytes_of(const std::string& t) {
  json b = json::array();
  for (unsigned char c : t) b.push_back(int(c));
  return b;
}

json chat_logprobs_json(const std::vector<TokenLogprob>& lps) {
  json content = json::array();
  for (const auto& t : lps) {
    json e = {{"token", t.chosen.token}, {"logprob", t.chosen.logprob}, {"bytes", bytes_of(t.chosen.token)}};
    json top = json::array();
    for (const auto& x : t.top) top.push_back({{"token", x.token}, {"logprob", x.logprob}, {"bytes", bytes_of(x.token)}});
    e["top_logprobs"] = top;
    content.push_back(e);
  }
  return {{"content", content}};
}

json completion_logprobs_json(const std::vector<TokenLogprob>& lps, std::size_t offset) {
  json tokens = json::array(), values = json::array(), tops = json::array(), offsets = json::array();
  for (const auto& t : lps) {
    tokens.push_back(t.chosen.token);
    values.push_back(t.chosen.logprob);
    json m = json::object();
    // A dict: of texts that repeat, the likelier (first) is kept.
    for (auto it = t.top.rbegin(); it != t.top.rend(); ++it) m[it->token] = it->logprob;
    tops.push_back(m);
    offsets.push_back(offset);
    offset += t.chosen.token.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", values}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json stop_reason_json(const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); }

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

std::string response_body(Endpoint e, const ServedHeader& h, const std::vector<ServedChoice>& choices, const Usage& usage,
                          bool logprobs) {
  json cs = json::array();
  for (std::size_t i = 0; i < choices.size(); ++i) {
    const auto& c = choices[i];
    json j = {{"index", i}, {"finish_reason", c.finish_reason}, {"stop_reason", stop_reason_json(c.stop_reason)}};
    if (e == Endpoint::chat) {
      j["message"] = {{"role", "assistant"}, {"content", c.text}};
      j["logprobs"] = logprobs ? chat_logprobs_json(c.logprobs) : json(nullptr);
    } else {
      j["text"] = c.text;
      j["logprobs"] = logprobs ? completion_logprobs_json(c.logprobs, 0) : json(nullptr);
    }
    cs.push_back(j);
  }
  json r = {{"id", h.id}, {"object", e == Endpoint::chat ? "chat.completion" : "text_completion"}, {"created", h.created},
            {"model", h.model}, {"system_fingerprint", nullptr}, {"choices", cs},
            {"usage", {{"prompt_tokens", usage.prompt_tokens}, {"completion_tokens", usage.completion_tokens},
                       {"total_tokens", usage.prompt_tokens + usage.completion_tokens}}}};
  return dump(r);
}

std::string chunk_body(Endpoint e, const ServedHeader& h, std::int64_t index, std::string_view delta,
                       const std::vector<TokenLogprob>* logprobs, const std::string& finish_reason,
                       const std::optional<std::string>& stop_reason, bool role) {
  json c = {{"index", index}, {"finish_reason", finish_reason.empty() ? json(nullptr) : json(finish_reason)}};
  if (!finish_reason.empty()) c["stop_reason"] = stop_reason_json(stop_reason);
  if (e == Endpoint::chat) {
    json d = json::object();
    if (role) d["role"] = "assistant";
    d["content"] = std::string(delta);
    c["delta"] = d;
    c["logprobs"] = logprobs ? chat_logprobs_json(*logprobs) : json(nullptr);
  } else {
    c["text"] = std::string(delta);
    c["logprobs"] = logprobs ? completion_logprobs_json(*logprobs, 0) : json(nullptr);
  }
  return dump({{"id", h.id}, {"object", e == Endpoint::chat ? "chat.completion.chunk" : "text_completion"},
               {"created", h.created}, {"model", h.model}, {"choices", json::array({c})}});
}

std::string usage_chunk(Endpoint e, const ServedHeader& h, const Usage& usage) {
  return dump({{"id", h.id}, {"object", e == Endpoint::chat ? "chat.completion.chunk" : "text_completion"},
               {"created", h.created}, {"model", h.model}, {"choices", json::array()},
               {"usage", {{"prompt_tokens", usage.prompt_tokens}, {"completion_tokens", usage.completion_tokens},
                          {"total_tokens", usage.prompt_tokens + usage.completion_tokens}}}});
}

std::string error_body(std::string_view message, std::string_view type, std::string_view param, std::string_view code) {
  json e = {{"message", message}, {"type", type}};
  e["param"] = param.empty() ? json(nullptr) : json(param);
  e["code"] = code.empty() ? json(nullptr) : json(code);
  return json{{"error", e}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace distill::net
