// model/transformer.cpp: see transformer.h. The tensor-name table (per model_type) is at the top; every
// module below takes its names from it. The MoE FFN is in model/moe.cpp.
#include "model/transformer.h"

#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <mutex>

#include "common/errors.h"
#include "model/cpu_attention.h"
#include "model/cpu_gemm.h"
#include "model/cpu_gemv.h"
#include "model/cpu_kernels.h"
#include "model/train_kernels.h"
#include "model/transformer_impl.h"

namespace distill::model {

namespace F = torch::nn::functional;

// ---- tensor names ---------------------------------------------------------------------------------------
namespace detail {
Names names_for(const ModelConfig& c) {
  if (c.model_type == "mixtral") return {"block_sparse_moe", "w1", "w3", "w2", "", ""};
  if (c.model_type == "qwen2_moe") return {"mlp", "gate_proj", "up_proj", "down_proj", "shared_expert", "shared_expert_gate"};
  return {"mlp", "gate_proj", "up_proj", "down_proj", "shared_experts", ""};
}

Linear linear(std::int64_t in, std::int64_t out, bool bias) {
  return Linear(torch::nn::LinearOptions(in, out).bias(bias));
}
}  // namespace detail

namespace {
using detail::linear;
using detail::Names;
using detail::names_for;

// x: [B, heads, T, d]; cos/sin_rot: [B, 1, T, d]. HF's x * cos + rotate_half(x) * sin, with rotate_half(x) =
// [-x2, x1] written as roll(x, d/2) = [x2, x1] times sin_rot = [-sin1, sin2]: the same products, fewer ops.
// `interleaved`: the checkpoint stores rotary pairs as (x0, x1), (x2, x3), ...; they are first gathered to the
// half-split layout, as DeepSeek's HF port does (prepared inference weights have that gather folded in).
torch::Tensor apply_rope(torch::Tensor x, const torch::Tensor& cos, const torch::Tensor& sin_rot, bool interleaved) {
  if (interleaved) {
    auto s = x.sizes().vec();
    const auto d = s.back();
    s.back() = d / 2;
    s.push_back(2);
    x = x.reshape(s).transpose(-1, -2).reshape(x.sizes());
  }
  return torch::addcmul(x * cos, torch::roll(x, x.size(-1) / 2, -1), sin_rot);
}

// YaRN's attention temperature: 0.1 * mscale * ln(factor) + 1 (1 for factor <= 1).
double yarn_mscale(double factor, double mscale) { return factor <= 1 ? 1.0 : 0.1 * mscale * std::log(factor) + 1.0; }

// Row order that gathers interleaved rotary pairs to the half-split layout: [0, 2, 4, ..., 1, 3, 5, ...].
torch::Tensor deinterleave_order(std::int64_t d) {
  return torch::cat({torch::arange(0, d, 2, torch::kInt64), torch::arange(1, d, 2, torch::kInt64)});
}

// w with the rows [offset + j*stride + base, + rope) of every block j permuted by `order` (see above).
torch::Tensor permute_rope_rows(const torch::Tensor& w, std::int64_t blocks, std::int64_t stride, std::int64_t base,
                                std::int64_t rope) {
  auto order = deinterleave_order(rope).to(w.device());
  auto out = w.clone();
  for (std::int64_t j = 0; j < blocks; ++j)
    out.narrow(0, j * stride + base, rope).copy_(w.narrow(0, j * stride + base, rope).index_select(0, order));
  return out;
}

// x w^T + b through the exact 16-bit copy w16 when a decode step may use it (model/cpu_gemv.h), else fp32.
torch::Tensor decode_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& w16,
                            const torch::Tensor& b = {}) {
  return gemv::applies(x, w16) ? gemv::linear(x, w16, b) : gemm::linear(x, w, b);
}

// SwiGLU down(silu(gate(x)) * up(x)); with gate_up = [gate; up] stacked (prepared inference), one matmul for both.
torch::Tensor swiglu(const torch::Tensor& x, const torch::Tensor& gate_up, Linear& gate, Linear& up, Linear& down,
                     const torch::Tensor& gate_up16 = {}) {
  if (gate_up.defined() && !torch::GradMode::is_enabled()) {
    auto gu = decode_linear(x, gate_up, gate_up16);
    if (cpu::applies(gu)) return down(cpu::silu_mul(gu));
    auto parts = gu.chunk(2, -1);
    return down(F::silu(parts[0]) * parts[1]);
  }
  auto g = gate(x), u = up(x);
  // On the CPU: silu(g) * u forward and backward in one pass each (without gradients too: validation and the
  // checkpointed forward then match the training step's rounding).
  if (fused::applies(g) && fused::applies(u)) return down(fused::swiglu(g, u));
  return down(F::silu(g) * u);
}

// Attention over (possibly cached) keys. q: [B,H,T,dq]; k: [B,Hk,T,dq]; v: [B,Hk,T,dv] for the new tokens.
torch::Tensor attend(torch::Tensor q, torch::Tensor k, torch::Tensor v, LayerContext& ctx, double scale) {
  const auto B = q.size(0), H = q.size(1), T = q.size(2);
  if (ctx.cache) {
    // Cache layout [slots, heads, max_len, d]: rows of one (slot, head) are contiguous, so a prefix of slots
    // reads as a strided view that matmul can batch without copying.
    auto& kc = ctx.cache->k[std::size_t(ctx.layer)];
    auto& vc = ctx.cache->v[std::size_t(ctx.layer)];
    kc.view({-1, k.size(3)}).index_copy_(0, ctx.flat_index, k.reshape({-1, k.size(3)}));
    vc.view({-1, v.size(3)}).index_copy_(0, ctx.flat_index, v.reshape({-1, v.size(3)}));
    if (ctx.slot_begin >= 0) {
      k = kc.narrow(0, ctx.slot_begin, B).narrow(2, 0, ctx.kv_len);
      v = vc.narrow(0, ctx.slot_begin, B).narrow(2, 0, ctx.kv_len);
    } else {
      k = kc.narrow(2, 0, ctx.kv_len).index_select(0, ctx.slots);
      v = vc.narrow(2, 0, ctx.kv_len).index_select(0, ctx.slots);
    }
  }
  const auto Hk = k.size(1);
  if (ctx.cache && T == 1 && !torch::GradMode::is_enabled()) {
    // Decode: one query per row. Each kv head's `rep` query heads form one batch of baddbmm(mask bias, q, k^T)
    // then bmm, reading the cache in place (a prefix of slots is a strided view; expanding it to H heads would
    // copy the whole cache every layer and step). Beats the fused CPU kernel's 32x512 tiles.
    const auto rep = H / Hk, S = k.size(2);
    if (!ctx.bias_heads.defined())
      ctx.bias_heads = ctx.additive_mask(q.scalar_type()).expand({B, H, 1, S}).reshape({B * H, 1, S});
    auto scores = at::baddbmm(ctx.bias_heads.view({B * Hk, rep, S}), q.reshape({B * Hk, rep, q.size(3)}),
                              k.reshape({B * Hk, S, k.size(3)}).transpose(1, 2), 1.0, scale);  // [B*Hk,rep,S]
    return at::bmm(scores.softmax(-1), v.reshape({B * Hk, S, v.size(3)})).view({B, H, 1, v.size(3)});
  }
  // Training: SDPA reads each kv head for its query heads itself (enable_gqa). On the CPU measured ~8% faster
  // forward + backward than expanding k and v to H heads and summing their gradients back; on CUDA it saves the
  // H/Hk copies of k and v that backward would keep (7 for qwen2.5-7b). CUDA only on the causal path: with a mask
  // (packed rows) a GQA call falls back to the math kernel there.
  const bool sdpa_gqa = Hk != H && !ctx.cache && torch::GradMode::is_enabled() && (q.device().is_cpu() || ctx.causal);
  if (Hk != H && !sdpa_gqa) {  // GQA: kv head j serves query heads j*rep .. j*rep+rep-1
    const auto rep = H / Hk, S = k.size(2);
    k = k.unsqueeze(2).expand({B, Hk, rep, S, k.size(3)}).reshape({B, H, S, k.size(3)});
    v = v.unsqueeze(2).expand({B, Hk, rep, S, v.size(3)}).reshape({B, H, S, v.size(3)});
  }
  // Causal: SDPA skips the masked blocks.
  if (ctx.causal) return at::scaled_dot_product_attention(q, k, v, {}, 0.0, true, scale, sdpa_gqa);
  return at::scaled_dot_product_attention(q, k, v, ctx.dense_mask(), 0.0, false, scale, sdpa_gqa);  // [B,H,T,dv]
}

}  // namespace

