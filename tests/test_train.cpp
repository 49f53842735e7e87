// tests/test_train.cpp: the student trainer's numeric parts: chunked cross-entropy == the plain one (values and
// gradients, kept logits too); packed rows == the documents alone (stretched positions too); the AdamW step against
// torch.optim.AdamW; activation checkpointing; KD losses against the PyTorch reference, sliced == plain; the
// presets' parameter counts against their published figures, exactly; the memory plan's 16 bytes a parameter and
// LoRA count. `distill train` end to end: test_train_cli.cpp.
// Cases tagged [device] run on test::device() (CUDA, with bf16 autocast in the trainer, in scripts/device-check).
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <ATen/autocast_mode.h>

#include <array>

#include "common/fs.h"
#include "common/rng.h"
#include "dataset/curation.h"
#include "dataset/samples.h"
#include "common/errors.h"
#include "distill/batch.h"
#include "distill/chunked_ce.h"
#include "distill/kd.h"
#include "distill/memory_plan.h"
#include "distill/optimizer.h"
#include "distill/schedule.h"
#include "distill/packing.h"
#include "model/cpu_gemm.h"
#include "model/hf_checkpoint.h"
#include "student/lora.h"
#include "student/presets.h"
#include "test_paths.h"
#include "tests/helpers.h"
#include "tests/model_fixtures.h"
#include "tests/tolerances.h"

using namespace distill;
using test::run_distill;

namespace {
double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }
}  // namespace

TEST_CASE("train: cross-entropy over vocabulary slices equals the plain loss, values and gradients") {
  // float32 on the CPU takes the fused slice passes (model/train_kernels.cpp), float64 LibTorch's ops. The
  // reference is float64, and the measure is LibTorch's own float32 cross-entropy's distance from it: ours may
  // be at most twice as far, plus 1e-6 (float64 input has its logits formed in float32 too). Weight scale 12 spreads the logits over ~±100, past the clamp of the
  // fused exp, where float32 itself errs by 3e-4; 300 rows are split over 4 threads.
  const int before = at::get_num_threads();
  at::set_num_threads(4);
  torch::manual_seed(21);
  namespace F = torch::nn::functional;
  const auto opts = F::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum);
  for (auto [N, w_scale, dtype] : {std::tuple{37LL, 0.5, torch::kFloat}, std::tuple{300LL, 12.0, torch::kFloat},
                                   std::tuple{37LL, 0.5, torch::kDouble}}) {
    const std::int64_t D = 16, V = 50;
    auto h0 = torch::randn({N, D}, dtype), w0 = w_scale * torch::randn({V, D}, dtype);
    auto labels = torch::randint(V, {N}, torch::kInt64);
    labels.index_put_({torch::tensor({0, 5, 36})}, -100);
    auto h = h0.to(torch::kDouble).clone().requires_grad_(true), w = w0.to(torch::kDouble).clone().requires_grad_(true);
    auto want = F::cross_entropy(torch::matmul(h, w.t()), labels, opts);
    want.backward();
    // Distances from the reference: the loss's (relative: a sum over up to 297 rows), dh's, dw's.
    auto dist = [&](const torch::Tensor& loss, const torch::Tensor& hl, const torch::Tensor& wl) {
      return std::array<double, 3>{std::abs(loss.item<double>() / want.item<double>() - 1),
                                   max_diff(hl.grad().to(torch::kDouble), h.grad()),
                                   max_diff(wl.grad().to(torch::kDouble), w.grad())};
    };
    auto hf = h0.to(torch::kFloat).clone().requires_grad_(true), wf = w0.to(torch::kFloat).clone().requires_grad_(true);
    auto plain = F::cross_entropy(torch::matmul(hf, wf.t()), labels, opts);
    plain.backward();
    const auto fp32 = dist(plain, hf, wf);
    for (std::int64_t chunk : {0LL, 7LL, 16LL, 50LL}) {
      INFO("rows " << N << ", weight scale " << w_scale << ", " << dtype << ", chunk " << chunk);
      auto hc = h0.clone().requires_grad_(true), wc = w0.clone().requires_grad_(true);
      auto got = train::chunked_cross_entropy_sum(hc, wc, labels, chunk);
      got.backward();
      const auto ours = dist(got, hc, wc);
      for (int i = 0; i < 3; ++i) {
        INFO("measure " << i << ": ours " << ours[i] << ", LibTorch float32 " << fp32[i]);
        CHECK(ours[i] <= 2 * fp32[i] + 1e-6);
      }
    }
  }
  at::set_num_threads(before);
  // A label that is neither a vocabulary id nor -100 is refused, not silently skipped or clamped.
  auto h = torch::randn({3, 16}), w = torch::randn({50, 16});
  for (std::int64_t bad : {-1, 50})
    CHECK_THROWS_WITH(train::chunked_cross_entropy_sum(h, w, torch::tensor(std::vector<std::int64_t>{1, bad, -100}), 7),
                      Catch::Contains("labels must be -100 or in [0, 50)"));
}

