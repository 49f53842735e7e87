// tests/test_generation.cpp: sampling against the Python reference (distributions and seeded draws), and the
// engine: greedy == a plain full-forward loop, batched/continuous == one at a time, stop rules, logprobs. The
// engine cases are tagged [device]: they run on test::device() (CUDA in scripts/device-check).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/fs.h"
#include "model/hf_checkpoint.h"
#include "common/errors.h"
#include "teacher/engine.h"
#include "teacher/sampling.h"
#include "test_paths.h"
#include "tests/model_fixtures.h"
#include "tests/tolerances.h"

using namespace distill;
using namespace distill::teacher;

namespace {
std::deque<GenRequest> requests(int n, std::int64_t vocab, std::uint64_t seed) {
  std::deque<GenRequest> q;
  torch::manual_seed(int64_t(seed));
  for (int i = 0; i < n; ++i) {
    auto len = torch::randint(2, 9, {1}).item<std::int64_t>();
    auto ids = torch::randint(4, vocab, {len}, torch::kInt64);
    GenRequest r;
    r.id = i;
    for (std::int64_t t = 0; t < len; ++t) r.prompt.push_back(int(ids[t].item<std::int64_t>()));
    r.seed = 1000 + std::uint64_t(i);
    q.push_back(r);
  }
  return q;
}

std::map<std::int64_t, GenResult> run_engine(model::Transformer m, std::deque<GenRequest> q, const SamplingParams& p,
                                             std::int64_t max_batch, std::int64_t eos = -1) {
  EngineOptions o;
  o.max_batch = max_batch;
  o.max_seq_len = 64;
  o.eos_id = eos;
  Engine e(m, o);
  std::map<std::int64_t, GenResult> out;
  e.run(std::move(q), p, [&](GenResult&& r) { out[r.id] = std::move(r); });
  return out;
}
}  // namespace

TEST_CASE("sampling: distributions and seeded draws equal the Python reference") {
  auto f = model::SafetensorsFile::open(test::reference_fixture("sampling.safetensors"));
  auto params = nlohmann::json::parse(f->header().metadata.at("params"));
  const int draws = std::stoi(f->header().metadata.at("draws"));
  auto logits = f->get("logits");
  for (std::size_t i = 0; i < params.size(); ++i) {
    INFO("params " << params[i].dump());
    SamplingParams p;
    p.temperature = params[i]["temperature"];
    p.top_p = params[i]["top_p"];
    p.top_k = params[i]["top_k"];
    p.min_p = params[i]["min_p"];
    auto probs = sampling_probs(logits, p);
    const std::string prefix = std::string("p").append(std::to_string(i));
    auto want = f->get(prefix + ".probs");
    CHECK((probs - want).abs().max().item<double>() < 1e-6);
    CHECK((sampling_probs_ops(logits, p) - want).abs().max().item<double>() < 1e-6);  // the non-CPU path
    std::vector<at::Generator> gens;
    for (std::int64_t r = 0; r < logits.size(0); ++r) gens.push_back(make_generator(100 + std::uint64_t(r), torch::kCPU));
    auto want_tok = f->get(prefix + ".tokens");
    for (int d = 0; d < draws; ++d) {
      auto tok = sample_tokens(logits, p, gens);
      CHECK(torch::equal(tok, want_tok.select(1, d)));
    }
  }
}

TEST_CASE("sampling: temperature 0 is argmax, and filters never leave an empty distribution") {
  auto logits = torch::randn({3, 20});
  SamplingParams p;
  p.temperature = 0;
  std::vector<at::Generator> gens(3, make_generator(1, torch::kCPU));
  CHECK(torch::equal(sample_tokens(logits, p, gens), logits.argmax(-1)));
  // a temperature so small that logits / T overflows (inf - inf = NaN, drawn as token 0) decodes greedily too
  auto far = (logits + 5).abs();  // argmax never at token 0 in row 0 after the swap below
  far[0][0] = 0;
  for (double t : {1e-40, 1e-30, 1e-6}) {
    INFO("temperature " << t);
    p.temperature = t;
    CHECK(torch::equal(sample_tokens(far, p, gens), far.argmax(-1)));
    for (const auto& probs : {sampling_probs(far, p), sampling_probs_ops(far, p)})
      CHECK(torch::equal(probs.argmax(-1), far.argmax(-1)));
  }
  p.temperature = 0.1;
  p.top_p = 1e-9;
  p.top_k = 1;
  p.min_p = 0.99;
  for (const auto& probs : {sampling_probs(logits, p), sampling_probs_ops(logits, p)}) {
    CHECK(torch::allclose(probs.sum(-1), torch::ones(3)));
    CHECK(torch::equal(probs.argmax(-1), logits.argmax(-1)));
  }
}

