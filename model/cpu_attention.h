// model/cpu_attention.h: one decode step of grouped-query attention on the CPU in one pass, after the fused q|k|v
// projection: the per-head q/k norms (Qwen3), RoPE, the KV-cache write and softmax(q k^T * scale) v over each
// row's cached keys. With LibTorch ops that is about 25 dispatches a layer, a tenth of a small model's decode step;
// here it is one parallel loop over (row, kv head). Equals GqaAttentionImpl's op chain up to fp32 rounding
// (tests/test_model_equivalence.cpp). AVX-512 only (checked at run time); elsewhere applies() is false.
#pragma once

#include <ATen/core/Tensor.h>

namespace distill::model::cpu {

struct DecodeAttention {
  std::int64_t heads = 0, kv_heads = 0, head_dim = 0;
  at::Tensor q_norm, k_norm;    // [head_dim] fp32 per-head RMSNorm weights; undefined: none
  double eps = 1e-6;            // of those norms
  double scale = 1.0;           // on q.k
  at::Tensor cos, sin_rot;      // [B, 1, 1, head_dim], as apply_rope takes them
  at::Tensor k_cache, v_cache;  // [slots, kv_heads, max_len, head_dim] fp32, contiguous
  at::Tensor slots;             // [B] int64: the cache slot of each row
  at::Tensor positions;         // [B] or [B, 1] int64: the new token's position; it attends to keys 0..position
};

// Whether decode_attention runs: qkv [B, 1, (heads + 2 kv_heads) * head_dim] fp32 on the CPU without gradients,
// a head_dim of 16 to 256 in steps of 16 with a full-width rotation, fp32 caches, and an AVX-512 CPU.
bool decode_attention_applies(const at::Tensor& qkv, const DecodeAttention& a);

// Writes each row's rotated k and its v at (slot, position) and returns the attention output [B, 1, heads *
// head_dim]; query head h reads kv head h / (heads / kv_heads).
at::Tensor decode_attention(const at::Tensor& qkv, const DecodeAttention& a);

}  // namespace distill::model::cpu
