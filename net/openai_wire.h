// net/openai_wire.h: the OpenAI-compatible API's response bodies as a client reads them (/v1/chat/completions and
// /v1/completions, whole or streamed as SSE chunks), its error bodies, and the retry policy of a client that
// calls it. Written from the shapes OpenAI, DeepSeek (reasoning_content) and vLLM (stop_reason, token ids as
// "token_id:N" with return_tokens_as_token_ids) document. Pure functions over bytes: no sockets, no clocks.
// Malformed input is an InputError naming the field ("response: choices[0].message.content: expected a string").
#pragma once

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace distill::net {

enum class Endpoint { chat, completions };

struct TopLogprob {
  std::string token;               // as the server names it: text, or "token_id:N"
  std::optional<std::int64_t> id;  // when the server gave it: "token_id:N" (vLLM) or an "id" field (llama.cpp)
  double logprob = 0;
};

struct TokenLogprob {  // one generated position
  TopLogprob chosen;
  std::vector<TopLogprob> top;  // top_logprobs, most likely first as sent
};

struct Choice {
  std::int64_t index = 0;
  std::string text;                      // message.content (chat) or text (completions); "" when null
  std::optional<std::string> reasoning;  // reasoning_content (or vLLM's newer "reasoning"), where split out
  std::string finish_reason;             // stop | length | ... ("" while streaming)
  // What stopped a "stop" (vLLM's stop_reason, SGLang's matched_stop): the stop string, or "token:N" for a stop
  // token id; nullopt for EOS or unknown.
  std::optional<std::string> stop_reason;
  bool stop_reason_sent = false;         // the field was there (vLLM and SGLang send null for EOS)
  std::vector<TokenLogprob> logprobs;    // empty when not requested
};

struct Usage {
  std::int64_t prompt_tokens = 0, completion_tokens = 0;
};

struct Response {
  std::string id, model, system_fingerprint;
  std::vector<Choice> choices;  // by index
  std::optional<Usage> usage;
};

// A whole (non-streamed) response body.
Response parse_response(std::string_view body, Endpoint e);

// A streamed response: the data of each SSE event in order. "[DONE]" ends it; chunks add text, reasoning and
// logprobs to their choice by index; the last chunk may carry only usage.
class StreamAccumulator {
 public:
  explicit StreamAccumulator(Endpoint e) : endpoint_(e) {}
  void add(std::string_view data);  // InputError for a chunk that is not a valid one
  bool done() const { return done_; }
  const Response& response() const { return r_; }

 private:
  Endpoint endpoint_;
  Response r_;
  bool done_ = false;
};

// "token_id:1234" (vLLM's return_tokens_as_token_ids) -> 1234.
std::optional<std::int64_t> token_id_of(std::string_view token);

// An error body: OpenAI's {"error": {"message", "type", "code"}} or vLLM's {"object": "error", "message", ...}.
// nullopt when the body is neither (an HTML page from a proxy, say).
struct ApiError {
  std::string type, message, code;
};
std::optional<ApiError> parse_error(std::string_view body);

// Retries: 408, 409, 429 and 5xx are worth another try (and a dropped connection, status 0); other 4xx are not.
bool retryable_status(int status);

// Seconds a Retry-After header asks for: delta-seconds, or an HTTP-date against `now_unix`; nullopt when
// unreadable. Never negative.
std::optional<double> parse_retry_after(std::string_view value, double now_unix);

struct Backoff {
  double base_s = 1.0, max_s = 60.0;
};
// The wait before retry number `attempt` (1 = the first retry): exponential with full jitter (`unit` in [0, 1)
// from the caller's seeded generator), capped at max_s; a Retry-After the server sent wins when longer.
double retry_delay(const Backoff& b, int attempt, std::optional<double> retry_after_s, double unit);

// ---- requests, as a remote teacher sends them ------------------------------------------------------------

struct TeacherRequest {
  Endpoint endpoint = Endpoint::chat;
  std::string model;
  std::string input;                 // chat: the one user turn; completions: the prompt text
  double temperature = 1.0, top_p = 1.0;
  std::int64_t top_k = 0;            // sent only when set (> 0): vLLM and SGLang read it, OpenAI refuses it
  double min_p = 0.0;                // likewise (> 0)
  std::int64_t max_tokens = 16;
  std::vector<std::string> stop;
  std::optional<std::uint64_t> seed;
  std::int64_t top_logprobs = 0;     // 0: no logprobs asked for
  bool token_ids = false;            // vLLM's return_tokens_as_token_ids: tokens named "token_id:N"
  bool stream = false;               // with stream_options.include_usage
};

// The JSON body of `r`; params_only leaves out the prompt or messages (what lineage stores).
std::string request_body(const TeacherRequest& r, bool params_only = false);

// ---- requests, as `distill serve` reads them -------------------------------------------------------------

struct ChatMessage {
  std::string role;     // system | user | assistant
  std::string content;  // a string, or the text parts of a content array joined
};

struct Request {
  Endpoint endpoint = Endpoint::chat;
  std::string model;
  std::vector<ChatMessage> messages;  // chat
  std::string prompt;                 // completions
  std::int64_t max_tokens = 16;       // completions' default
  bool max_tokens_given = false;      // chat without one: the server chooses
  double temperature = 1.0, top_p = 1.0;
  std::int64_t top_k = 0;             // vLLM's and SGLang's extension (0 or -1: off)
  double min_p = 0;                   // likewise
  std::int64_t n = 1;
  std::vector<std::string> stop;
  std::optional<std::int64_t> seed;
  bool logprobs = false;
  std::int64_t top_logprobs = 0;      // chat: top_logprobs; completions: the integer `logprobs`
  bool stream = false, include_usage = false;
  bool token_ids = false;             // vLLM's return_tokens_as_token_ids: name tokens "token_id:N"
};

// A request that breaks the API's rules, answered with HTTP 400 and error_body(): `param` names the field.
struct RequestError : std::exception {
  std::string message, param;
  RequestError(std::string m, std::string p) : message(std::move(m)), param(std::move(p)) {}
  const char* what() const noexcept override { return message.c_str(); }
};

// Parses and checks a request body for `e`: types, ranges (temperature 0-2, top_p (0, 1], n 1-16, at most 4 stop
// strings, top_logprobs 0-20 for chat and logprobs 0-5 for completions, max_tokens >= 1), known roles, and no
// feature serve does not offer (tools, echo, token-id prompts, best_of). Throws RequestError.
Request parse_request(std::string_view body, Endpoint e);

// ---- responses, as `distill serve` writes them ------------------------------------------------------------

struct ServedChoice {
  std::string text;
  std::string finish_reason;              // stop | length | abort
  std::optional<std::string> stop_reason;  // the stop string that ended it (vLLM's field); null for EOS
  std::vector<TokenLogprob> logprobs;     // written when the request asked for logprobs
};
struct ServedHeader {
  std::string id, model;
  std::int64_t created = 0;
};

// A whole response body. `logprobs`: whether the request asked for them.
std::string response_body(Endpoint e, const ServedHeader& h, const std::vector<ServedChoice>& choices, const Usage& usage,
                          bool logprobs);
// One streamed chunk (the data of one SSE event) for choice `index`: a text delta and its tokens' logprobs, and the
// finish reason on the last. `role` opens a chat stream.
std::string chunk_body(Endpoint e, const ServedHeader& h, std::int64_t index, std::string_view delta,
                       const std::vector<TokenLogprob>* logprobs, const std::string& finish_reason = "",
                       const std::optional<std::string>& stop_reason = std::nullopt, bool role = false);
// The last chunk of a stream that asked for usage: no choices.
std::string usage_chunk(Endpoint e, const ServedHeader& h, const Usage& usage);

// {"error": {"message", "type", "param", "code"}}, OpenAI's error body.
std::string error_body(std::string_view message, std::string_view type, std::string_view param = "",
                       std::string_view code = "");

}  // namespace distill::net