TEST_CASE("sampling: the top-64 fast path of top-p equals the full-sort definition on a large vocabulary") {
  torch::manual_seed(11);
  for (double scale : {1.0, 4.0, 0.05}) {  // peaked, very peaked, and flat (flat forces the full-sort fallback)
    auto logits = scale * torch::randn({6, 700});
    SamplingParams p;
    p.temperature = 0.8;
    p.top_p = 0.9;
    auto got = sampling_probs(logits, p);
    auto got_ops = sampling_probs_ops(logits, p);
    // the definition: drop a token when the mass of all more likely tokens already reaches top_p
    auto x = logits / 0.8;
    auto [sorted, order] = x.sort(-1, true);
    auto pr = sorted.softmax(-1);
    auto drop = torch::zeros_like(x, torch::kBool).scatter(-1, order, (pr.cumsum(-1) - pr) >= 0.9);
    auto want = x.masked_fill(drop, -std::numeric_limits<float>::infinity()).softmax(-1);
    INFO("scale " << scale);
    CHECK((got - want).abs().max().item<double>() < 1e-6);
    CHECK((got_ops - want).abs().max().item<double>() < 1e-6);
  }
}

TEST_CASE("sampling: top-p picks its path per row, so a row's distribution is the same alone or batched with flat rows") {
  // The GPU (and any non-fp32) path runs these LibTorch ops: a flat row in the batch must not send the peaked rows
  // down the full sort, whose probabilities round differently.
  torch::manual_seed(12);
  auto peaked = 4.0 * torch::randn({5, 700}), flat = 0.05 * torch::randn({3, 700});
  auto batch = torch::cat({peaked.narrow(0, 0, 2), flat, peaked.narrow(0, 2, 3)});
  SamplingParams p;
  p.temperature = 0.8;
  p.top_p = 0.9;
  auto together = sampling_probs_ops(batch, p);
  for (std::int64_t r = 0; r < batch.size(0); ++r) {
    INFO("row " << r);
    CHECK(torch::equal(together[r], sampling_probs_ops(batch.narrow(0, r, 1), p)[0]));
  }
}

TEST_CASE("engine: greedy decoding with the KV cache equals a plain full-forward loop", "[device]") {
  torch::NoGradGuard g;
  auto m = test::reference_model("deepseek_v3");
  auto q = requests(3, m->config().vocab_size, 1);
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = 10;
  auto got = run_engine(m, q, p, 2);
  for (auto& r : q) {
    std::vector<std::int64_t> seq(r.prompt.begin(), r.prompt.end());
    std::vector<int> gen;
    for (int s = 0; s < 10; ++s) {
      model::ForwardInput in;
      in.input_ids = test::dev(torch::tensor(seq).unsqueeze(0));
      auto next = m->forward(in).logits[0][-1].argmax().item<std::int64_t>();
      gen.push_back(int(next));
      seq.push_back(next);
    }
    INFO("request " << r.id);
    CHECK(got[r.id].tokens == gen);
    CHECK(got[r.id].finish_reason == "length");
  }
}

