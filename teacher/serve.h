// teacher/serve.h: `distill serve`: a model directory behind the OpenAI-compatible API (/v1/models,
// /v1/completions, /v1/chat/completions, whole or streamed as SSE, with logprobs, seed, stop, max_tokens, n), so
// other tools, and distill's own remote teacher, can use it. Every request joins the one continuous-batching
// engine while it runs, with its own sampling parameters; requests beyond the engine's slots wait in a bounded
// queue, and past that get 503.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace distill::teacher {

struct ServeConfig {
  std::string model_dir;
  std::string host = "127.0.0.1";      // loopback unless asked otherwise
  int port = 8000;                     // 0: a free port (printed)
  std::string served_name;             // the model's name in the API ("" : the directory's name)
  std::string device = "cpu";
  std::int64_t batch = 32;             // sequences decoded together (engine slots)
  std::int64_t max_seq_len = 0;        // prompt + completion per sequence (0: the model's context)
  std::int64_t max_queue = 256;        // sequences waiting for a slot before requests get 503
  std::string api_key_env;             // when set: requests must carry "Authorization: Bearer $VAR"
  std::string prompt_format = "auto";  // how chat messages become a prompt: auto | r1 | chat_template
  std::int64_t http_threads = 2048;    // connections served at once, a thread each (idle ones too, until they time out)
  std::int64_t max_body_bytes = 8 << 20;
  double shutdown_grace_s = 30;        // after SIGTERM: requests still running then are aborted
};

// Serves until SIGINT or SIGTERM, then stops taking requests, lets the running ones finish (up to the grace
// period) and returns. `listening(url)` is called once the port is bound.
void run_serve(const ServeConfig& cfg, const std::function<void(const std::string& url)>& listening);

}  // namespace distill::teacher