std::pair<torch::Tensor, double> rope_frequencies(const ModelConfig& c, const torch::Device& dev) {
  const auto rd = c.rope_dim();
  const auto i32 = torch::TensorOptions().dtype(torch::kFloat32).device(dev);
  auto pos_freqs = torch::pow(c.rope_theta, torch::arange(0, rd, 2, i32.dtype(torch::kInt64)).to(torch::kFloat32) / double(rd));
  torch::Tensor inv_freq = 1.0 / pos_freqs;
  const double factor = c.rope_scaling_factor;
  if (c.rope_scaling_type == "linear") return {inv_freq / factor, 1.0};
  if (c.rope_scaling_type == "llama3") {
    // Llama 3.1: wavelengths beyond original/low_freq_factor slow down by `factor`, those under
    // original/high_freq_factor stay, and in between the two blend by where the wavelength falls.
    const double orig = double(c.rope_original_max_position), lo = c.rope_low_freq_factor, hi = c.rope_high_freq_factor;
    auto wavelen = 2 * M_PI / inv_freq;
    auto smooth = ((orig / wavelen) - lo) / (hi - lo);
    auto blended = (1 - smooth) * inv_freq / factor + smooth * inv_freq;
    return {torch::where(wavelen > orig / lo, inv_freq / factor, torch::where(wavelen < orig / hi, inv_freq, blended)), 1.0};
  }
  if (c.rope_scaling_type != "yarn") return {inv_freq, 1.0};
  // YaRN: dims that rotate fewer than beta_slow times over the original context are interpolated (slowed by
  // factor), those rotating more than beta_fast times kept, with a linear ramp between.
  const double base = c.rope_theta, orig = double(c.rope_original_max_position);
  auto correction_dim = [&](double rotations) {
    return (double(rd) * std::log(orig / (rotations * 2 * M_PI))) / (2 * std::log(base));
  };
  double low = correction_dim(c.rope_beta_fast), high = correction_dim(c.rope_beta_slow);
  if (c.rope_truncate) low = std::floor(low), high = std::ceil(high);
  low = std::max(low, 0.0), high = std::min(high, double(rd - 1));
  if (low == high) high += 0.001;  // as the reference: no zero-width ramp
  auto ramp = ((torch::arange(rd / 2, i32) - low) / (high - low)).clamp(0, 1);
  auto keep = 1 - ramp;  // the share of the original frequency
  inv_freq = (1.0 / (factor * pos_freqs)) * (1 - keep) + inv_freq * keep;
  double attention = c.rope_attention_factor;
  if (attention == 0)
    attention = c.rope_mscale != 0 && c.rope_mscale_all_dim != 0
                    ? yarn_mscale(factor, c.rope_mscale) / yarn_mscale(factor, c.rope_mscale_all_dim)
                    : yarn_mscale(factor, 1.0);
  return {inv_freq, attention};
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  auto y = decode_linear(x, weight, weight16, bias);
  if (!lora_A.defined()) return y;
  const auto h = lora_dropout > 0 && is_training() ? F::dropout(x, F::DropoutFuncOptions().p(lora_dropout).training(true)) : x;
  return y + lora_scale * gemm::linear(gemm::linear(h, lora_A, {}), lora_B, {});
}