TEST_CASE("engine: continuous batching gives the same samples as one-at-a-time, for any batch size", "[device]") {
  auto m = test::reference_model("qwen2_moe");
  SamplingParams p;
  p.temperature = 0.9;
  p.top_p = 0.95;
  p.max_tokens = 12;
  p.topk_logprobs = 3;
  auto q = requests(7, m->config().vocab_size, 2);
  auto one = run_engine(m, q, p, 1);
  for (std::int64_t b : {3, 7}) {
    auto many = run_engine(m, q, p, b);
    for (auto& [id, r] : one) {
      INFO("batch " << b << " request " << id);
      CHECK(many[id].tokens == r.tokens);
      for (std::size_t t = 0; t < r.token_logprobs.size(); ++t)
        CHECK(std::abs(many[id].token_logprobs[t] - r.token_logprobs[t]) < 1e-4);
    }
  }
  // different seeds give different samples
  auto q2 = q;
  for (auto& r : q2) r.seed += 77;
  auto other = run_engine(m, q2, p, 7);
  int same = 0;
  for (auto& [id, r] : one) same += other[id].tokens == r.tokens;
  CHECK(same < 7);
}

TEST_CASE("engine: requests with their own sampling parameters, arriving while it runs, draw what each draws alone",
          "[device]") {
  // serve's case: every request brings its parameters and stop rule, and joins a running batch.
  auto m = test::reference_model("qwen2_moe");
  const std::int64_t V = m->config().vocab_size;
  std::vector<SamplingParams> kinds(3);
  kinds[0].temperature = 0.9, kinds[0].top_p = 0.95, kinds[0].max_tokens = 12, kinds[0].topk_logprobs = 3;
  kinds[1].temperature = 0, kinds[1].max_tokens = 7;
  kinds[2].temperature = 1.2, kinds[2].top_k = 5, kinds[2].min_p = 0.05, kinds[2].max_tokens = 10;
  auto q = requests(9, V, 4);
  std::map<std::int64_t, GenResult> alone;
  for (auto& r : q) {
    const auto& p = kinds[std::size_t(r.id) % 3];
    alone[r.id] = run_engine(m, {r}, p, 1).at(r.id);
  }
  // One engine, 4 slots; the requests come in three waves, each only once the engine asks for more.
  struct Waves : RequestSource {
    std::deque<GenRequest> all;
    std::deque<GenRequest> ready;
    int waits = 0;
    std::int64_t waiting() override {
      if (ready.empty() && !all.empty()) ready.push_back(std::move(all.front())), all.pop_front();  // one per poll
      return std::int64_t(ready.size());
    }
    std::vector<GenRequest> take(std::int64_t n) override {
      std::vector<GenRequest> out;
      while (!ready.empty() && std::int64_t(out.size()) < n) out.push_back(std::move(ready.front())), ready.pop_front();
      return out;
    }
    bool wait() override { return ++waits, !all.empty(); }
  } src;
  for (auto r : q) {
    r.params = std::make_shared<SamplingParams>(kinds[std::size_t(r.id) % 3]);
    if (r.id == 4) r.stop = [](const std::vector<int>& t) { return t.size() >= 3; };  // its own stop rule
    src.all.push_back(std::move(r));
  }
  EngineOptions o;
  o.max_batch = 4;
  o.max_seq_len = 64;
  o.eos_id = -1;
  Engine e(m, o);
  std::map<std::int64_t, GenResult> got;
  std::int64_t tokens_seen = 0;
  src.all[0].on_token = [&](const GenResult& r) { tokens_seen = std::int64_t(r.tokens.size()); };
  SamplingParams unused;
  unused.max_tokens = 1;  // the run's parameters, which every request here overrides
  e.run(src, unused, [&](GenResult&& r) { got[r.id] = std::move(r); });
  REQUIRE(got.size() == 9);
  for (auto& [id, r] : alone) {
    INFO("request " << id);
    if (id == 4) {
      CHECK(got[id].finish_reason == "stop");
      CHECK(got[id].tokens == std::vector<int>(r.tokens.begin(), r.tokens.begin() + 3));
      continue;
    }
    CHECK(got[id].tokens == r.tokens);
    CHECK(got[id].topk.size() == r.topk.size());
    for (std::size_t t = 0; t < r.token_logprobs.size(); ++t)
      CHECK(std::abs(got[id].token_logprobs[t] - r.token_logprobs[t]) < 1e-4);
  }
  CHECK(tokens_seen == std::int64_t(got[0].tokens.size()));  // the hook saw every token
  // An abandoned request ends at once with "abort".
  auto flag = std::make_shared<std::atomic<bool>>(true);
  auto qa = requests(1, V, 5);
  qa[0].abandoned = flag;
  auto ab = run_engine(m, qa, kinds[0], 1);
  CHECK(ab[0].finish_reason == "abort");
  CHECK(ab[0].tokens.size() == 1);
}

