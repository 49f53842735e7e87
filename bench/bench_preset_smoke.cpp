// bench/bench_preset_smoke.cpp: builds a student preset at full size with random weights (default
// qwen2.5-1.5b) and runs one forward + backward at a short sequence on the CPU: the smoke test that the real
// architectures construct, run and differentiate. Prints parameter count, build, forward and backward times.
// Usage: bench_preset_smoke [PRESET] [--seq N]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>

#include "distill/chunked_ce.h"
#include "model/transformer.h"
#include "student/presets.h"

int main(int argc, char** argv) {
  using namespace distill;
  std::string name = "qwen2.5-1.5b";
  std::int64_t seq = 32;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seq" && i + 1 < argc) seq = std::stoll(argv[++i]);
    else name = a;
  }
  const auto* p = student::find_preset(name);
  if (!p) {
    std::fprintf(stderr, "unknown preset %s (presets: %s)\n", name.c_str(), student::preset_names().c_str());
    return 2;
  }
  auto now = [] { return std::chrono::steady_clock::now(); };
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  std::printf("preset %s (%s)\n  analytic parameters %lld\n", name.c_str(), p->source.c_str(),
              (long long)student::analytic_param_count(p->config));
  auto t0 = now();
  torch::manual_seed(0);
  model::Transformer m(p->config);
  auto t1 = now();
  std::printf("  built with random weights: %lld parameters in %.1f s\n", (long long)m->n_params(), secs(t0, t1));
  auto ids = torch::randint(p->config.vocab_size, {1, seq}, torch::kInt64);
  model::ForwardInput in;
  in.input_ids = ids;
  in.hidden_only = true;
  auto h = m->forward(in).hidden;
  auto loss = train::chunked_cross_entropy_sum(h.view({seq, -1}).narrow(0, 0, seq - 1), m->output_weight(),
                                               ids.view({seq}).narrow(0, 1, seq - 1), 16384) / double(seq - 1);
  auto t2 = now();
  loss.backward();
  auto t3 = now();
  double gnorm = 0;
  for (auto& q : m->parameters())
    if (q.grad().defined()) gnorm += q.grad().pow(2).sum().item<double>();
  std::printf("  seq %lld: loss %.4f (ln V = %.4f), forward %.2f s, backward %.2f s, grad norm %.4f\n", (long long)seq,
              loss.item<double>(), std::log(double(p->config.vocab_size)), secs(t1, t2), secs(t2, t3), std::sqrt(gnorm));
}