void LinearImpl::prepare_decode_copy() {
  torch::NoGradGuard g;
  weight16 = gemv::compact(weight);
}

// ---- KV cache -------------------------------------------------------------------------------------------
KVCache KVCache::allocate(const ModelConfig& c, std::int64_t slots, std::int64_t max_len,
                          const torch::TensorOptions& opts) {
  KVCache kv;
  kv.max_len = max_len;
  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) {
    if (c.use_mla()) {  // one latent per token, shared by the heads (MlaAttentionImpl::forward_latent)
      kv.k.push_back(torch::zeros({slots, 1, max_len, c.kv_lora_rank + c.qk_rope_head_dim}, opts));
      continue;
    }
    kv.k.push_back(torch::zeros({slots, c.num_key_value_heads, max_len, c.attn_head_dim()}, opts));
    kv.v.push_back(torch::zeros({slots, c.num_key_value_heads, max_len, c.attn_head_dim()}, opts));
  }
  return kv;
}

bool TransformerImpl::packed_attention_is_per_document(const torch::Device& dev) const {
  return packed_attention_is_per_document(cfg_, dev, embed_tokens->weight.scalar_type() == torch::kFloat32);
}

bool TransformerImpl::packed_attention_is_per_document(const ModelConfig& c, const torch::Device& dev, bool fp32) {
  // As GqaAttention's forward decides it: fused::rope_heads, then fused::causal_attention with doc_starts.
  const auto hd = c.attn_head_dim();
  return dev.is_cpu() && !c.use_mla() && c.sliding_window == 0 && (hd == 16 || hd == 32 || hd == 64) &&
         c.rope_dim() == hd && fp32;
}

const torch::Tensor& LayerContext::dense_mask() {
  if (mask.defined()) return mask;
  if (mask_positions.defined()) {  // positions (and documents) given: keys at or before the query, in its document
    auto allowed = mask_positions.unsqueeze(1) <= mask_positions.unsqueeze(2);  // [B,T(query),T(key)]
    if (mask_segments.defined()) allowed = allowed & (mask_segments.unsqueeze(1) == mask_segments.unsqueeze(2));
    mask = allowed.unsqueeze(1);
  } else {  // plain causal rows: [1, 1, T, T], broadcast over B
    TORCH_CHECK(causal, "attention mask missing");
    const auto T = cos.size(2);
    mask = torch::ones({T, T}, cos.options().dtype(torch::kBool)).tril().view({1, 1, T, T});
  }
  return mask;
}

const torch::Tensor& LayerContext::additive_mask(torch::ScalarType dtype) {
  dense_mask();
  if (!bias_.defined())
    bias_ = torch::zeros(mask.sizes(), mask.options().dtype(dtype))
                .masked_fill_(mask.logical_not(), -std::numeric_limits<float>::infinity())
                .transpose(1, 2);  // [B,1,T,S] -> [B,T,1,S]
  return bias_;
}

// ---- RMSNorm, MLP ---------------------------------------------------------------------------------------
RMSNormImpl::RMSNormImpl(std::int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  if (cpu::applies(x) && weight.scalar_type() == torch::kFloat32) return cpu::rms_norm(x, weight, eps);
  if (fused::applies(x) && fused::applies(weight)) return fused::rms_norm(x, weight, eps);
  // Normalise in fp32, then scale in the input dtype (as the HF Llama/DeepSeek norms do). at::rms_norm was
  // measured here: no faster on CPU in torch 2.11, so the explicit formula stays.
  auto xf = x.to(torch::kFloat32);
  auto y = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps);
  return weight * y.to(x.scalar_type());
}

MLPImpl::MLPImpl(std::int64_t dim, std::int64_t hidden, const char* gate, const char* up, const char* down) {
  gate_proj = register_module(gate, linear(dim, hidden, false));
  up_proj = register_module(up, linear(dim, hidden, false));
  down_proj = register_module(down, linear(hidden, dim, false));
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x) { return swiglu(x, w_gate_up, gate_proj, up_proj, down_proj); }

void MLPImpl::prepare_inference() {
  torch::NoGradGuard g;
  w_gate_up = torch::cat({gate_proj->weight, up_proj->weight}, 0);
}