TEST_CASE("engine: EOS and stop callbacks end sequences, logprobs are consistent", "[device]") {
  auto m = test::reference_model("llama");
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = 20;
  p.topk_logprobs = 4;
  auto q = requests(2, m->config().vocab_size, 3);
  auto base = run_engine(m, q, p, 2);
  // make the third greedy token the EOS id: generation stops right there with reason "eos"
  const int eos = base[0].tokens[2];
  auto stopped = run_engine(m, q, p, 2, eos);
  CHECK(stopped[0].finish_reason == "eos");
  CHECK(stopped[0].tokens.size() <= 3);
  CHECK(stopped[0].tokens.back() == eos);
  // a stop callback that fires after 5 tokens
  EngineOptions o;
  o.max_seq_len = 64;
  o.eos_id = -1;
  Engine e(m, o);
  std::map<std::int64_t, GenResult> got;
  e.run(q, p, [&](GenResult&& r) { got[r.id] = std::move(r); }, [](const std::vector<int>& t) { return t.size() >= 5; });
  for (auto& [id, r] : got) {
    CHECK(r.finish_reason == "stop");
    CHECK(r.tokens.size() == 5);
    REQUIRE(r.topk.size() == 5);
    for (std::size_t t = 0; t < 5; ++t) {
      CHECK(r.topk[t][0].first == r.tokens[t]);  // greedy: the top token is the chosen one
      CHECK(r.topk[t][0].second == Approx(r.token_logprobs[t]));
      for (std::size_t k = 1; k < r.topk[t].size(); ++k) CHECK(r.topk[t][k].second <= r.topk[t][k - 1].second);
    }
  }
}

TEST_CASE("engine: a prompt one token shorter than a slot still gets its one token, a full-slot prompt is refused") {
  auto m = test::reference_model("llama");
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = 20;
  GenRequest r;
  r.id = 0;
  r.prompt = {5, 6, 7, 8, 9, 10, 11};
  r.seed = 1;
  EngineOptions o;
  o.max_seq_len = std::int64_t(r.prompt.size()) + 1;
  o.eos_id = -1;
  std::vector<GenResult> got;
  Engine(m, o).run({r}, p, [&](GenResult&& g) { got.push_back(std::move(g)); });
  REQUIRE(got.size() == 1);
  CHECK(got[0].tokens.size() == 1);
  CHECK(got[0].finish_reason == "length");
  o.max_seq_len = std::int64_t(r.prompt.size());
  CHECK_THROWS_AS(Engine(m, o).run({r}, p, [&](GenResult&&) {}), distill::InputError);
}

TEST_CASE("sampling: the CPU draw equals exponential_ noise and argmax of p / q, the LibTorch path") {
  torch::manual_seed(12);
  auto logits = 3.0 * torch::randn({8, 700});
  SamplingParams p;
  p.temperature = 0.7;
  p.top_p = 0.9;
  p.top_k = 50;
  std::vector<at::Generator> a, b;
  for (std::uint64_t r = 0; r < 8; ++r) a.push_back(make_generator(40 + r, torch::kCPU)), b.push_back(make_generator(40 + r, torch::kCPU));
  auto probs = sampling_probs(logits, p);
  for (int d = 0; d < 30; ++d) {
    auto got = sample_tokens(logits, p, a);
    auto q = torch::empty_like(probs);
    for (std::int64_t r = 0; r < 8; ++r) q[r].exponential_(1.0, b[std::size_t(r)]);
    INFO("draw " << d);
    CHECK(torch::equal(got, (probs / q).argmax(-1)));
  }
}
