// cli/cmd_serve.cpp: `distill serve`: flags -> teacher::ServeConfig -> run_serve; prints the URL once listening.
#include <iostream>

#include "cli/command.h"
#include "cli/common.h"
#include "teacher/serve.h"

namespace distill::cli {

void register_serve(CLI::App& root, Registry& reg) {
  auto a = std::make_shared<teacher::ServeConfig>();
  CLI::App* c = root.add_subcommand("serve", torch_command_about("serve"));
  c->add_option("--model", a->model_dir, "model directory (config.json, model.safetensors, tokenizer)");
  c->add_option("--host", a->host, "address to listen on (loopback by default; 0.0.0.0 for every interface)");
  c->add_option("--port", a->port, "port (0: a free one, printed)");
  c->add_option("--served-model-name", a->served_name, "the model's name in the API (default: the directory's name)");
  c->add_option("--device", a->device, "cpu or cuda");
  c->add_option("--batch", a->batch, "sequences decoded together (the engine's slots)");
  c->add_option("--max-seq-len", a->max_seq_len, "prompt + completion per sequence (0: the model's context)");
  c->add_option("--max-queue", a->max_queue, "sequences waiting for a slot; past it requests get 503");
  c->add_option("--api-key-env", a->api_key_env, "require 'Authorization: Bearer' with the key in this variable");
  c->add_option("--prompt-format", a->prompt_format, "chat messages as the model's chat template (auto) or r1");
  c->add_option("--http-threads", a->http_threads, "connections served at once, a thread each, started as they come (idle ones hold theirs until they time out)");
  c->add_option("--max-body-bytes", a->max_body_bytes, "request body cap (larger: 413)");
  c->add_option("--shutdown-grace", a->shutdown_grace_s, "seconds the requests in flight get after SIGTERM");
  reg.add(c, [c, a] {
    require(*c, "--model");
    teacher::run_serve(*a, [&](const std::string& url) {
      std::cout << "serve: listening on " << url << " (model " << (a->served_name.empty() ? a->model_dir : a->served_name)
                << ", " << a->batch << " slots)" << std::endl;
    });
    std::cout << "serve: stopped" << std::endl;
  });
}

}  // namespace distill::cli
