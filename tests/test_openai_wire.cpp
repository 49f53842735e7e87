// tests/test_openai_wire.cpp: the OpenAI-compatible wire formats a remote-teacher client reads (net/): whole and
// streamed responses in the shapes OpenAI, DeepSeek (reasoning_content) and vLLM (stop_reason, token ids) document,
// SSE framing split at every byte (chunked = whole), error bodies, Retry-After and the backoff; all under the seeded
// byte mutations of the parser tests.
#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>
#include <tuple>

#include "common/errors.h"
#include "net/http.h"
#include "net/openai_wire.h"
#include "net/sse.h"
#include "tests/helpers.h"

using namespace distill;
using namespace distill::net;

namespace {

// DeepSeek's reasoner: the reasoning in its own field, usage, a fingerprint.
const char* kDeepSeekChat = R"({"id": "930c60df", "object": "chat.completion", "created": 1705651092,
  "model": "deepseek-reasoner", "system_fingerprint": "fp_7dad3f8a",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "The answer is \\boxed{8}.",
                "reasoning_content": "3 + 5 = 8."}, "logprobs": null, "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}})";

// vLLM with logprobs, return_tokens_as_token_ids and a stop string.
const char* kVllmChat = R"({"id": "chatcmpl-1", "object": "chat.completion", "model": "Qwen/Qwen2.5-1.5B",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
    "logprobs": {"content": [
      {"token": "token_id:13048", "logprob": -0.25, "bytes": [72, 105],
       "top_logprobs": [{"token": "token_id:13048", "logprob": -0.25}, {"token": "token_id:9707", "logprob": -1.5}]}]},
    "finish_reason": "stop", "stop_reason": "</answer>"}],
  "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})";

// /v1/completions with the legacy logprobs shape.
const char* kCompletions = R"({"id": "cmpl-2", "object": "text_completion", "model": "m",
  "choices": [{"index": 0, "text": " 8", "finish_reason": "length", "stop_reason": null,
    "logprobs": {"tokens": [" ", "8"], "token_logprobs": [-0.1, -0.2], "text_offset": [0, 1],
                 "top_logprobs": [{" ": -0.1, "\n": -2.5}, {"7": -3.0, "8": -0.2}]}}]})";

}  // namespace

TEST_CASE("openai wire: whole responses in DeepSeek's, vLLM's and the completions shape") {
  auto d = parse_response(kDeepSeekChat, Endpoint::chat);
  CHECK(d.model == "deepseek-reasoner");
  CHECK(d.system_fingerprint == "fp_7dad3f8a");
  REQUIRE(d.choices.size() == 1);
  CHECK(d.choices[0].text == "The answer is \\boxed{8}.");
  CHECK(d.choices[0].reasoning == std::optional<std::string>("3 + 5 = 8."));
  CHECK(d.choices[0].finish_reason == "stop");
  CHECK(d.choices[0].logprobs.empty());
  REQUIRE(d.usage);
  CHECK(d.usage->completion_tokens == 9);

  auto v = parse_response(kVllmChat, Endpoint::chat);
  REQUIRE(v.choices[0].logprobs.size() == 1);
  const auto& p = v.choices[0].logprobs[0];
  CHECK(p.chosen.id == std::optional<std::int64_t>(13048));
  CHECK(p.chosen.logprob == -0.25);
  REQUIRE(p.top.size() == 2);
  CHECK(p.top[1].id == std::optional<std::int64_t>(9707));
  CHECK(v.choices[0].stop_reason == std::optional<std::string>("</answer>"));
  CHECK_FALSE(v.choices[0].reasoning);

  auto c = parse_response(kCompletions, Endpoint::completions);
  CHECK(c.choices[0].text == " 8");
  CHECK(c.choices[0].finish_reason == "length");
  REQUIRE(c.choices[0].logprobs.size() == 2);
  CHECK_FALSE(c.choices[0].logprobs[1].chosen.id);  // text tokens: ids come only from a tokenizer
  REQUIRE(c.choices[0].logprobs[1].top.size() == 2);
  CHECK(c.choices[0].logprobs[1].top[0].token == "8");  // most likely first
  CHECK_FALSE(c.usage);

  // A stop token id (vLLM sends an integer) and a null content (tool calls).
  auto t = parse_response(R"({"choices": [{"message": {"content": null}, "finish_reason": "stop", "stop_reason": 151643}]})",
                          Endpoint::chat);
  CHECK(t.choices[0].text.empty());
  CHECK(t.choices[0].stop_reason == std::optional<std::string>("token:151643"));
}