namespace {

class DenseFfnImpl : public FfnBase {
 public:
  explicit DenseFfnImpl(const ModelConfig& c) {
    gate_proj = register_module("gate_proj", linear(c.hidden_size, c.intermediate_size, false));
    up_proj = register_module("up_proj", linear(c.hidden_size, c.intermediate_size, false));
    down_proj = register_module("down_proj", linear(c.intermediate_size, c.hidden_size, false));
  }
  torch::Tensor forward(const torch::Tensor& x, LayerContext&) override {
    return swiglu(x, w_gate_up, gate_proj, up_proj, down_proj, w_gate_up16);
  }
  void prepare_inference() override {
    torch::NoGradGuard g;
    w_gate_up = torch::cat({gate_proj->weight, up_proj->weight}, 0);
    w_gate_up16 = gemv::compact(w_gate_up);
    down_proj->prepare_decode_copy();
  }
  void release_inference() override {
    w_gate_up = w_gate_up16 = torch::Tensor();
    down_proj->weight16 = torch::Tensor();
  }
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  torch::Tensor w_gate_up, w_gate_up16;  // prepared: [gate; up], and its exact 16-bit copy for decode
};

// ---- attention: GQA -------------------------------------------------------------------------------------
class GqaAttentionImpl : public AttentionBase {
 public:
  explicit GqaAttentionImpl(const ModelConfig& c)
      : H(c.num_attention_heads), K(c.num_key_value_heads), hd(c.attn_head_dim()) {
    q_proj = register_module("q_proj", linear(c.hidden_size, H * hd, c.qkv_bias));
    k_proj = register_module("k_proj", linear(c.hidden_size, K * hd, c.qkv_bias));
    v_proj = register_module("v_proj", linear(c.hidden_size, K * hd, c.qkv_bias));
    o_proj = register_module("o_proj", linear(H * hd, c.hidden_size, c.o_bias));
    if (c.qk_norm) {
      q_norm = register_module("q_norm", RMSNorm(hd, c.rms_norm_eps));
      k_norm = register_module("k_norm", RMSNorm(hd, c.rms_norm_eps));
    }
  }
  torch::Tensor forward(const torch::Tensor& x, LayerContext& ctx) override {
    const auto B = x.size(0), T = x.size(1);
    torch::Tensor q, k, v;
    if (w_qkv.defined() && !torch::GradMode::is_enabled()) {
      auto qkv = decode_linear(x, w_qkv, w_qkv16, b_qkv);
      if (ctx.cache && T == 1) {  // a decode step: the rest of attention in one CPU pass where it applies
        auto spec = decode_spec(ctx);
        if (cpu::decode_attention_applies(qkv, spec)) return o_proj(cpu::decode_attention(qkv, spec));
      }
      auto parts = qkv.split({H * hd, K * hd, K * hd}, -1);
      q = parts[0], k = parts[1], v = parts[2];
    } else {
      q = q_proj(x), k = k_proj(x), v = v_proj(x);
    }
    if (q_norm) {  // Qwen3: each head's q and k normalised before RoPE
      q = q_norm(q.view({B, T, H, hd})).view({B, T, H * hd});
      k = k_norm(k.view({B, T, K, hd})).view({B, T, K * hd});
    }
    if ((torch::GradMode::is_enabled() || !ctx.cache) && fused::applies(q) && fused::applies(ctx.cos) &&
        ctx.cos.size(-1) == hd) {
      // On the CPU without a KV cache (training, validation, a checkpointed layer's forward and its rerun): the
      // rotation and the [B, heads, T, d] layouts in one pass, forward and backward.
      std::tie(q, k, v) = fused::rope_heads(q, k, v, ctx.cos, ctx.sin_rot, H, K);
      // And causal attention for 16-, 32- or 64-wide heads (packed documents too), its output already in o_proj's
      // [B, T, H*d] layout.
      if ((ctx.causal || ctx.doc_starts.defined()) && !ctx.cache && fused::causal_attention_applies(q, k, v))
        return o_proj(fused::causal_attention(q, k, v, 1.0 / std::sqrt(double(hd)), ctx.doc_starts));
    } else {
      q = apply_rope(q.view({B, T, H, hd}).transpose(1, 2), ctx.cos, ctx.sin_rot, false);
      k = apply_rope(k.view({B, T, K, hd}).transpose(1, 2), ctx.cos, ctx.sin_rot, false);
      v = v.view({B, T, K, hd}).transpose(1, 2);
    }
    auto o = attend(q, k, v, ctx, 1.0 / std::sqrt(double(hd)));
    return o_proj(o.transpose(1, 2).reshape({B, T, H * hd}));
  }
  cpu::DecodeAttention decode_spec(const LayerContext& ctx) const {
    cpu::DecodeAttention a;
    a.heads = H, a.kv_heads = K, a.head_dim = hd, a.scale = 1.0 / std::sqrt(double(hd));
    if (q_norm) a.q_norm = q_norm->weight, a.k_norm = k_norm->weight, a.eps = q_norm->eps;
    if (q_norm && k_norm->eps != q_norm->eps) a.head_dim = 0;  // one eps for both: decline otherwise
    a.cos = ctx.cos, a.sin_rot = ctx.sin_rot;
    a.k_cache = ctx.cache->k[std::size_t(ctx.layer)], a.v_cache = ctx.cache->v[std::size_t(ctx.layer)];
    a.slots = ctx.slots, a.positions = ctx.positions;
    return a;
  }
  void prepare_inference() override {
    torch::NoGradGuard g;
    w_qkv = torch::cat({q_proj->weight, k_proj->weight, v_proj->weight}, 0);
    if (q_proj->bias.defined()) b_qkv = torch::cat({q_proj->bias, k_proj->bias, v_proj->bias}, 0);
    w_qkv16 = gemv::compact(w_qkv);
    o_proj->prepare_decode_copy();
  }
  void release_inference() override {
    w_qkv = b_qkv = w_qkv16 = torch::Tensor();
    o_proj->weight16 = torch::Tensor();
  }
  std::int64_t H, K, hd;
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};
  torch::Tensor w_qkv, b_qkv, w_qkv16;  // prepared: [q; k; v] projections in one, and its 16-bit decode copy
};

// ---- attention: MLA (DeepSeek-V2/V3) ---------------------------------------------------------------------
// DeepSeek scales the whole q.k product by mscale(factor, mscale_all_dim)^2 under yarn (as its reference code
// and transformers' yarn_apply_mscale do), on top of yarn's scaling of the rotary part through cos and sin.
double mla_softmax_scale(const ModelConfig& c) {
  double scale = 1.0 / std::sqrt(double(c.qk_head_dim()));
  if (c.rope_scaling_type == "yarn" && c.rope_mscale_all_dim != 0) {
    const double m = yarn_mscale(c.rope_scaling_factor, c.rope_mscale_all_dim);
    scale *= m * m;
  }
  return scale;
}

