// distill/memory_plan.cpp: see memory_plan.h. Counts are in elements until the end, then bytes.
#include "distill/memory_plan.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "student/presets.h"

namespace distill::train {

namespace {

constexpr std::int64_t kF32 = 4;

// What one layer's forward keeps for backward, per token, in elements: RoPE'd q, k, v, the attention output and
// its logsumexp (the fused kernel and SDPA's flash kernels keep no [T, T] weights); SwiGLU keeps gate, up and
// their product; each norm its input and output.
// The shared expert's intermediate width of an MoE layer (0: none).
std::int64_t shared_intermediate(const model::ModelConfig& c) {
  return c.model_type == "qwen2_moe" ? c.shared_expert_intermediate_size : c.n_shared_experts * c.moe_intermediate_size;
}

std::int64_t layer_activations(const model::ModelConfig& c, std::int64_t l) {
  const auto D = c.hidden_size, H = c.num_attention_heads;
  // The layer's input (a new tensor: the last layer's residual sum), its norm, the residual sum after attention
  // and its norm: each RMSNorm keeps its input and its output for backward.
  std::int64_t a = 4 * D;
  if (c.use_mla()) {
    const auto qk = c.qk_nope_head_dim + c.qk_rope_head_dim;
    a += (c.q_lora_rank > 0 ? 2 * c.q_lora_rank : 0) + H * qk;             // q path
    a += 2 * (c.kv_lora_rank + c.qk_rope_head_dim) + H * (c.qk_nope_head_dim + c.v_head_dim);  // latent, its norm, kv
    a += 2 * H * qk + 2 * H * c.v_head_dim + H;                           // q and k assembled, v, output, lse
  } else {
    const auto hd = c.attn_head_dim(), K = c.num_key_value_heads;
    a += (H + 2 * K) * hd + H * hd + H;  // rotated q, k, v; the output; its logsumexp
    if (c.qk_norm) a += (H + K) * hd;
  }
  if (c.is_moe_layer(l)) {
    const auto k = c.num_experts_per_tok, I = c.moe_intermediate_size;
    a += c.n_routed_experts + k * (D + 3 * I + D);  // router logits; per routed copy its input, SwiGLU, output
    a += 3 * shared_intermediate(c);
  } else {
    a += 3 * c.intermediate_size;
  }
  return a;
}

// Per token, the width of the two tensors a layer's backward holds at once at its widest: the gradients of the
// SwiGLU's gate and up (each routed copy of a token in an MoE layer), or of attention's q, k and v (half their sum).
std::int64_t layer_widest(const model::ModelConfig& c, std::int64_t l) {
  std::int64_t ffn = c.intermediate_size;
  if (c.is_moe_layer(l)) ffn = c.num_experts_per_tok * c.moe_intermediate_size + shared_intermediate(c);
  const auto qk = c.qk_nope_head_dim + c.qk_rope_head_dim;
  const auto attn = c.use_mla() ? c.num_attention_heads * (2 * qk + c.v_head_dim) / 2
                                : (c.num_attention_heads + 2 * c.num_key_value_heads) * c.attn_head_dim() / 2;
  return std::max(ffn, attn);
}

// LoRA's own saved tensors per token: A x per adapter (and the dropped-out input when dropout is on).
std::int64_t lora_activations(const PlanInput& in, std::int64_t l) {
  std::int64_t a = 0;
  const std::set<std::string> t(in.lora_targets.begin(), in.lora_targets.end());
  for (const auto& p : layer_projections(in.model, l))
    if (t.empty() || t.count(p.name)) a += p.per_token * (in.lora_rank + (in.lora_dropout ? p.in : 0));
  return a;
}

std::int64_t lora_params(const PlanInput& in) {
  std::int64_t n = 0;
  const std::set<std::string> t(in.lora_targets.begin(), in.lora_targets.end());
  for (std::int64_t l = 0; l < in.model.num_hidden_layers; ++l)
    for (const auto& p : layer_projections(in.model, l))
      if (t.empty() || t.count(p.name)) n += p.copies * in.lora_rank * (p.in + p.out);
  return n;
}

}  // namespace

std::vector<Projection> layer_projections(const model::ModelConfig& c, std::int64_t l) {
  const auto D = c.hidden_size, H = c.num_attention_heads;
  std::vector<Projection> p;
  if (c.use_mla()) {
    const auto qk = c.qk_nope_head_dim + c.qk_rope_head_dim;
    if (c.q_lora_rank > 0) p.insert(p.end(), {{"q_a_proj", D, c.q_lora_rank}, {"q_b_proj", c.q_lora_rank, H * qk}});
    else p.push_back({"q_proj", D, H * qk});
    p.push_back({"kv_a_proj_with_mqa", D, c.kv_lora_rank + c.qk_rope_head_dim});
    p.push_back({"kv_b_proj", c.kv_lora_rank, H * (c.qk_nope_head_dim + c.v_head_dim)});
    p.push_back({"o_proj", H * c.v_head_dim, D});
  } else {
    const auto hd = c.attn_head_dim(), K = c.num_key_value_heads;
    p.insert(p.end(), {{"q_proj", D, H * hd}, {"k_proj", D, K * hd}, {"v_proj", D, K * hd}, {"o_proj", H * hd, D}});
  }
  const bool mixtral = c.model_type == "mixtral";  // its experts' projections are w1 (gate), w3 (up), w2 (down)
  auto ffn = [&](std::int64_t I, std::int64_t copies, std::int64_t per_token) {
    p.push_back({mixtral ? "w1" : "gate_proj", D, I, copies, per_token});
    p.push_back({mixtral ? "w3" : "up_proj", D, I, copies, per_token});
    p.push_back({mixtral ? "w2" : "down_proj", I, D, copies, per_token});
  };
  if (!c.is_moe_layer(l)) {
    ffn(c.intermediate_size, 1, 1);
    return p;
  }
  ffn(c.moe_intermediate_size, c.n_routed_experts, c.num_experts_per_tok);
  if (shared_intermediate(c) > 0) ffn(shared_intermediate(c), 1, 1);
  return p;
}

MemoryPlan plan_memory(const PlanInput& in) {
  const auto& c = in.model;
  MemoryPlan m;
  m.params = student::analytic_param_count(c);
  m.trainable = in.lora_rank > 0 ? lora_params(in) : m.params;
  // bf16 autocast keeps a bf16 copy of each matmul weight for the step (its cast cache)
  m.weights = (m.params + m.trainable * (in.lora_rank > 0 ? 1 : 0) + (in.average_last ? m.trainable : 0)) * kF32 +
              (in.bf16_autocast ? m.params * 2 : 0);
  m.gradients = m.trainable * kF32;
  m.optimizer = 2 * m.trainable * kF32;
  const auto N = in.batch_tokens;
  const std::int64_t elem = in.bf16_autocast ? 2 : kF32;
  std::int64_t all = 0, largest = 0, widest = 0;
  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const auto a = layer_activations(c, l) + (in.lora_rank > 0 ? lora_activations(in, l) : 0);
    all += a;
    largest = std::max(largest, a);
    widest = std::max(widest, layer_widest(c, l));
  }
  const auto final_norm = 2 * c.hidden_size;
  m.activations = N * (all + final_norm) * elem;
  m.activations_checkpointed = N * (c.num_hidden_layers * c.hidden_size + largest + final_norm) * elem;
  // the loss: logits and their gradient at once, or two slices of vocab_chunk rows
  const auto cols = in.vocab_chunk > 0 ? std::min(in.vocab_chunk, c.vocab_size) : c.vocab_size;
  m.logits = 2 * N * cols * kF32;
  const auto acts = in.checkpoint_activations ? m.activations_checkpointed : m.activations;
  // Backward starts with every activation alive: the loss's logits first, then the last layer's widest gradients
  // (two of them, and the hidden state's). Parameter gradients grow as activations are freed layer by layer.
  const auto backward = std::max(m.logits, N * (2 * widest + c.hidden_size) * elem);
  const auto body = m.weights + m.optimizer +
                    (in.grad_accum > 1 ? m.gradients + acts : std::max(acts, m.gradients)) + backward;
  m.workspace = (150ll << 20) + body / 20;  // measured on the CPU: see memory_plan.h
  m.peak = body + m.workspace;
  return m;
}

std::string bytes_text(std::int64_t b) {
  char buf[32];
  const double v = double(b);
  if (v >= double(1ll << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", v / double(1ll << 30));
  else if (v >= double(1 << 20)) std::snprintf(buf, sizeof buf, "%.0f MiB", v / double(1 << 20));
  else std::snprintf(buf, sizeof buf, "%.0f KiB", v / 1024.0);
  return buf;
}

}  // namespace distill::train