TEST_CASE("openai wire: malformed responses name the field and what was expected") {
  const std::pair<const char*, const char*> cases[] = {
      {"", "response: not valid JSON"},
      {"[1]", "response: expected a JSON object, got array"},
      {R"({"id": "x"})", "response: response.choices: missing"},
      {R"({"choices": {}})", "response: choices: expected an array"},
      {R"({"choices": [{"message": {"content": 7}, "finish_reason": "stop"}]})",
       "response: choices[0].message.content: expected a string, got number"},
      {R"({"choices": [{"message": {"content": "x"}}]})", "response: choices[0].finish_reason: missing"},
      {R"({"choices": [{"index": -1, "message": {"content": "x"}, "finish_reason": "stop"}]})",
       "response: choices[0].index: expected a small whole number"},
      {R"({"choices": [{"message": {"content": "x"}, "finish_reason": "stop", "logprobs": {"content": [{"token": "a"}]}}]})",
       "response: choices[0].logprobs.content[0].logprob: missing"},
      {R"({"choices": [{"text": "x", "finish_reason": "stop", "logprobs": {"tokens": ["a"], "token_logprobs": []}}]})",
       "response: choices[0].logprobs: expected arrays tokens and token_logprobs of one length"},
      {R"({"error": {"message": "overloaded"}, "choices": []})", "response: error: the server sent an error"},
  };
  for (const auto& [body, want] : cases) {
    INFO(body);
    const auto e = std::string(body).find("\"text\"") != std::string::npos ? Endpoint::completions : Endpoint::chat;
    CHECK_THROWS_WITH(parse_response(body, e), Catch::StartsWith(want));
  }
  CHECK(token_id_of("token_id:12") == std::optional<std::int64_t>(12));
  CHECK_FALSE(token_id_of("token_id:"));
  CHECK_FALSE(token_id_of("token_id:-3"));
  CHECK_FALSE(token_id_of("token_id:1x"));
  CHECK_FALSE(token_id_of("hello"));
}

TEST_CASE("openai wire: an SSE stream split at every byte gives the events of the whole, and the chunks add up") {
  // A streamed chat response as vLLM sends it: a role chunk, reasoning, content, a keep-alive comment, CRLF line
  // ends on one event, a final usage-only chunk, then [DONE].
  const std::string stream =
      "data: {\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"},\"finish_reason\":null}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"3 + 5\"},\"finish_reason\":null}]}\n\n"
      ": keep-alive\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\" = 8\"},\"finish_reason\":null}]}\r\n\r\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\\\boxed{8}\"},\"finish_reason\":\"stop\",\"stop_reason\":null}]}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":5,\"total_tokens\":9}}\n\n"
      "data: [DONE]\n\n";
  SseDecoder whole;
  const auto events = whole.feed(stream);
  REQUIRE(events.size() == 6);
  CHECK_FALSE(whole.pending());
  for (std::size_t cut = 1; cut < stream.size(); ++cut) {  // every split point, including inside "\r\n"
    SseDecoder d;
    auto a = d.feed(std::string_view(stream).substr(0, cut));
    auto b = d.feed(std::string_view(stream).substr(cut));
    a.insert(a.end(), b.begin(), b.end());
    REQUIRE(a.size() == events.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].data == events[i].data);
  }
  StreamAccumulator acc(Endpoint::chat);
  for (const auto& e : events) acc.add(e.data);
  CHECK(acc.done());
  const auto& r = acc.response();
  REQUIRE(r.choices.size() == 1);
  CHECK(r.choices[0].reasoning == std::optional<std::string>("3 + 5 = 8"));
  CHECK(r.choices[0].text == "\\boxed{8}");
  CHECK(r.choices[0].finish_reason == "stop");
  REQUIRE(r.usage);
  CHECK(r.usage->completion_tokens == 5);
  CHECK(r.id == "c1");
  CHECK_THROWS_WITH(acc.add("{}"), "response stream: data after [DONE]");

  // Multi-line data joins with LF; an event with no data is not dispatched; a cut-off stream is pending.
  SseDecoder d;
  auto multi = d.feed("event: x\ndata: a\ndata: b\n\nevent: nothing\n\ndata: tail");
  REQUIRE(multi.size() == 1);
  CHECK(multi[0].data == "a\nb");
  CHECK(multi[0].event == "x");
  CHECK(d.pending());
  SseDecoder small(64);
  CHECK_THROWS_WITH(small.feed("data: " + std::string(100, 'x')), Catch::Contains("longer than 64 bytes"));
}