namespace {
// Examples of the given lengths with random token ids (from torch's global generator), targets from `loss_from`.
std::vector<train::Example> random_examples(std::int64_t V, const std::vector<int>& lengths, std::int64_t loss_from) {
  std::vector<train::Example> ex;
  for (int n : lengths) {
    train::Example e;
    for (int t = 0; t < n; ++t) e.ids.push_back(int(torch::randint(4, V, {1}).item<std::int64_t>()));
    e.loss_from = loss_from;
    ex.push_back(e);
  }
  return ex;
}
}  // namespace

TEST_CASE("train: cross-entropy keeps small logits for its backward, and a second backward (retain_graph) forms them again") {
  torch::manual_seed(3);
  auto h = torch::randn({64, 16}).requires_grad_(true), w = torch::randn({40, 16}).requires_grad_(true);
  auto labels = torch::randint(40, {64}, torch::kInt64);
  auto want_loss = torch::nn::functional::cross_entropy(torch::matmul(h, w.t()), labels,
                                                        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  auto gh = torch::autograd::grad({want_loss}, {h, w});
  auto loss = train::chunked_cross_entropy_sum(h, w, labels, 0);  // one slice of 64 x 40: kept
  CHECK(std::abs(loss.item<double>() - want_loss.item<double>()) < 1e-4);
  for (int pass = 0; pass < 2; ++pass) {
    INFO("backward " << pass + 1);
    auto g = torch::autograd::grad({loss}, {h, w}, {}, /*retain_graph=*/true);
    CHECK(max_diff(g[0], gh[0]) < 1e-5);
    CHECK(max_diff(g[1], gh[1]) < 1e-5);
  }
}

TEST_CASE("train: sliced cross-entropy equals the plain loss on the test device, in fp32 and under bf16 autocast", "[device]") {
  // fp32: the slices against one plain cross-entropy on the same device. bf16 autocast (the trainer's setting on
  // CUDA): the slices' matmuls run in bf16; on the CPU the fused pass takes float32 slices only, so it must step
  // aside (bench_mfu's CPU smoke run aborted on it). Same bf16 matmul on both sides: equal to fp32 rounding.
  torch::manual_seed(5);
  const std::int64_t N = 40, D = 16, V = 50;
  const auto type = test::device().type();
  auto h0 = test::dev(torch::randn({N, D})), w0 = test::dev(torch::randn({V, D}));
  auto labels = torch::randint(V, {N}, torch::kInt64);
  labels[3] = -100;
  labels = test::dev(labels);
  namespace F = torch::nn::functional;
  const auto opts = F::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum);
  for (bool autocast : {false, true}) {
    INFO((autocast ? "bf16 autocast" : "fp32") << " on " << test::device());
    auto h = h0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
    auto hr = h0.clone().requires_grad_(true), wr = w0.clone().requires_grad_(true);
    at::autocast::set_autocast_dtype(type, at::kBFloat16);
    at::autocast::set_autocast_enabled(type, autocast);
    auto loss = train::chunked_cross_entropy_sum(h, w, labels, 16);
    auto want = F::cross_entropy(torch::matmul(hr, wr.t()).to(torch::kFloat32), labels, opts);
    loss.backward();
    want.backward();
    at::autocast::set_autocast_enabled(type, false);
    at::autocast::clear_cache();
    const double rel = autocast ? 1e-3 : 1e-5, grad = autocast ? 2e-2 : 1e-5;
    CHECK(loss.scalar_type() == torch::kFloat32);
    CHECK(std::abs(loss.item<double>() - want.item<double>()) < rel * std::abs(want.item<double>()));
    CHECK(max_diff(h.grad(), hr.grad()) < grad);
    CHECK(max_diff(w.grad(), wr.grad()) < grad);
    // backward after the scope: the slices are recomputed at the forward's precision, so the gradients are the same
    auto ho = h0.clone().requires_grad_(true), wo = w0.clone().requires_grad_(true);
    at::autocast::set_autocast_enabled(type, autocast);
    auto later = train::chunked_cross_entropy_sum(ho, wo, labels, 16);
    at::autocast::set_autocast_enabled(type, false);
    at::autocast::clear_cache();
    later.backward();
    CHECK(max_diff(ho.grad(), h.grad()) == 0);
    CHECK(max_diff(wo.grad(), w.grad()) == 0);
  }
}

