// cli/cmd_generate.cpp: `distill generate`: flags -> teacher::GenerateConfig -> run_generate, with a progress bar.
#include <chrono>
#include <iostream>

#include "cli/command.h"
#include "cli/common.h"
#include "common/interrupt.h"
#include "common/progress.h"
#include "common/errors.h"
#include "common/config_text.h"
#include "net/http.h"
#include "teacher/generate.h"
#include "teacher/remote.h"

namespace distill::cli {

void register_generate(CLI::App& root, Registry& reg) {
  auto a = std::make_shared<teacher::GenerateConfig>();
  auto db = std::make_shared<std::string>();
  a->sampling.temperature = 0.6;
  a->sampling.top_p = 0.95;
  CLI::App* c = root.add_subcommand("generate", torch_command_about("generate"));
  c->add_option("--db", *db, "store file");
  c->add_option("--teacher", a->teacher_dir,
                "teacher model directory (config.json, model.safetensors, tokenizer), or an OpenAI-compatible "
                "endpoint http(s)://HOST:PORT/v1 (with --teacher-model)");
  c->add_option("--split", a->split, "problems to sample");
  c->add_option("--samples", a->samples, "completions per problem (K)");
  c->add_option("--limit", a->limit, "only the first N problems of the split (0: all)");
  add_sampling_filters(*c, a->sampling);
  c->add_option("--max-tokens", a->sampling.max_tokens, "completion length cap");
  c->add_option("--topk-logprobs", a->sampling.topk_logprobs, "store the teacher's top-k logprobs per token (for KD)");
  c->add_option("--batch", a->batch, "sequences decoded together");
  c->add_option("--seed", a->seed, "base seed (each sample's seed derives from it, the problem and the index)");
  c->add_option("--commit-every", a->commit_every, "samples per transaction");
  c->add_option("--device", a->device, "cpu or cuda");
  c->add_option("--prompt-format", a->prompt_format,
                "auto (the teacher's chat template if it has one, else r1), r1 or chat_template");
  c->add_option("--stop", a->stop, "stop string (repeatable); generation ends when it appears");
  auto shard = std::make_shared<std::string>();
  c->add_option("--shard", *shard, "I/N: this worker's share of the problems (by content hash); merge with data merge");
  // A URL teacher (OpenAI-compatible endpoint): these apply only then.
  auto& r = a->remote;
  c->add_option("--teacher-model", r.model, "URL teacher: the model name the server serves");
  c->add_option("--endpoint", r.endpoint, "URL teacher: chat (the server's chat template) or completions (distill's prompt)");
  c->add_option("--api-key-env", r.api_key_env, "URL teacher: the environment variable holding the API key");
  c->add_option("--teacher-tokenizer", r.tokenizer_dir,
                "URL teacher: a directory with the teacher's tokenizer (maps logprob tokens to ids; completions' template)");
  c->add_option("--concurrency", r.concurrency, "URL teacher: requests in flight");
  c->add_option("--request-timeout", r.request_timeout_s, "URL teacher: seconds to wait for the next bytes of an answer");
  c->add_option("--retries", r.retries, "URL teacher: further attempts after a 429, 5xx, drop or malformed answer");
  c->add_option("--backoff-base", r.backoff_base_s, "URL teacher: seconds before the first retry (doubling, with jitter)");
  c->add_option("--max-requests-per-minute", r.max_requests_per_minute, "URL teacher: request rate cap (0: none)");
  c->add_option("--max-total-tokens", r.max_total_tokens,
                "URL teacher: stop cleanly once the server has billed this many tokens (0: no cap); rerun to go on");
  c->add_option("--max-failures", r.max_failures, "URL teacher: requests that may fail for good before the run stops");
  c->add_flag("!--no-stream", r.stream, "URL teacher: ask for whole answers instead of SSE streams");
  c->add_flag("!--no-token-ids", r.token_ids,
              "URL teacher: do not ask for vLLM's return_tokens_as_token_ids (servers that refuse unknown fields)");
  reg.add(c, [c, a, db, shard] {
    require(*c, "--db");
    require(*c, "--teacher");
    if (!shard->empty()) a->shard = teacher::parse_shard(*shard);
    // A URL's user:password never reaches the output or the store: the config keeps the URL without them.
    const std::string config = teacher::is_url_teacher(a->teacher_dir)
        ? with_config_value(resolved_config_toml(*c), "teacher", net::redact_url(net::parse_url(a->teacher_dir, "--teacher")))
        : resolved_config_toml(*c);
    print_config(config);
    auto store = dataset::Store::open(*db, dataset::OpenMode::read);
    std::unique_ptr<Progress> bar;
    std::int64_t last = 0;
    const auto t0 = std::chrono::steady_clock::now();
    auto s = teacher::run_generate(*store, *a, config, [&](std::int64_t done, std::int64_t total, std::int64_t tokens) {
      if (!bar) bar = std::make_unique<Progress>("generate", std::uint64_t(total), "samples");
      bar->add(std::uint64_t(done - last));
      last = done;
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      bar->set_suffix(fmt_fixed(el > 0 ? double(tokens) / el : 0, 0) + " tok/s");
    });
    if (bar) bar->finish();
    std::cout << "generate: " << s.generated << " new samples (" << s.skipped << " of " << s.planned
              << " already stored)";
    if (s.generated) {
      std::cout << ", accept rate " << fmt_fixed(100.0 * double(s.correct) / double(s.generated), 1) << "%, mean "
                << fmt_fixed(double(s.tokens) / double(s.generated), 1) << " tokens, "
                << fmt_fixed(double(s.tokens) / std::max(s.seconds, 1e-9), 0) << " tok/s, "
                << fmt_fixed(s.seconds, 1) << " s";
    }
    if (!s.prompt_format.empty()) std::cout << " (prompt format " << s.prompt_format << ")";
    std::cout << "\n";
    if (s.requests) {
      std::cout << "generate: " << s.requests << " requests answered or given up, " << s.billed_tokens
                << " tokens billed";
      if (s.logprobs_dropped)
        std::cout << "; " << s.logprobs_dropped << " samples stored without logprobs (the server named tokens by text "
                  << "only, or not k per position: pass --teacher-tokenizer DIR to map them)";
      std::cout << "\n";
    }
    if (s.failed)
      throw RuntimeFailure("generate: " + std::to_string(s.failed) + " requests failed after their retries (recorded in "
                           "the store's remote_requests" + (s.stopped_by.empty() ? "" : "; stopped: " + s.stopped_by) +
                           "); run the same command again to retry them");
    if (!s.stopped_by.empty() && s.stopped_by.rfind("--max-total-tokens", 0) == 0)
      std::cout << "generate: stopped at " << s.stopped_by << " (" << s.billed_tokens
                << " billed); run the same command again to go on\n";
    else if (!s.stopped_by.empty())
      throw RuntimeFailure("generate: stopped: " + s.stopped_by);
    if (!s.interrupted_by.empty())
      throw Interrupted("generate: stopped by " + s.interrupted_by + " after " + std::to_string(s.generated) + " of " +
                        std::to_string(s.planned - s.skipped) + " new samples" +
                        (s.generated > 0 ? ", which are stored" : "") + "; run the same command again to draw the rest");
  });
}

}  // namespace distill::cli