TEST_CASE("openai wire: error bodies, retryable statuses, Retry-After and full-jitter backoff") {
  auto o = parse_error(R"({"error": {"message": "Rate limit reached", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})");
  REQUIRE(o);
  CHECK(o->message == "Rate limit reached");
  CHECK(o->code == "rate_limit_exceeded");
  auto v = parse_error(R"({"object": "error", "message": "max_tokens must be at least 1", "type": "BadRequestError", "code": 400})");
  REQUIRE(v);
  CHECK(v->type == "BadRequestError");
  CHECK(v->code == "400");
  CHECK_FALSE(parse_error("<html>502 Bad Gateway</html>"));
  CHECK_FALSE(parse_error(R"({"choices": []})"));

  for (int s : {0, 408, 409, 429, 500, 502, 503, 504}) CHECK(retryable_status(s));
  for (int s : {200, 400, 401, 403, 404, 422}) CHECK_FALSE(retryable_status(s));

  CHECK(parse_retry_after("7", 0) == std::optional<double>(7));
  CHECK(parse_retry_after(" 0 ", 0) == std::optional<double>(0));
  // Wed, 21 Oct 2015 07:28:00 GMT is 1445412480 seconds after the epoch
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480.0 - 30) == std::optional<double>(30));
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480.0 + 99) == std::optional<double>(0));
  for (const char* bad : {"", "-1", "soon", "1.5", "99999999999", "Wed, 21 Oct 2015 07:28:00"}) CHECK_FALSE(parse_retry_after(bad, 0));

  const Backoff b{1.0, 60.0};
  CHECK(retry_delay(b, 1, std::nullopt, 0.5) == 0.5);
  CHECK(retry_delay(b, 3, std::nullopt, 0.5) == 2.0);    // cap 4 s at the third retry
  CHECK(retry_delay(b, 20, std::nullopt, 0.999) < 60.0);  // capped
  CHECK(retry_delay(b, 1, 30.0, 0.5) == 30.0);             // the server's Retry-After wins when longer
  CHECK(retry_delay(b, 6, 1.0, 0.5) == 16.0);             // cap 32 s at the sixth
}

TEST_CASE("openai wire: requests as serve reads them, with OpenAI-style errors naming the field") {
  auto c = parse_request(R"({"model": "m", "messages": [{"role": "system", "content": "Be brief."},
      {"role": "user", "content": [{"type": "text", "text": "What is "}, {"type": "text", "text": "3+5?"}]}],
      "max_completion_tokens": 64, "temperature": 0.6, "top_p": 0.95, "n": 2, "stop": "</answer>", "seed": 7,
      "logprobs": true, "top_logprobs": 5, "stream": true, "stream_options": {"include_usage": true}})",
                         Endpoint::chat);
  REQUIRE(c.messages.size() == 2);
  CHECK(c.messages[1].content == "What is 3+5?");
  CHECK(c.max_tokens == 64);
  CHECK(c.max_tokens_given);
  CHECK(c.temperature == 0.6);
  CHECK(c.n == 2);
  CHECK(c.stop == std::vector<std::string>{"</answer>"});
  CHECK(c.seed == std::optional<std::int64_t>(7));
  CHECK(c.top_logprobs == 5);
  CHECK(c.stream);
  CHECK(c.include_usage);
  auto p = parse_request(R"({"model": "m", "prompt": "3+5=", "logprobs": 2})", Endpoint::completions);
  CHECK(p.prompt == "3+5=");
  CHECK(p.max_tokens == 16);  // the completions default
  CHECK_FALSE(p.max_tokens_given);
  CHECK(p.logprobs);
  CHECK(p.top_logprobs == 2);

  const std::tuple<Endpoint, const char*, const char*, const char*> bad[] = {
      {Endpoint::chat, "{", "", "the body is not valid JSON"},
      {Endpoint::chat, "[]", "", "the body must be a JSON object, got array"},
      {Endpoint::chat, R"({"messages": [{"role": "user", "content": "x"}]})", "model", "'model' must be a string"},
      {Endpoint::chat, R"({"model": "m", "messages": []})", "messages", "'messages' must be a non-empty array"},
      {Endpoint::chat, R"({"model": "m", "messages": [{"role": "tool", "content": "x"}]})", "messages[0].role",
       "'messages[0].role' is 'tool'"},
      {Endpoint::chat, R"({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
       "messages[0].content[0]", "'messages[0].content[0]': only text parts"},
      {Endpoint::chat, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1})", "max_tokens",
       "'max_tokens' must lie in [1, 1000000000], got -1"},
      {Endpoint::chat, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 2.5})",
       "temperature", "'temperature' must lie in [0, 2], got 2.5"},
      {Endpoint::chat, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "top_p": 0})", "top_p",
       "'top_p' must lie in (0, 1], got 0"},
      {Endpoint::chat, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 1.5})", "n",
       "'n' must be an integer, got number"},
      {Endpoint::chat, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": ["a","b","c","d","e"]})",
       "stop", "'stop' takes at most 4 strings"},
      {Endpoint::chat, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 3})",
       "top_logprobs", "'top_logprobs' needs 'logprobs': true"},
      {Endpoint::chat, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": []})", "tools",
       "'tools' is not served"},
      {Endpoint::completions, R"({"model": "m", "prompt": [1, 2]})", "prompt", "'prompt' must be a string"},
      {Endpoint::completions, R"({"model": "m", "prompt": "x", "logprobs": 6})", "logprobs", "'logprobs' must lie in [0, 5]"},
      {Endpoint::completions, R"({"model": "m", "prompt": "x", "echo": true})", "echo", "'echo' is not served"},
  };
  for (const auto& [e, body, param, message] : bad) {
    INFO(body);
    try {
      parse_request(body, e);
      FAIL("accepted");
    } catch (const RequestError& err) {
      CHECK(err.param == param);
      CHECK_THAT(err.message, Catch::StartsWith(message));
    }
  }
  CHECK(error_body("bad 'n'", "invalid_request_error", "n") ==
        R"({"error":{"code":null,"message":"bad 'n'","param":"n","type":"invalid_request_error"}})");
  // The error body itself reads back as one.
  auto back = parse_error(error_body("m", "t", "", "c"));
  REQUIRE(back);
  CHECK(back->code == "c");
}