// q = q_b(norm(q_a(x))) (or q_proj(x)); [k_pass | v] = kv_b(norm(c_kv)) per head, with c_kv and a shared
// rotary key k_rot from kv_a_proj_with_mqa(x); keys are [k_pass | rope(k_rot)], queries [q_pass | rope(q_rot)].
class MlaAttentionImpl : public AttentionBase {
 public:
  explicit MlaAttentionImpl(const ModelConfig& c)
      : H(c.num_attention_heads), nope(c.qk_nope_head_dim), rope(c.qk_rope_head_dim), vd(c.v_head_dim),
        rank(c.kv_lora_rank), interleave(c.rope_interleave), scale(mla_softmax_scale(c)) {
    const auto qd = H * (nope + rope);
    if (c.q_lora_rank > 0) {
      q_a_proj = register_module("q_a_proj", linear(c.hidden_size, c.q_lora_rank, false));
      q_a_layernorm = register_module("q_a_layernorm", RMSNorm(c.q_lora_rank, ModelConfig::kLatentNormEps));
      q_b_proj = register_module("q_b_proj", linear(c.q_lora_rank, qd, false));
    } else {
      q_proj = register_module("q_proj", linear(c.hidden_size, qd, false));
    }
    kv_a_proj_with_mqa = register_module("kv_a_proj_with_mqa", linear(c.hidden_size, rank + rope, false));
    kv_a_layernorm = register_module("kv_a_layernorm", RMSNorm(rank, ModelConfig::kLatentNormEps));
    kv_b_proj = register_module("kv_b_proj", linear(rank, H * (nope + vd), false));
    o_proj = register_module("o_proj", linear(H * vd, c.hidden_size, false));
  }
  torch::Tensor forward(const torch::Tensor& x, LayerContext& ctx) override {
    if (ctx.cache || (w_in.defined() && !torch::GradMode::is_enabled())) return forward_latent(x, ctx);
    const auto B = x.size(0), T = x.size(1);
    auto q = q_proj ? q_proj(x) : q_b_proj(q_a_layernorm(q_a_proj(x)));
    auto ckv = kv_a_proj_with_mqa(x);                    // [B,T,rank+rope]
    q = q.view({B, T, H, nope + rope}).transpose(1, 2);  // [B,H,T,nope+rope]
    auto q_parts = q.split({nope, rope}, -1);
    auto kv_parts = ckv.split({rank, rope}, -1);
    auto kv = kv_b_proj(kv_a_layernorm(kv_parts[0])).view({B, T, H, nope + vd}).transpose(1, 2);
    auto kv_split = kv.split({nope, vd}, -1);              // k_pass [B,H,T,nope], v [B,H,T,vd]
    auto k_rot = kv_parts[1].view({B, 1, T, rope});
    auto q_rot = apply_rope(q_parts[1], ctx.cos, ctx.sin_rot, interleave);
    k_rot = apply_rope(k_rot, ctx.cos, ctx.sin_rot, interleave).expand({B, H, T, rope});
    auto qs = torch::cat({q_parts[0], q_rot}, -1);
    auto ks = torch::cat({kv_split[0], k_rot}, -1);
    auto o = attend(qs, ks, kv_split[1].contiguous(), ctx, scale);
    return o_proj(o.transpose(1, 2).reshape({B, T, H * vd}));
  }

  // Attention over latents (DeepSeek's "absorb" inference): with L = rank + rope, every token keeps one latent
  // [norm(c_kv) | rope(k_rot)] of L values shared by all heads, which is all the cache holds (H*(nope+rope+vd)
  // per token without it). kv_b is absorbed into the weights: head h's query against a latent is
  // [W_kb_h^T q_nope_h | rope(q_rot_h)], and its output W_vb_h (attention-weighted latents) folds into o_proj.
  // Equal to forward() up to fp32 reassociation (tests/test_model_equivalence.cpp).
  torch::Tensor forward_latent(const torch::Tensor& x, LayerContext& ctx) {
    const auto B = x.size(0), T = x.size(1), L = rank + rope;
    // The prepared copies carry no gradient history: with gradients on, the same weights are made for this call.
    const bool prepared = w_in.defined() && !torch::GradMode::is_enabled();
    Absorbed made;
    if (!prepared) made = absorbed();
    const auto& win = prepared ? w_in : made.w_in;
    const auto& wqb = prepared ? w_q_b : made.w_q_b;
    const auto& wo = prepared ? w_o : made.w_o;
    auto parts = gemm::linear(x, win).split({win.size(0) - L, L}, -1);
    auto q = q_proj ? parts[0] : gemm::linear(q_a_layernorm(parts[0]), wqb);  // [B,T,H*L]
    torch::Tensor qs, latent;  // [B,T,H,L] queries with rotated rope parts; [B,T,L] latents
    if (cpu::applies(q) && kv_a_layernorm->weight.scalar_type() == torch::kFloat32) {
      std::tie(qs, latent) = cpu::mla_rope_latent(q, parts[1], kv_a_layernorm->weight, kv_a_layernorm->eps, ctx.cos,
                                                  ctx.sin_rot, H, rank);
    } else {
      auto q4 = q.view({B, T, H, L});
      latent = torch::cat({kv_a_layernorm(parts[1].narrow(-1, 0, rank)),
                           apply_rope(parts[1].narrow(-1, rank, rope).unsqueeze(1), ctx.cos, ctx.sin_rot, false).squeeze(1)},
                          -1);
      auto q_rot = apply_rope(q4.narrow(-1, rank, rope).transpose(1, 2), ctx.cos, ctx.sin_rot, false).transpose(1, 2);
      qs = torch::cat({q4.narrow(-1, 0, rank), q_rot}, -1);
    }
    qs = qs.view({B, T * H, L});
    torch::Tensor keys = latent;  // [B,S,L]
    if (ctx.cache) {
      auto& kc = ctx.cache->k[std::size_t(ctx.layer)];  // [slots, 1, max_len, L]
      kc.view({-1, L}).index_copy_(0, ctx.flat_index, latent.reshape({-1, L}));
      auto live = kc.narrow(2, 0, ctx.kv_len);  // [slots, 1, S, L]
      keys = (ctx.slot_begin >= 0 ? live.narrow(0, ctx.slot_begin, B) : live.index_select(0, ctx.slots)).squeeze(1);
    }
    const auto S = keys.size(1);
    const auto& bias = ctx.additive_mask(x.scalar_type());  // [B,T,1,S]
    torch::Tensor scores;  // [B, T*H, S]
    if (T == 1) {
      scores = at::baddbmm(bias.view({B, 1, S}), qs, keys.transpose(1, 2), 1.0, scale);
    } else {  // the bias broadcast over the heads in place, not copied per head
      scores = at::bmm(qs, keys.transpose(1, 2)).mul_(scale).view({B, T, H, S}).add_(bias).view({B, T * H, S});
    }
    auto o = at::bmm(scores.softmax(-1), keys.narrow(-1, 0, rank));  // [B, T*H, rank]
    return gemm::linear(o.view({B, T, H * rank}), wo);
  }