TEST_CASE("train: packed rows give the loss and gradients of the documents run one by one") {
  auto m = test::reference_model("llama");
  torch::manual_seed(22);
  const auto V = m->config().vocab_size;
  auto ex = random_examples(V, {9, 5, 12, 7}, 3);
  std::vector<const train::Example*> ptrs;
  for (const auto& e : ex) ptrs.push_back(&e);
  auto rows = train::pack_rows(ptrs, 16, 3);
  REQUIRE(rows.size() == 3);  // 9+5 | 12 | 7
  std::int64_t targets = 0;
  for (const auto& r : rows) targets += r.targets;
  CHECK(targets == (9 - 3) + (5 - 3) + (12 - 3) + (7 - 3));

  auto loss_of = [&](const std::vector<train::Row>& rs) {
    auto i64 = torch::TensorOptions().dtype(torch::kInt64);
    torch::Tensor total = torch::zeros({});
    for (const auto& r : rs) {
      const auto L = std::int64_t(r.ids.size());
      model::ForwardInput in;
      in.input_ids = torch::tensor(r.ids, i64).view({1, L});
      in.positions = torch::tensor(r.positions, i64).view({1, L});
      in.segment_ids = torch::tensor(r.segments, i64).view({1, L});
      in.hidden_only = true;
      auto hid = m->forward(in).hidden.view({L, -1});
      auto lab = torch::tensor(r.labels, i64);
      total = total + train::chunked_cross_entropy_sum(hid.narrow(0, 0, L - 1), m->output_weight(), lab.narrow(0, 1, L - 1), 0);
    }
    return total;
  };
  m->zero_grad();
  auto packed = loss_of(rows);
  packed.backward();
  std::vector<torch::Tensor> g_packed;
  for (auto& p : m->parameters()) g_packed.push_back(p.grad().clone());
  std::vector<train::Row> alone;
  for (const auto* e : ptrs) {
    auto r = train::pack_rows({e}, std::int64_t(e->ids.size()), 3);
    alone.push_back(r[0]);
  }
  m->zero_grad();
  auto separate = loss_of(alone);
  separate.backward();
  CHECK(std::abs(packed.item<double>() - separate.item<double>()) < 1e-4);
  std::size_t i = 0;
  for (auto& p : m->parameters()) {  // gradients of a summed loss: the gradient table's tolerance, not kEquivAtol
    auto& g = g_packed[i++];
    CHECK(max_diff(p.grad(), g) <= test::tol::kGradAtol + test::tol::kGradRtol * g.abs().max().item<double>());
  }
}

TEST_CASE("train: the trainer's batches give one loss whether documents share rows or each has its own", "[device]") {
  // Rows of 16 hold 9+5 | 12 | 7 (segment masks); rows of 12 hold one document each, which the trainer runs
  // with the plain causal mask. Both sum the cross-entropy of the completion targets only.
  auto m = test::reference_model("llama");
  torch::manual_seed(23);
  const auto V = m->config().vocab_size;
  auto ex = random_examples(V, {9, 5, 12, 7}, 4);
  std::vector<const train::Example*> ptrs;
  for (const auto& e : ex) ptrs.push_back(&e);
  auto run = [&](std::int64_t len) {
    auto b = train::to_batch(train::pack_rows(ptrs, len, 3), test::device());
    m->zero_grad();
    auto loss = train::batch_loss_sum(m, b, 0);
    loss.backward();
    std::vector<torch::Tensor> g;
    for (auto& p : m->parameters()) g.push_back(p.grad().clone());
    return std::make_tuple(b.one_document_per_row, b.targets, loss.item<double>(), g);
  };
  auto [shared_rows, t16, l16, g16] = run(16);
  auto [own_rows, t12, l12, g12] = run(12);
  CHECK_FALSE(shared_rows);
  CHECK(own_rows);
  CHECK(t16 == (9 - 4) + (5 - 4) + (12 - 4) + (7 - 4));
  CHECK(t12 == t16);
  const double k = test::tol_scale();
  CHECK(std::abs(l16 - l12) < 1e-4 * k);
  for (std::size_t i = 0; i < g16.size(); ++i)
    CHECK(max_diff(g16[i], g12[i]) <= k * (test::tol::kGradAtol + test::tol::kGradRtol * g16[i].abs().max().item<double>()));
}