// Newer vLLM's "reasoning", SGLang's matched_stop, llama.cpp's token ids on chat and completions logprobs.
const char* kVllmReasoning = R"({"id": "c", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant",
  "content": "\n\n8", "reasoning": "3+5=8\n", "reasoning_content": "3+5=8\n"}, "finish_reason": "stop",
  "stop_reason": null}]})";
const char* kSglang = R"({"id": "c", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant",
  "content": "8", "reasoning_content": "r"}, "finish_reason": "stop", "matched_stop": "</answer>"}]})";
const char* kLlamaCppCompletion = R"({"id": "c", "model": "m", "choices": [{"index": 0, "text": "Hi",
  "finish_reason": "stop", "logprobs": {"content": [{"id": 791, "token": "Hi", "bytes": [72, 105], "logprob": -0.5,
  "top_logprobs": [{"id": 791, "token": "Hi", "logprob": -0.5}, {"id": 12, "token": "Ho", "logprob": -2.0}]}]}}],
  "timings": {"predicted_ms": 1.5}})";

TEST_CASE("openai wire: vLLM's reasoning field, SGLang's matched_stop and llama.cpp's token ids") {
  const auto v = parse_response(kVllmReasoning, Endpoint::chat).choices.at(0);
  CHECK(v.reasoning == std::optional<std::string>("3+5=8\n"));  // both fields sent alike: taken once
  CHECK_FALSE(v.stop_reason);
  CHECK(v.stop_reason_sent);  // null, sent: EOS
  CHECK_FALSE(parse_response(kDeepSeekChat, Endpoint::chat).choices.at(0).stop_reason_sent);
  const auto g = parse_response(kSglang, Endpoint::chat).choices.at(0);
  CHECK(g.reasoning == std::optional<std::string>("r"));
  CHECK(g.stop_reason == std::optional<std::string>("</answer>"));
  const auto l = parse_response(kLlamaCppCompletion, Endpoint::completions).choices.at(0);
  REQUIRE(l.logprobs.size() == 1);
  CHECK(l.logprobs[0].chosen.id == std::optional<std::int64_t>(791));
  REQUIRE(l.logprobs[0].top.size() == 2);
  CHECK(l.logprobs[0].top[1].id == std::optional<std::int64_t>(12));
  CHECK(l.logprobs[0].top[1].token == "Ho");
  CHECK_THROWS_WITH(parse_response(R"({"choices": [{"index": 0, "text": "", "finish_reason": "stop", "logprobs":
                    {"content": [{"id": "x", "token": "a", "logprob": 0}]}}]})", Endpoint::completions),
                    Catch::Contains("logprobs.content[0].id") && Catch::Contains("integer token id"));
  // Streamed, newer vLLM's deltas name it "reasoning" too.
  StreamAccumulator a(Endpoint::chat);
  a.add(R"({"choices":[{"index":0,"delta":{"reasoning":"a"},"finish_reason":null}]})");
  a.add(R"({"choices":[{"index":0,"delta":{"reasoning":"b","content":""},"finish_reason":null}]})");
  a.add(R"({"choices":[{"index":0,"delta":{"content":"c"},"finish_reason":"stop","matched_stop":7}]})");
  a.add("[DONE]");
  CHECK(a.response().choices.at(0).reasoning == std::optional<std::string>("ab"));
  CHECK(a.response().choices.at(0).text == "c");
  CHECK(a.response().choices.at(0).stop_reason == std::optional<std::string>("token:7"));
}