  struct Absorbed {
    torch::Tensor w_in;   // [H*L + L, D] (no q LoRA) or [q_lora + L, D]: query rows, then kv_a_proj_with_mqa's
    torch::Tensor w_q_b;  // with q LoRA: [H*L, q_lora]
    torch::Tensor w_o;    // [D, H*rank]
  };
  // Rotary rows in half-split order throughout; per head h the query rows are [W_kb_h^T W_nope_h ; W_rot_h].
  // The products are formed in fp32 and cast back once, so a bf16 model rounds them once, not per factor.
  Absorbed absorbed() const {
    const auto L = rank + rope;
    const auto dtype = o_proj->weight.scalar_type();
    auto wq = (q_proj ? q_proj->weight : q_b_proj->weight).to(torch::kFloat32);  // [H*(nope+rope), in]
    if (interleave) wq = permute_rope_rows(wq, H, nope + rope, nope, rope);
    const auto in = wq.size(1);
    auto wq3 = wq.reshape({H, nope + rope, in});
    auto kvb = kv_b_proj->weight.to(torch::kFloat32).view({H, nope + vd, rank});
    auto q_abs = torch::bmm(kvb.narrow(1, 0, nope).transpose(1, 2), wq3.narrow(1, 0, nope));  // [H, rank, in]
    auto wq_abs = torch::cat({q_abs, wq3.narrow(1, nope, rope)}, 1).reshape({H * L, in});
    auto kva = kv_a_proj_with_mqa->weight;
    if (interleave) kva = permute_rope_rows(kva, 1, 0, rank, rope);
    Absorbed a;
    a.w_in = q_proj ? torch::cat({wq_abs.to(dtype), kva}, 0) : torch::cat({q_a_proj->weight, kva}, 0);
    if (!q_proj) a.w_q_b = wq_abs.to(dtype);
    auto wo = o_proj->weight.to(torch::kFloat32).view({-1, H, vd}).transpose(0, 1);        // [H, D, vd]
    a.w_o = torch::bmm(wo, kvb.narrow(1, nope, vd)).transpose(0, 1).reshape({-1, H * rank}).to(dtype);  // [D, H*rank]
    return a;
  }
  void prepare_inference() override {
    torch::NoGradGuard g;
    auto a = absorbed();
    w_in = a.w_in, w_q_b = a.w_q_b, w_o = a.w_o;
  }
  void release_inference() override { w_in = w_q_b = w_o = torch::Tensor(); }
  std::int64_t H, nope, rope, vd, rank;
  bool interleave;
  double scale;  // softmax scale: 1/sqrt(qk_head_dim), times mscale^2 under yarn with mscale_all_dim
  torch::Tensor w_in, w_q_b, w_o;  // prepared: absorbed() (used while gradients are off)
  Linear q_proj{nullptr}, q_a_proj{nullptr}, q_b_proj{nullptr}, kv_a_proj_with_mqa{nullptr},
      kv_b_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_a_layernorm{nullptr}, kv_a_layernorm{nullptr};
};

// ---- decoder layer --------------------------------------------------------------------------------------
class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const ModelConfig& c, std::int64_t idx, std::shared_ptr<MoEImpl>* moe_out) {
    input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
    if (c.use_mla()) attn = register_module("self_attn", std::make_shared<MlaAttentionImpl>(c));
    else attn = register_module("self_attn", std::make_shared<GqaAttentionImpl>(c));
    post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
    if (c.is_moe_layer(idx)) {
      auto m = std::make_shared<MoEImpl>(c);
      *moe_out = m;
      ffn = register_module(names_for(c).ffn, m);
    } else {
      ffn = register_module("mlp", std::make_shared<DenseFfnImpl>(c));
    }
  }
  torch::Tensor forward(const torch::Tensor& x, LayerContext& ctx) {
    auto h = x + attn->forward(input_layernorm(x), ctx);
    return h + ffn->forward(post_attention_layernorm(h), ctx);
  }
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  std::shared_ptr<AttentionBase> attn;
  std::shared_ptr<FfnBase> ffn;
};

}  // namespace

// ---- activation checkpointing ---------------------------------------------------------------------------
// y = layer(x) run with gradients off; backward reruns it with them on and backpropagates through the rerun,
// which accumulates the layer's parameter gradients as it goes (the reentrant scheme of torch.utils.checkpoint).
// The random generator of x's device is put back to its state at the forward for the rerun (LoRA dropout draws
// the same masks), then restored, as torch.utils.checkpoint's preserve_rng_state does.
// The layer context is copied (tensors are shared): the forward that made it has returned by then. On the CPU
// both passes take the same fused attention and SwiGLU; RMSNorm's no-grad pass takes the inference kernel, equal
// to the training one up to fp32 rounding.
struct LayerCall : torch::CustomClassHolder {
  DecoderLayerImpl* layer;
  LayerContext ctx;
  torch::Tensor rng_state;  // the device generator's state when the forward ran
  LayerCall(DecoderLayerImpl* l, LayerContext c) : layer(l), ctx(std::move(c)) {}
};

