// teacher/engine.h: the generation engine: batched prefill, then decode with a preallocated KV cache and
// continuous batching (a finished sequence leaves its cache slot and a waiting one joins at once).
// Knows nothing about text: prompts are token ids and stop rules are a callback over ids.
// Split as gpt-fast does: prefill() admits sequences, decode_step() advances every active one by a token.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "model/transformer.h"
#include "teacher/sampling.h"

namespace distill::teacher {

struct GenResult;

struct GenRequest {
  std::int64_t id = 0;           // caller's handle (e.g. index into its work list)
  std::vector<int> prompt;       // token ids, non-empty
  std::uint64_t seed = 0;        // this sequence's sampling seed
  // Per request (`distill serve`): its own sampling parameters (else the run's), its own stop rule (besides the
  // run's), a hook after each token (streaming; called on the engine's thread, so it must be quick), and a flag
  // that abandons it (a client that hung up): it then ends with finish_reason "abort".
  std::shared_ptr<const SamplingParams> params;
  std::function<bool(const std::vector<int>&)> stop;
  std::function<void(const GenResult&)> on_token;
  std::shared_ptr<std::atomic<bool>> abandoned;
};

// Where requests come from while the engine runs: a fixed queue (Engine::run), or `serve`'s admission queue.
class RequestSource {
 public:
  virtual ~RequestSource() = default;
  virtual std::int64_t waiting() = 0;                   // requests ready to join now
  virtual std::vector<GenRequest> take(std::int64_t n) = 0;  // up to n of them, in arrival order
  // Called when the engine has nothing to do: blocks until a request arrives (true) or none ever will (false).
  virtual bool wait() = 0;
};

struct GenResult {
  std::int64_t id = 0;
  std::vector<int> tokens;       // generated ids (the stop token included when it is EOS)
  std::string finish_reason;     // "eos" | "stop" | "length" | "abort" (abandoned)
  std::vector<std::vector<std::pair<int, float>>> topk;  // per generated token, when topk_logprobs > 0
  std::vector<float> token_logprobs;                      // logprob of each generated token (unfiltered)
  double seconds = 0;            // from admission (prefill) to the last token
};

struct EngineOptions {
  std::int64_t max_batch = 32;    // cache slots
  std::int64_t max_seq_len = 512; // prompt + completion per slot
  std::int64_t eos_id = 2;
  std::vector<std::int64_t> more_eos_ids;  // further ids that end a sequence as EOS (generation_config.json lists several)
  // Requests join (one prefill) once this many slots are free, or all are, or the queue is that short: each
  // prefill is a whole forward, so letting every single retirement trigger one costs more than the idle slots.
  // 0: max_batch / 8 (at least 1).
  std::int64_t min_join = 0;
};

class Engine {
 public:
  Engine(model::Transformer model, EngineOptions opt);

  // Generates for every request, max_batch at a time, calling on_done as each finishes (in finish order).
  // `stop(tokens)` may end a sequence early ("stop"); it sees the generated ids so far. `cancel()`, asked before
  // each prefill or decode step, ends the run early when true: the sequences in flight are dropped unreported
  // (each draws from its own seed, so a later run redraws them alike) and the unstarted requests are not begun.
  void run(std::deque<GenRequest> queue, const SamplingParams& p,
           const std::function<void(GenResult&&)>& on_done,
           const std::function<bool(const std::vector<int>&)>& stop = {},
           const std::function<bool()>& cancel = {});
  // The same loop over requests that arrive while it runs: returns once `source.wait()` says none will.
  void run(RequestSource& source, const SamplingParams& p, const std::function<void(GenResult&&)>& on_done,
           const std::function<bool(const std::vector<int>&)>& stop = {}, const std::function<bool()>& cancel = {});

  std::int64_t max_seq_len() const { return opt_.max_seq_len; }

  std::int64_t tokens_generated() const { return tokens_generated_; }

 private:
  struct Active {
    GenRequest req;
    const SamplingParams* params;  // the request's, or the run's
    std::int64_t slot;
    std::int64_t len;             // tokens in the cache (prompt + generated so far, minus the pending one)
    int pending;                  // last sampled token, not yet fed to the model
    at::Generator gen;
    GenResult res;
    std::chrono::steady_clock::time_point start;
  };
  void prefill(std::vector<GenRequest>& joiners, const SamplingParams& p);
  void decode_step();
  // Samples one token per row of `next` [B, V] with `gens` and records it (and its logprobs) into rows[b]; rows
  // with different sampling parameters are drawn group by group.
  void sample_and_record(const torch::Tensor& next, std::vector<at::Generator>& gens, const std::vector<Active*>& rows);
  void sample_group(const torch::Tensor& next, std::vector<at::Generator>& gens, const std::vector<Active*>& rows,
                    const SamplingParams& p);
  // ids/vals on the host: [0] the chosen token and its logprob, [1..k] the top-k ids and logprobs.
  void record(Active& a, const std::int64_t* ids, const float* vals, const SamplingParams& p);
  bool finished(Active& a, const std::function<bool(const std::vector<int>&)>& stop);

  model::Transformer model_;
  EngineOptions opt_;
  torch::Device device_;
  model::KVCache cache_;
  std::vector<std::int64_t> free_slots_;
  std::vector<Active> active_;
  std::int64_t tokens_generated_ = 0;
};

}  // namespace distill::teacher