TEST_CASE("openai wire: a remote teacher's request body, whole and as lineage") {
  TeacherRequest r;
  r.model = "deepseek-reasoner";
  r.input = "What is 3+5?";
  r.temperature = 0.6;
  r.top_p = 0.95;
  r.max_tokens = 512;
  r.seed = 42;
  r.stream = true;
  auto j = nlohmann::json::parse(request_body(r));
  CHECK(j == nlohmann::json::parse(R"({"model": "deepseek-reasoner", "temperature": 0.6, "top_p": 0.95,
    "max_tokens": 512, "seed": 42, "messages": [{"role": "user", "content": "What is 3+5?"}], "stream": true,
    "stream_options": {"include_usage": true}})"));
  // Only set extensions go out (OpenAI refuses unknown fields); completions' logprobs is an integer.
  r.endpoint = Endpoint::completions;
  r.top_k = 20;
  r.top_logprobs = 4;
  r.token_ids = true;
  r.stop = {"</answer>"};
  r.stream = false;
  j = nlohmann::json::parse(request_body(r));
  CHECK(j["prompt"] == "What is 3+5?");
  CHECK(j["top_k"] == 20);
  CHECK_FALSE(j.contains("min_p"));
  CHECK(j["logprobs"] == 4);
  CHECK(j["return_tokens_as_token_ids"] == true);
  CHECK(j["stop"] == nlohmann::json::array({"</answer>"}));
  const auto params = nlohmann::json::parse(request_body(r, true));
  CHECK_FALSE(params.contains("prompt"));
  CHECK(params["seed"] == 42);
  // The body a serve parses back is the one sent.
  r.endpoint = Endpoint::chat;
  const auto back = parse_request(request_body(r), Endpoint::chat);
  CHECK(back.messages.at(0).content == "What is 3+5?");
  CHECK(back.max_tokens == 512);
  CHECK(back.top_logprobs == 4);
  CHECK(back.seed == std::optional<std::int64_t>(42));
}

TEST_CASE("openai wire: what serve writes, the client reads back, whole and streamed") {
  ServedHeader h{"chatcmpl-1", "demo", 1765000000};
  TokenLogprob t{{"token_id:5", 5, -0.25}, {{"token_id:5", 5, -0.25}, {"token_id:9", 9, -2.0}}};
  std::vector<ServedChoice> cs = {{"<think>\nx\n</think>\n8", "stop", std::nullopt, {t}},
                                  {"y", "stop", "</answer>", {t}}, {"zz", "length", std::nullopt, {t}}};
  for (auto e : {Endpoint::chat, Endpoint::completions}) {
    const auto r = parse_response(response_body(e, h, cs, {12, 3}, true), e);
    CHECK(r.id == "chatcmpl-1");
    CHECK(r.model == "demo");
    REQUIRE(r.usage);
    CHECK(r.usage->prompt_tokens == 12);
    CHECK(r.usage->completion_tokens == 3);
    REQUIRE(r.choices.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
      CHECK(r.choices[i].text == cs[i].text);
      CHECK(r.choices[i].finish_reason == cs[i].finish_reason);
      CHECK(r.choices[i].stop_reason == cs[i].stop_reason);
      REQUIRE(r.choices[i].logprobs.size() == 1);
      CHECK(r.choices[i].logprobs[0].chosen.id == std::optional<std::int64_t>(5));
      REQUIRE(r.choices[i].logprobs[0].top.size() == 2);
      CHECK(r.choices[i].logprobs[0].top[1].id == std::optional<std::int64_t>(9));
      CHECK(r.choices[i].logprobs[0].top[1].logprob == -2.0);
    }
    // The same as a stream: a role chunk, deltas with their logprobs, the finish, usage, [DONE].
    StreamAccumulator a(e);
    a.add(chunk_body(e, h, 0, "<think>\nx", nullptr, "", std::nullopt, true));
    std::vector<TokenLogprob> lps = {t};
    a.add(chunk_body(e, h, 0, "\n</think>\n8", &lps));
    a.add(chunk_body(e, h, 0, "", nullptr, "stop"));
    a.add(usage_chunk(e, h, {12, 1}));
    a.add("[DONE]");
    REQUIRE(a.done());
    CHECK(a.response().choices.at(0).text == cs[0].text);
    CHECK(a.response().choices.at(0).finish_reason == "stop");
    CHECK(a.response().choices.at(0).logprobs.size() == 1);
    CHECK(a.response().usage->completion_tokens == 1);
  }
}