at::Generator device_generator(const torch::Device& d) {
  return d.is_cpu() ? at::detail::getDefaultCPUGenerator() : at::globalContext().defaultGenerator(d);
}

// Sets the device generator to `state` for its lifetime and puts back the one it found, even when the rerun throws.
class GeneratorStateScope {
 public:
  GeneratorStateScope(const torch::Device& d, const torch::Tensor& state) : gen_(device_generator(d)) {
    std::lock_guard<std::mutex> lock(gen_.mutex());
    saved_ = gen_.get_state();
    gen_.set_state(state);
  }
  ~GeneratorStateScope() {
    std::lock_guard<std::mutex> lock(gen_.mutex());
    gen_.set_state(saved_);
  }
  GeneratorStateScope(const GeneratorStateScope&) = delete;
  GeneratorStateScope& operator=(const GeneratorStateScope&) = delete;

 private:
  at::Generator gen_;
  torch::Tensor saved_;
};

struct CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ac, const torch::Tensor& x,
                               c10::intrusive_ptr<LayerCall> call) {
    ac->save_for_backward({x});
    {
      auto gen = device_generator(x.device());
      std::lock_guard<std::mutex> lock(gen.mutex());
      call->rng_state = gen.get_state();
    }
    torch::NoGradGuard g;
    auto y = call->layer->forward(x, call->ctx);
    ac->saved_data["call"] = c10::IValue::make_capsule(std::move(call));
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ac,
                                                 torch::autograd::variable_list grad_out) {
    auto x = ac->get_saved_variables()[0].detach().requires_grad_(true);
    auto call = c10::static_intrusive_pointer_cast<LayerCall>(ac->saved_data["call"].toCapsule());
    torch::Tensor y;
    {
      GeneratorStateScope rng(x.device(), call->rng_state);
      torch::AutoGradMode on(true);
      y = call->layer->forward(x, call->ctx);
    }
    torch::autograd::backward({y}, {grad_out[0]});
    return {x.grad(), torch::Tensor()};
  }
};

void TransformerImpl::prepare_inference() {
  for (const auto& item : named_modules())  // the fused inference copies would leave the adapter out
    if (auto* lin = dynamic_cast<LinearImpl*>(item.value().get()); lin && lin->lora_A.defined())
      throw std::logic_error("prepare_inference: " + item.key() + " has a LoRA adapter; merge it first (student::merge_lora)");
  for (auto& l : *layers) {
    auto* layer = l->as<DecoderLayerImpl>();
    layer->attn->prepare_inference();
    layer->ffn->prepare_inference();
  }
  torch::NoGradGuard g;
  output16_ = gemv::compact(output_weight());
}

void TransformerImpl::release_inference() {
  output16_ = torch::Tensor();
  for (auto& l : *layers) {
    auto* layer = l->as<DecoderLayerImpl>();
    layer->attn->release_inference();
    layer->ffn->release_inference();
  }
}

// ---- the whole model ------------------------------------------------------------------------------------
TransformerImpl::TransformerImpl(const ModelConfig& c, bool init_weights) : cfg_(c) {
  c.validate("model config");
  model_ = register_module("model", std::make_shared<torch::nn::Module>());
  embed_tokens = model_->register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  layers = model_->register_module("layers", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
    std::shared_ptr<MoEImpl> moe;
    layers->push_back(std::make_shared<DecoderLayerImpl>(c, i, &moe));
    if (moe) moes_.push_back(moe);
  }
  norm = model_->register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  if (!c.tie_word_embeddings) lm_head = register_module("lm_head", linear(c.hidden_size, c.vocab_size, false));

  // Init: N(0, initializer_range) for projections, embeddings and routers; ones for norms; zero biases.
  if (!init_weights) return;
  torch::NoGradGuard g;
  for (auto& p : named_parameters()) {
    const auto& name = p.key();
    if (name.find("norm") != std::string::npos) p.value().fill_(1.0);
    else if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) p.value().zero_();
    else p.value().normal_(0.0, c.initializer_range);
  }
}

std::vector<std::shared_ptr<MoEImpl>> TransformerImpl::moe_layers() const { return moes_; }