TEST_CASE("train: stretched positions step by 1 or 2 in the prompt, by 1 after it, and stay under the limit") {
  train::Example e;
  e.ids.assign(40, 7);
  e.loss_from = 25;  // BOS + 24 prompt tokens, then 15 completion tokens
  Rng rng(3);
  auto draw = [&] { return rng.unit(); };
  auto plain = train::stretched_positions(e, 0.0, 512, draw);
  for (std::size_t t = 0; t < plain.size(); ++t) CHECK(plain[t] == std::int64_t(t));
  double extra = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    auto p = train::stretched_positions(e, 0.4, 512, draw);
    REQUIRE(p.size() == e.ids.size());
    CHECK(p[0] == 0);
    for (std::size_t t = 1; t < p.size(); ++t) {
      const auto step = p[t] - p[t - 1];
      if (std::int64_t(t) < e.loss_from) REQUIRE((step == 1 || step == 2));
      else REQUIRE(step == 1);
    }
    extra += double(p.back() - 39);
  }
  // q ~ U[0, 0.4] and 24 prompt tokens after BOS: 24 * 0.2 = 4.8 extra steps on average
  CHECK(extra / n == Approx(4.8).epsilon(0.05));
  // the limit: the last position stays at max_position - 1 at most, with every prompt token asking for a 2
  int calls = 0;
  auto all_two = [&] { return calls++ == 0 ? 0.999 : 0.0; };  // q = 0.999, then every token draws under it
  auto capped = train::stretched_positions(e, 1.0, 45, all_two);
  CHECK(capped.back() == 44);
  for (std::size_t t = 1; t < capped.size(); ++t) CHECK(capped[t] > capped[t - 1]);
  calls = 0;
  CHECK(train::stretched_positions(e, 1.0, 512, all_two).back() == 39 + 24);  // room: every prompt token steps 2
  calls = 0;
  CHECK(train::stretched_positions(e, 1.0, 40, all_two).back() == 39);  // no room: the plain positions
}

TEST_CASE("train: a batch of stretched documents gives the loss of each document run alone at its positions", "[device]") {
  // The one-document-per-row fast path assumes positions 0..n-1; stretched rows must take the positions path, in
  // packed rows (segments) and in rows of one document alike.
  auto m = test::reference_model("llama");
  torch::manual_seed(24);
  const auto V = m->config().vocab_size;
  auto ex = random_examples(V, {9, 5, 12, 7}, 4);
  std::vector<const train::Example*> ptrs;
  for (const auto& e : ex) ptrs.push_back(&e);
  Rng rng(9);
  auto draw = [&] { return rng.unit(); };
  std::vector<std::vector<std::int64_t>> pos;
  for (const auto* e : ptrs) pos.push_back(train::stretched_positions(*e, 1.0, 64, draw));
  bool stretched = false;
  for (const auto& p : pos) stretched |= p.back() > std::int64_t(p.size()) - 1;
  REQUIRE(stretched);
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  double alone = 0;
  for (std::size_t i = 0; i < ex.size(); ++i) {  // the reference: each document with its positions, no packing
    const auto L = std::int64_t(ex[i].ids.size());
    model::ForwardInput in;
    in.input_ids = torch::tensor(std::vector<std::int64_t>(ex[i].ids.begin(), ex[i].ids.end()), i64).view({1, L}).to(test::device());
    in.positions = torch::tensor(pos[i], i64).view({1, L}).to(test::device());
    in.hidden_only = true;
    auto hid = m->forward(in).hidden.view({L, -1});
    auto lab = torch::tensor(std::vector<std::int64_t>(ex[i].ids.begin() + 4, ex[i].ids.end()), i64).to(test::device());
    alone += train::chunked_cross_entropy_sum(hid.narrow(0, 3, L - 4), m->output_weight(), lab, 0).item<double>();
  }
  for (std::int64_t len : {16, 12}) {
    INFO("rows of " << len);
    auto b = train::to_batch(train::pack_rows(ptrs, len, 3, 0, pos), test::device());
    CHECK_FALSE(b.one_document_per_row);
    CHECK(std::abs(train::batch_loss_sum(m, b, 0).item<double>() - alone) < 1e-4 * test::tol_scale());
  }
  // and unstretched rows of one document each still take the fast path
  CHECK(train::to_batch(train::pack_rows(ptrs, 12, 3), test::device()).one_document_per_row);
}

