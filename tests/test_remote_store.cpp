// tests/test_remote_store.cpp: how a remote teacher's answer becomes a stored sample: the think block rebuilt from
// reasoning sent apart, OpenAI's "stop" split into EOS and stop string, and a URL teacher's identity. The HTTP side
// (faults, retries, keys, resume) is tests/remote/test_remote_teacher.py, against real servers on 127.0.0.1.
#include <catch2/catch.hpp>

#include "common/errors.h"
#include "net/openai_wire.h"
#include "teacher/remote.h"

using namespace distill;
using namespace distill::teacher;

namespace {
net::Choice choice(std::string text, std::optional<std::string> reasoning = std::nullopt) {
  net::Choice c;
  c.text = std::move(text);
  c.reasoning = std::move(reasoning);
  c.finish_reason = "stop";
  return c;
}
}  // namespace

TEST_CASE("remote teacher: the stored completion rebuilds the think block the local engine would store") {
  // Reasoning sent apart (DeepSeek, vLLM and SGLang reasoning parsers), with or without its own newlines.
  CHECK(remote_completion(choice("\n\nThe answer is 8.", "3+5=8\n")) == "<think>\n3+5=8\n</think>\n\nThe answer is 8.");
  CHECK(remote_completion(choice("The answer is 8.", "3+5=8")) == "<think>\n3+5=8\n</think>\n\nThe answer is 8.");
  // Inline, as the model wrote it: kept.
  CHECK(remote_completion(choice("<think>\nx\n</think>\n\n8")) == "<think>\nx\n</think>\n\n8");
  // Closed but not opened (the chat template opened it, as DeepSeek-R1's does): opened, as locally.
  CHECK(remote_completion(choice("x\n</think>\n\n8")) == "<think>\nx\n</think>\n\n8");
  // No think block at all (a non-reasoning teacher): as it is.
  CHECK(remote_completion(choice("8")) == "8");
  CHECK(remote_completion(choice("8", "")) == "8");
}

TEST_CASE("remote teacher: OpenAI's stop is EOS unless a stop string or vLLM's stop_reason says otherwise") {
  auto c = choice("x");
  CHECK(remote_finish_reason(c, false) == std::optional<std::string>("eos"));
  CHECK(remote_finish_reason(c, true) == std::optional<std::string>("stop"));  // OpenAI: cannot tell, as sent
  c.stop_reason_sent = true;  // vLLM's null: EOS, even with stop strings sent
  CHECK(remote_finish_reason(c, true) == std::optional<std::string>("eos"));
  c.stop_reason = "</answer>";
  CHECK(remote_finish_reason(c, true) == std::optional<std::string>("stop"));
  c.stop_reason = "token:151643";
  CHECK(remote_finish_reason(c, true) == std::optional<std::string>("eos"));
  c.finish_reason = "length";
  CHECK(remote_finish_reason(c, false) == std::optional<std::string>("length"));
  c.finish_reason = "content_filter";
  CHECK_FALSE(remote_finish_reason(c, false));
}

TEST_CASE("remote teacher: its identity is the URL without credentials plus the model") {
  GenerateConfig a, b;
  a.teacher_dir = "http://alice:pw@127.0.0.1:8000/v1/";
  b.teacher_dir = "http://127.0.0.1:8000/v1";
  a.remote.model = b.remote.model = "deepseek-r1";
  const auto ma = remote_model_row(a), mb = remote_model_row(b);
  CHECK(ma.sha256 == mb.sha256);
  CHECK(ma.path == "http://127.0.0.1:8000/v1");
  CHECK(ma.arch == "remote:deepseek-r1");
  b.remote.model = "deepseek-r1-0528";
  CHECK(remote_model_row(b).sha256 != ma.sha256);
  CHECK(is_url_teacher("HTTPS://api.deepseek.com"));
  CHECK_FALSE(is_url_teacher("models/demo-teacher"));
}