ForwardOutput TransformerImpl::forward(const ForwardInput& in) {
  const auto& ids = in.input_ids;
  TORCH_CHECK(ids.dim() == 2, "input_ids must be [B, T], got ", ids.sizes());
  const auto B = ids.size(0), T = ids.size(1);
  const auto dev = ids.device();
  if (cfg_.sliding_window > 0 && std::max(T, in.cache ? in.cache->max_len : 0) > cfg_.sliding_window)
    throw InputError("a sequence of up to " + std::to_string(std::max(T, in.cache ? in.cache->max_len : 0)) +
                     " tokens would cross the model's sliding window of " + std::to_string(cfg_.sliding_window) +
                     " tokens (config.json sliding_window, not implemented): keep prompt + new tokens within it");
  auto pos = in.positions.defined() ? in.positions : torch::arange(T, ids.options()).unsqueeze(0).expand({B, T});
  TORCH_CHECK(pos.sizes() == ids.sizes(), "positions must match input_ids");

  LayerContext ctx;
  // Every row at positions 0..T-1 with nothing cached before: the mask is plain causal.
  ctx.causal = !in.positions.defined() && !in.segment_ids.defined() && (!in.cache || in.kv_len == 0 || in.kv_len == T);
  std::vector<torch::Tensor> router_logits;
  if (in.want_aux_loss) ctx.router_logits = &router_logits;
  if (in.cache) {
    TORCH_CHECK(!in.segment_ids.defined(), "segment_ids cannot be combined with a KV cache");
    ctx.cache = in.cache;
    ctx.slots = in.slots.defined() ? in.slots : torch::arange(B, ids.options());
    ctx.kv_len = in.kv_len ? in.kv_len : pos.max().item<std::int64_t>() + 1;
    ctx.slot_begin = in.slot_begin;
    ctx.positions = pos;
    TORCH_CHECK(ctx.kv_len <= in.cache->max_len, "sequence longer than the KV cache (", in.cache->max_len, ")");
    // row of (slot, head, position) in the cache viewed as [slots * heads * max_len, d], in [B, heads, T] order
    const auto heads = in.cache->k.front().size(1);
    auto sh = ctx.slots.view({B, 1, 1}) * heads + torch::arange(heads, ids.options()).view({1, heads, 1});
    ctx.flat_index = (sh * in.cache->max_len + pos.unsqueeze(1)).reshape({-1});
    auto key_pos = torch::arange(ctx.kv_len, ids.options());
    ctx.mask = (key_pos.view({1, 1, -1}) <= pos.unsqueeze(-1)).unsqueeze(1);  // [B,1,T,S]
  } else if (!ctx.causal || T == 1) {  // plain causal rows: attention skips the masked half without a mask
    ctx.mask_positions = pos;
    ctx.mask_segments = in.segment_ids;
    if (in.segment_ids.defined() && dev.is_cpu()) ctx.doc_starts = fused::document_starts(pos, in.segment_ids);
    // The fused attention reads doc_starts alone; any other path needs the dense mask, made here once (a
    // checkpointed layer keeps its own copy of the context, so one made on first use would be one per layer).
    if (!(ctx.doc_starts.defined() && packed_attention_is_per_document(dev))) ctx.dense_mask();
  }
  // RoPE tables for these positions: angle = position * inv_freq.
  if (!inv_freq_.defined() || inv_freq_.device() != dev) std::tie(inv_freq_, rope_attention_) = rope_frequencies(cfg_, dev);
  auto freqs = pos.to(torch::kFloat32).unsqueeze(-1) * inv_freq_;  // [B,T,rd/2]
  auto h = embed_tokens(ids);
  auto cos = freqs.cos(), sin = freqs.sin();
  if (rope_attention_ != 1.0) cos = cos * rope_attention_, sin = sin * rope_attention_;
  ctx.cos = torch::cat({cos, cos}, -1).unsqueeze(1).to(h.scalar_type());      // [B,1,T,rd]
  ctx.sin_rot = torch::cat({-sin, sin}, -1).unsqueeze(1).to(h.scalar_type());  // [B,1,T,rd], see apply_rope

  const bool checkpoint = in.checkpoint_layers && torch::GradMode::is_enabled();
  TORCH_CHECK(!(checkpoint && in.want_aux_loss), "activation checkpointing with the aux loss is not supported: the "
              "router logits would be kept from the no-grad forward");
  for (std::size_t i = 0; i < layers->size(); ++i) {
    ctx.layer = std::int64_t(i);
    auto* layer = layers[i]->as<DecoderLayerImpl>();
    if (checkpoint && !h.requires_grad()) h = h.detach().requires_grad_(true);  // frozen embeddings: still a graph
    h = checkpoint ? CheckpointedLayer::apply(h, c10::make_intrusive<LayerCall>(layer, ctx)) : layer->forward(h, ctx);
  }
  if (in.logits_at.defined()) h = h.gather(1, in.logits_at.view({B, 1, 1}).expand({B, 1, h.size(2)}));
  h = norm(h);
  ForwardOutput out;
  if (in.hidden_only) out.hidden = h;
  else out.logits = decode_linear(h, output_weight(), output16_).to(torch::kFloat32);
  if (in.want_aux_loss && !router_logits.empty()) {
    // Switch/Mixtral load balancing over all MoE layers: E * sum_e (fraction routed to e) * (mean prob of e).
    auto all = torch::cat(router_logits, 0);
    auto probs = torch::softmax(all, -1);
    auto sel = std::get<1>(probs.topk(cfg_.num_experts_per_tok, -1));
    auto mask = F::one_hot(sel, cfg_.n_routed_experts).to(torch::kFloat32);  // [LN,k,E]
    auto tokens_per_expert = mask.mean(0);                                     // [k,E]
    auto prob_per_expert = probs.mean(0);                                      // [E]
    out.aux_loss = (tokens_per_expert * prob_per_expert.unsqueeze(0)).sum() * double(cfg_.n_routed_experts);
  }
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> TransformerImpl::state_dict() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : named_parameters()) out.emplace_back(p.key(), p.value());
  for (const auto& b : named_buffers()) out.emplace_back(b.key(), b.value());
  return out;
}

torch::Tensor TransformerImpl::output_weight() const { return lm_head ? lm_head->weight : embed_tokens->weight; }

std::int64_t TransformerImpl::n_params() const {
  std::int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

std::int64_t TransformerImpl::n_active_params() const {
  std::int64_t inactive = 0;
  for (const auto& m : moes_) {
    std::int64_t per_expert = 0;
    for (const auto& p : m->experts[0]->parameters()) per_expert += p.numel();
    inactive += (cfg_.n_routed_experts - cfg_.num_experts_per_tok) * per_expert;
  }
  return n_params() - inactive;
}

torch::Tensor causal_lm_loss(const torch::Tensor& logits, const torch::Tensor& labels) {
  const auto V = logits.size(-1);
  auto l = logits.narrow(1, 0, logits.size(1) - 1).reshape({-1, V});
  auto y = labels.narrow(1, 1, labels.size(1) - 1).reshape({-1});
  return F::cross_entropy(l.to(torch::kFloat32), y, F::CrossEntropyFuncOptions().ignore_index(-100));
}

}  // namespace distill::model