TEST_CASE("train: a ragged batch (every row's documents back to back in one row) gives the padded batch's sums and gradients", "[device]") {
  // Rows of 16 hold 9+5 | 12 | 7, at stretched positions, with teacher top-k on the completion targets: the ragged
  // batch drops each row's padding, renumbers the segments along its one row, and moves the target rows with them.
  auto m = test::reference_model("llama");
  torch::manual_seed(25);
  const auto V = m->config().vocab_size;
  const std::int64_t k = 3;
  auto ex = random_examples(V, {9, 5, 12, 7}, 4);
  for (auto& e : ex)
    for (std::size_t t = 4; t < e.ids.size(); ++t)
      for (std::int64_t i = 0; i < k; ++i) {
        e.kd_ids.push_back(int((e.ids[t] + 7 * i) % V));
        e.kd_logp.push_back(-0.5f - float(i));
      }
  std::vector<const train::Example*> ptrs;
  for (const auto& e : ex) ptrs.push_back(&e);
  Rng rng(11);
  auto draw = [&] { return rng.unit(); };
  std::vector<std::vector<std::int64_t>> pos;
  for (const auto* e : ptrs) pos.push_back(train::stretched_positions(*e, 1.0, 64, draw));
  const auto rows = train::pack_rows(ptrs, 16, 3, k, pos);
  REQUIRE(rows.size() == 3);
  auto run = [&](std::int64_t ragged_rows) {
    auto b = train::to_batch(rows, test::device(), ragged_rows);
    m->zero_grad();
    auto [ce, kd] = train::batch_loss_sums(m, b, 0, train::KdKind::fkl);
    (ce + kd).backward();
    std::vector<torch::Tensor> g;
    for (auto& p : m->parameters()) g.push_back(p.grad().clone());
    return std::make_tuple(b, ce.item<double>(), kd.item<double>(), g);
  };
  auto [padded, ce_p, kd_p, g_p] = run(0);
  auto [ragged, ce_r, kd_r, g_r] = run(1);
  auto [two, ce_2, kd_2, g_2] = run(2);  // runs of packed rows: (9+5) | (12)(7), 14 and 19 tokens, each padded to 32
  CHECK(padded.ids.sizes() == torch::IntArrayRef({3, 16}));
  CHECK(ragged.ids.sizes() == torch::IntArrayRef({1, 64}));  // 9+5+12+7 = 33 real tokens, rounded up to 2 x 32
  CHECK(ragged.tokens == 9 + 5 + 12 + 7);
  CHECK(ragged.targets == padded.targets);
  CHECK(ragged.kd_targets == padded.kd_targets);
  CHECK(ragged.kd_targets == (9 - 4) + (5 - 4) + (12 - 4) + (7 - 4));
  CHECK_FALSE(ragged.one_document_per_row);
  CHECK(two.ids.sizes() == torch::IntArrayRef({2, 32}));
  CHECK(two.targets == padded.targets);
  CHECK(std::abs(ce_p - ce_2) < 1e-4 * test::tol_scale());
  CHECK(std::abs(kd_p - kd_2) < 1e-4 * test::tol_scale());
  for (std::size_t i = 0; i < g_p.size(); ++i)
    CHECK(max_diff(g_p[i], g_2[i]) <= test::tol_scale() * (test::tol::kGradAtol + test::tol::kGradRtol * g_p[i].abs().max().item<double>()));
  const double tol = test::tol_scale();
  CHECK(std::abs(ce_p - ce_r) < 1e-4 * tol);
  CHECK(std::abs(kd_p - kd_r) < 1e-4 * tol);
  for (std::size_t i = 0; i < g_p.size(); ++i)
    CHECK(max_diff(g_p[i], g_r[i]) <= tol * (test::tol::kGradAtol + test::tol::kGradRtol * g_p[i].abs().max().item<double>()));
  // Which models the trainer batches raggedly: those whose CPU attention reads only each document's keys, in
  // enough rows for a (row, kv head) task per thread.
  model::Transformer tiny(student::find_preset("tiny")->config);
  CHECK(tiny->packed_attention_is_per_document(torch::kCPU));
  CHECK(train::ragged_rows_for(tiny, torch::kCPU) == (at::get_num_threads() + 3) / 4);  // 4 kv heads
  auto mla = test::reference_model("deepseek_v3");
  CHECK_FALSE(mla->packed_attention_is_per_document(torch::kCPU));  // MLA: a dense mask
  CHECK(train::ragged_rows_for(mla, torch::kCPU) == 0);
}