TEST_CASE("http: URLs parse, keep their base path, and never show their credentials") {
  auto u = parse_url("http://alice:pw@127.0.0.1:8000/v1/");
  CHECK(u.scheme == "http");
  CHECK(u.host == "127.0.0.1");
  CHECK(u.port == 8000);
  CHECK(u.base_path == "/v1");
  CHECK(u.user == "alice");
  CHECK(u.password == "pw");
  CHECK(redact_url(u) == "http://127.0.0.1:8000/v1");
  CHECK(redact_url(parse_url("HTTPS://api.deepseek.com")) == "https://api.deepseek.com");
  CHECK(parse_url("https://api.deepseek.com").port == 443);
  CHECK(parse_url("http://[::1]:9000/v1").host == "[::1]");
  for (const char* bad : {"ftp://h/v1", "127.0.0.1:8000", "http://:80", "http://h:0", "http://h:99999", "http://h:x",
                          "http://h:", "http://h/v1?key=1", "http://[::1/v1"})
    CHECK_THROWS_AS(parse_url(bad, "--teacher"), InputError);
  // An error about a URL with a password shows it masked.
  CHECK_THROWS_WITH(parse_url("http://bob:s3cret@h:x/v1", "--teacher"),
                    Catch::Contains("--teacher") && !Catch::Contains("s3cret"));
}

TEST_CASE("parser mutations: OpenAI responses, stream chunks and SSE framing never crash") {
  test::survive_mutations({R"({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
                              "max_tokens": 8, "stop": ["a"], "seed": 1, "logprobs": true, "top_logprobs": 2})"},
                          20000, 36, [](const std::string& b) {
                            try {
                              parse_request(b, Endpoint::chat);
                            } catch (const RequestError& e) {
                              throw InputError(e.message);  // serve answers it with a 400
                            }
                          });
  test::survive_mutations({kDeepSeekChat, kVllmChat, kVllmReasoning, kSglang}, 20000, 31,
                          [](const std::string& b) { parse_response(b, Endpoint::chat); });
  test::survive_mutations({kCompletions, kLlamaCppCompletion}, 10000, 32,
                          [](const std::string& b) { parse_response(b, Endpoint::completions); });
  test::survive_mutations({"http://alice:pw@127.0.0.1:8000/v1", "https://[::1]/x"}, 5000, 37,
                          [](const std::string& b) { parse_url(b); });
  test::survive_mutations({R"({"choices":[{"index":0,"delta":{"content":"x","reasoning_content":"y"},"finish_reason":null}]})"},
                          10000, 33, [](const std::string& b) {
                            StreamAccumulator a(Endpoint::chat);
                            a.add(b);
                          });
  // A whole stream: framing, then every event's chunk.
  const std::string stream =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":null}]}\r\n\r\n"
      ": keep-alive\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
  test::survive_mutations({stream}, 10000, 34, [](const std::string& b) {
    SseDecoder d(4096);
    StreamAccumulator a(Endpoint::chat);
    for (const auto& e : d.feed(b)) a.add(e.data);
  });
  test::survive_mutations({R"({"error": {"message": "m", "type": "t", "code": 1}})"}, 5000, 35, [](const std::string& b) {
    if (!parse_error(b)) throw InputError("not an error body");  // the caller's reading of nullopt
  });
}