TEST_CASE("train: the AdamW step (groups, clipping, warmup + cosine lr) equals torch.optim.AdamW", "[device]") {
  // tests/reference/gen_adamw.py: four steps on the llama reference weights, gradients from a formula both
  // sides compute exactly, the global norm clipped to 1 (steps 0 and 2 clip, 1 and 3 do not).
  auto m = test::reference_model("llama");
  auto f = model::SafetensorsFile::open(test::reference_fixture("adamw.safetensors"));
  auto want_lr = f->get("lr");
  auto opt = train::make_adamw(*m, 3e-3, 0.1);
  const double scales[] = {0.3, 0.02, 0.5, 0.01};
  for (std::int64_t step = 0; step < 4; ++step) {
    for (auto& p : m->named_parameters()) {
      auto i = torch::arange(p.value().numel(), torch::kFloat64);
      p.value().mutable_grad() = (scales[step] * (torch::remainder(37 * i + 11 * step, 101) - 50) / 50)
                                     .to(torch::kFloat32)
                                     .view(p.value().sizes())
                                     .to(p.value().device());
    }
    const double lr = train::lr_at(step, 6, 2, 3e-3, 0.1);
    CHECK(std::abs(lr - want_lr[step].item<double>()) < 1e-15);
    train::adamw_step(*opt, lr, 1.0);
  }
  std::size_t n = 0;
  for (auto& p : m->named_parameters()) {
    INFO(p.key());
    REQUIRE(f->contains(p.key() + ".final"));
    CHECK(max_diff(p.value().cpu(), f->get(p.key() + ".final")) < test::tol::kOptimAtol * test::tol_scale());
    ++n;
  }
  CHECK(n == 28);  // every parameter of the llama fixture (bias on q/k/v/o, untied lm_head)
  // the schedule's shape: warmup to the peak, cosine down to the floor, flat after the end
  CHECK(train::lr_at(0, 100, 10, 1.0, 0.1) == Approx(0.1));
  CHECK(train::lr_at(9, 100, 10, 1.0, 0.1) == Approx(1.0));
  CHECK(train::lr_at(55, 100, 10, 1.0, 0.1) == Approx(0.55));
  CHECK(train::lr_at(100, 100, 10, 1.0, 0.1) == Approx(0.1));
  CHECK(train::lr_at(500, 100, 10, 1.0, 0.1) == Approx(0.1));
}

TEST_CASE("train: activation checkpointing gives the loss and gradients of the plain backward", "[device]") {
  for (const char* name : {"llama", "deepseek_v3"}) {
    INFO(name);
    auto m = test::reference_model(name);
    torch::manual_seed(24);
    auto ids = test::dev(torch::randint(4, m->config().vocab_size, {2, 11}, torch::kInt64));
    auto run = [&](bool checkpoint) {
      m->zero_grad();
      model::ForwardInput in;
      in.input_ids = ids;
      in.checkpoint_layers = checkpoint;
      auto loss = model::causal_lm_loss(m->forward(in).logits, ids);
      loss.backward();
      std::vector<torch::Tensor> g;
      for (auto& p : m->parameters()) g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
      return std::make_pair(loss.item<double>(), g);
    };
    auto [l0, g0] = run(false);
    auto [l1, g1] = run(true);
    CHECK(std::abs(l0 - l1) < 1e-6 * test::tol_scale());
    REQUIRE(g0.size() == g1.size());
    for (std::size_t i = 0; i < g0.size(); ++i) CHECK(max_diff(g0[i], g1[i]) < test::tol::kEquivAtol * test::tol_scale());
  }
}

TEST_CASE("train: preset parameter counts match the published ones, and the analytic count matches the model") {
  for (const auto& p : student::presets()) {
    INFO(p.name << " (" << p.source << ")");
    auto again = model::ModelConfig::from_hf_json(p.config.to_hf_json(), p.name);
    CHECK(again.to_hf_json() == p.config.to_hf_json());
    const auto n = student::analytic_param_count(p.config);
    if (p.published_params > 0) CHECK(n == p.published_params);  // exact: a missing bias is a few thousand
  }
  for (const char* name : {"deepseek_v3", "deepseek_v3_plain_q", "qwen2_moe", "mixtral", "llama", "llama3_rope", "qwen2"}) {
    INFO(name);
    auto m = test::reference_model(name);
    CHECK(student::analytic_param_count(m->config()) == m->n_params());
  }
  const auto* tiny = student::find_preset("tiny");
  REQUIRE(tiny);
  model::Transformer t(tiny->config);
  CHECK(student::analytic_param_count(tiny->config) == t->n_params());
  auto teacher = model::load_hf_dir(std::string(DISTILL_SOURCE_DIR) + "/models/demo-teacher", torch::kCPU);
  CHECK(t->n_params() * 4 <= teacher->n_params());
  CHECK(student::find_preset("gpt-5") == nullptr);
  // the norm epsilon differs within a family: each config.json's own value (Qwen2.5 14B/32B 1e-05, smaller 1e-06)
  for (auto [name, eps] : {std::pair{"qwen2.5-1.5b", 1e-6}, std::pair{"qwen2.5-7b", 1e-6}, std::pair{"qwen2.5-14b", 1e-5},
                           std::pair{"qwen2.5-32b", 1e-5}, std::pair{"llama3.1-8b", 1e-5}, std::pair{"llama3.3-70b", 1e-5}}) {
    INFO(name);
    CHECK(student::find_preset(name)->config.rms_norm_eps == eps);
  }
}

TEST_CASE("train: KD losses (fkl, rkl, jsd) over the teacher's top-k and tail equal the PyTorch reference", "[device]") {
  auto f = model::SafetensorsFile::open(test::reference_fixture("kd.safetensors"));
  auto logits = test::dev(f->get("student_logits")), ids = test::dev(f->get("top_ids")), logp = test::dev(f->get("top_logp"));
  for (const char* kind : {"fkl", "rkl", "jsd"}) {
    INFO(kind);
    auto x = logits.clone().requires_grad_(true);
    auto loss = train::kd_loss_sum(x, ids, logp, train::parse_kd_kind(kind));
    loss.backward();
    const double want = f->get(std::string(kind) + ".loss").item<double>();
    CHECK(std::abs(loss.item<double>() - want) <= test::tol_scale() * (test::tol::kLossRtol * std::abs(want) + 1e-6));
    CHECK(max_diff(x.grad().cpu(), f->get(std::string(kind) + ".grad")) < test::tol::kGradAtol * test::tol_scale());
  }
  CHECK_THROWS_AS(train::parse_kd_kind("kl"), InputError);
}

// Past oneDNN's threshold (model/cpu_gemm.h) the slices' backward accumulates its products in place through
// oneDNN on a CPU; the float64 plain KD is the reference, as above.
TEST_CASE("train: KD over vocabulary slices with products past the oneDNN threshold equals the plain KD") {
  torch::manual_seed(37);
  const std::int64_t N = 256, D = 128, V = 512, K = 8;
  auto [tv, ti] = (2 * torch::randn({N, V})).log_softmax(-1).topk(K, -1);
  const auto w0 = torch::randn({V, D}) / 4, h0 = torch::randn({N, D});
  INFO("oneDNN used: " << model::gemm::uses_onednn(torch::zeros({N, 128}), w0.narrow(0, 0, 128)));
  for (const char* name : {"fkl", "jsd"}) {
    const auto kind = train::parse_kd_kind(name);
    auto h = h0.to(torch::kDouble).requires_grad_(true), w = w0.to(torch::kDouble).requires_grad_(true);
    auto want = train::kd_loss_sum(torch::matmul(h, w.t()), ti, tv.to(torch::kDouble), kind);
    want.backward();
    auto hc = h0.clone().requires_grad_(true), wc = w0.clone().requires_grad_(true);
    auto got = train::chunked_kd_loss_sum(hc, wc, ti, tv, kind, 128);
    got.backward();
    INFO(name << ": loss " << got.item<double>() << " against " << want.item<double>());
    CHECK(std::abs(got.item<double>() / want.item<double>() - 1) <= 1e-5);
    CHECK(max_diff(hc.grad().to(torch::kDouble), h.grad()) <= 1e-5 * h.grad().abs().max().item<double>());
    CHECK(max_diff(wc.grad().to(torch::kDouble), w.grad()) <= 1e-5 * w.grad().abs().max().item<double>());
  }
}

TEST_CASE("train: KD over vocabulary slices equals the KD of the full logits, values and gradients", "[device]") {
  // The reference is the plain loss in float64; the measure is the plain float32 loss's distance from it, and
  // the sliced one may be at most twice as far, plus 1e-6 (as the sliced cross-entropy's test). Slices of 1 put
  // single top-k tokens alone in a slice (its tail part is empty: every entry -inf); row 0's teacher is peaked
  // (its tail floored), row 1's student nearly certain (logits ~200, its tail floored: no gradient there).
  torch::manual_seed(31);
  const std::int64_t N = 23, D = 16, V = 50, K = 5;
  auto tl = 2 * torch::randn({N, V});
  tl[0].mul_(40);
  auto [tv, ti] = tl.log_softmax(-1).topk(K, -1);
  auto w0 = 2 * torch::randn({V, D}), h0 = torch::randn({N, D});
  h0[1] = 3 * w0[ti[1][0].item<std::int64_t>()];
  const auto ids = test::dev(ti), logp = test::dev(tv);
  h0 = test::dev(h0), w0 = test::dev(w0);
  for (const char* name : {"fkl", "rkl", "jsd"}) {
    const auto kind = train::parse_kd_kind(name);
    auto h = h0.to(torch::kDouble).requires_grad_(true), w = w0.to(torch::kDouble).requires_grad_(true);
    auto want = train::kd_loss_sum(torch::matmul(h, w.t()), ids, logp.to(torch::kDouble), kind);
    want.backward();
    auto dist = [&](const torch::Tensor& loss, const torch::Tensor& hl, const torch::Tensor& wl) {
      return std::array<double, 3>{std::abs(loss.item<double>() / want.item<double>() - 1),
                                   max_diff(hl.grad().to(torch::kDouble), h.grad()),
                                   max_diff(wl.grad().to(torch::kDouble), w.grad())};
    };
    auto hf = h0.clone().requires_grad_(true), wf = w0.clone().requires_grad_(true);
    auto plain = train::kd_loss_sum(torch::matmul(hf, wf.t()), ids, logp, kind);
    plain.backward();
    const auto fp32 = dist(plain, hf, wf);
    for (std::int64_t chunk : {0LL, 1LL, 3LL, 16LL, 50LL}) {
      auto hc = h0.clone().requires_grad_(true), wc = w0.clone().requires_grad_(true);
      auto got = train::chunked_kd_loss_sum(hc, wc, ids, logp, kind, chunk);
      got.backward();
      const auto ours = dist(got, hc, wc);
      for (int i = 0; i < 3; ++i) {
        INFO(name << ", slices of " << chunk << ", measure " << i << ": ours " << ours[i] << ", plain float32 " << fp32[i]);
        CHECK(ours[i] <= 2 * fp32[i] + 1e-6);
      }
    }
  }
  // Under bf16 autocast (the trainer's setting on CUDA): the plain loss under the same autocast, and one gradient
  // whether backward runs inside the autocast scope or after it: the slices are recomputed at the forward's
  // precision, or their logits would no longer match the logsumexps kept from the forward.
  const auto type = test::device().type();
  for (const char* name : {"fkl", "jsd"}) {
    const auto kind = train::parse_kd_kind(name);
    auto run = [&](bool sliced, bool backward_inside) {
      auto hc = h0.clone().requires_grad_(true), wc = w0.clone().requires_grad_(true);
      at::autocast::set_autocast_dtype(type, at::kBFloat16);
      at::autocast::set_autocast_enabled(type, true);
      auto loss = sliced ? train::chunked_kd_loss_sum(hc, wc, ids, logp, kind, 16)
                         : train::kd_loss_sum(torch::matmul(hc, wc.t()), ids, logp, kind);
      if (backward_inside) loss.backward();
      at::autocast::set_autocast_enabled(type, false);
      at::autocast::clear_cache();
      if (!backward_inside) loss.backward();
      return std::make_tuple(loss.item<double>(), hc.grad(), wc.grad());
    };
    auto [lp, hp, wp] = run(false, true);
    auto [li, hi, wi] = run(true, true);
    auto [lo, ho, wo] = run(true, false);
    INFO(name << " under bf16 autocast: plain " << lp << ", sliced " << li << "; |dh| diff " << max_diff(hi, hp)
              << ", |dw| diff " << max_diff(wi, wp) << ", backward after the scope: " << max_diff(ho, hi) << ", "
              << max_diff(wo, wi));
    CHECK(std::abs(li - lp) <= 1e-4 * std::abs(lp));
    CHECK(max_diff(hi, hp) <= 1e-2 * hp.abs().max().item<double>());
    CHECK(max_diff(wi, wp) <= 1e-2 * wp.abs().max().item<double>());
    CHECK(lo == li);
    CHECK(max_diff(ho, hi) == 0);
    CHECK(max_diff(wo, wi) == 0);
  }
}

TEST_CASE("plan: weights, gradients and AdamW take 16 bytes a parameter, LoRA counts its adapters exactly") {
  for (const auto& p : student::presets()) {
    if (p.published_params == 0) continue;
    INFO(p.name);
    train::PlanInput in;
    in.model = p.config;
    const auto m = train::plan_memory(in);
    CHECK(m.params == p.published_params);
    CHECK(m.weights + m.gradients + m.optimizer == 16 * p.published_params);  // fp32 weights and grads, two moments
    CHECK(m.activations_checkpointed < m.activations);
    in.vocab_chunk = 4096;
    CHECK(train::plan_memory(in).logits < m.logits);
  }
  // LoRA: the plan's trainable count is what add_lora attaches, on every architecture it covers
  for (const char* name : {"llama", "qwen2", "deepseek_v3", "mixtral"}) {
    INFO(name);
    auto model = test::reference_model(name);
    train::PlanInput in;
    in.model = model->config();
    in.lora_rank = 3;
    student::LoraConfig c;
    c.rank = 3;
    student::add_lora(*model, c);
    std::int64_t n = 0;
    for (const auto& [k, t] : student::lora_tensors(*model)) n += t.numel();
    const auto m = train::plan_memory(in);
    CHECK(m.trainable == n);
    CHECK(m.gradients == 4 * n);
    CHECK(m.optimizer == 8 * n);
  }
}
