// model/config.h: the one transformer description for teacher and student, read from and written to HF
// config.json. Per layer the FFN is dense or MoE; attention is MHA/GQA or MLA. Field names follow the HF
// configs (DeepseekV3, Mixtral, Qwen2-MoE, Llama, Qwen2) so a checkpoint's config maps over one to one.
// Keys we do not implement (rope_scaling other than llama3, sliding windows, ...) are refused: silently
// ignoring them would compute different logits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace distill::model {

struct ModelConfig {
  // llama | mistral | qwen2 | qwen3 | mixtral | qwen2_moe | qwen3_moe | deepseek_v3 (decides tensor names)
  std::string model_type = "llama";

  // --- shape
  std::int64_t vocab_size = 512;
  std::int64_t hidden_size = 64;           // d_model
  std::int64_t num_hidden_layers = 2;
  std::int64_t num_attention_heads = 4;
  std::int64_t num_key_value_heads = 4;    // < num_attention_heads: GQA
  std::int64_t head_dim = 0;               // 0: hidden_size / num_attention_heads
  std::int64_t intermediate_size = 128;    // dense SwiGLU FFN width
  std::int64_t max_position_embeddings = 2048;

  // --- norms, positions, biases
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  // RoPE scaling: "" (none), "linear" (positions divided by `factor`), "llama3" (Llama 3.1+: low frequencies
  // slowed by `factor`, a smooth ramp between) or "yarn" (YaRN: a ramp between interpolated and original
  // frequencies over dims chosen by beta_fast/beta_slow, cos/sin scaled by the attention factor; DeepSeek's
  // mscale_all_dim also scales the MLA softmax).
  std::string rope_scaling_type;
  double rope_scaling_factor = 1.0, rope_low_freq_factor = 1.0, rope_high_freq_factor = 4.0;
  std::int64_t rope_original_max_position = 8192;
  double rope_beta_fast = 32.0, rope_beta_slow = 1.0;  // yarn
  double rope_mscale = 0.0, rope_mscale_all_dim = 0.0;  // yarn; 0: not given
  double rope_attention_factor = 0.0;                   // yarn; 0: derived from factor (and mscale)
  bool rope_truncate = true;                            // yarn: round the correction range to whole dims
  bool qk_norm = false;       // Qwen3: RMSNorm over each head's q and k before RoPE (q_norm, k_norm)
  // Sliding-window attention (Mistral, Qwen with use_sliding_window): 0 for none. Only sequences that fit in
  // the window are accepted, where the window changes nothing; a longer one is refused, naming the key.
  std::int64_t sliding_window = 0;
  std::string torch_dtype = "float32";  // the checkpoint's declared dtype (config.json dtype / torch_dtype)
  std::int64_t num_nextn_predict_layers = 0;  // DeepSeek-V3 MTP layers stored after the decoder layers: ignored
  bool tie_word_embeddings = false;
  bool qkv_bias = false;      // Qwen2 (always), Llama's attention_bias
  bool o_bias = false;        // Llama's attention_bias also biases o_proj
  double initializer_range = 0.02;

  // --- MLA (DeepSeek-V2/V3); used when kv_lora_rank > 0
  std::int64_t q_lora_rank = 0;            // 0: plain q_proj
  std::int64_t kv_lora_rank = 0;
  std::int64_t qk_nope_head_dim = 0;
  std::int64_t qk_rope_head_dim = 0;
  std::int64_t v_head_dim = 0;
  bool rope_interleave = true;             // DeepSeek checkpoints store rotary dims interleaved

  // --- MoE; used when n_routed_experts > 0
  std::int64_t n_routed_experts = 0;
  std::int64_t num_experts_per_tok = 2;    // top-k
  std::int64_t n_shared_experts = 0;       // DeepSeek: shared experts of moe_intermediate_size each
  std::int64_t moe_intermediate_size = 0;  // routed expert width
  std::int64_t shared_expert_intermediate_size = 0;  // Qwen2-MoE: one shared expert of this width, gated
  std::string scoring_func = "softmax";    // softmax (Mixtral, Qwen) | sigmoid (DeepSeek-V3, with bias correction)
  std::int64_t n_group = 1;                // group-limited routing: experts in n_group groups,
  std::int64_t topk_group = 1;             //   tokens may only use the best topk_group groups
  bool norm_topk_prob = true;              // renormalise the top-k weights to sum to 1
  double routed_scaling_factor = 1.0;
  std::int64_t first_k_dense_replace = 0;  // layers [0, k) are dense
  std::int64_t moe_layer_freq = 1;         // then every n-th layer is MoE (Qwen2/3-MoE decoder_sparse_step)
  std::vector<std::int64_t> mlp_only_layers;  // Qwen2/3-MoE: these layers are dense
  double router_aux_loss_coef = 0.0;       // weight of the load-balancing loss in training

  // --- special tokens
  std::int64_t bos_token_id = 1, eos_token_id = 2, pad_token_id = 3;

  bool use_mla() const { return kv_lora_rank > 0; }
  bool is_moe() const { return n_routed_experts > 0; }
  // DeepSeek: layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
  // Qwen2/3-MoE: not in mlp_only_layers and (layer + 1) % decoder_sparse_step == 0; Mixtral: every layer.
  bool is_moe_layer(std::int64_t layer) const;
  bool is_qwen_moe() const { return model_type == "qwen2_moe" || model_type == "qwen3_moe"; }
  std::int64_t attn_head_dim() const { return head_dim ? head_dim : hidden_size / num_attention_heads; }
  std::int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  std::int64_t rope_dim() const { return use_mla() ? qk_rope_head_dim : attn_head_dim(); }
  // transformers builds DeepSeek's q_a_layernorm and kv_a_layernorm with its default eps, not rms_norm_eps.
  static constexpr double kLatentNormEps = 1e-6;

  // Throws InputError naming `source` and the field when the combination is inconsistent.
  void validate(const std::string& source) const;
  // Throws InputError naming `tokenizer_file` when its tokenizer has more ids than the embedding has rows. HF
  // checkpoints pad the embedding past the tokenizer's ids (Qwen: 151936 rows for 151665 ids), so fewer is fine.
  void check_tokenizer_ids(int tokenizer_ids, const std::string& tokenizer_file) const;

  // HF config.json text <-> config. Unknown keys that would change the computation are refused.
  static ModelConfig from_hf_json(const std::string& json_text, const std::string& source);
  std::string to_hf_json() const;
  nlohmann::json rope_scaling_json() const;  // config.json's rope_scaling (null when unscaled)
  std::string architecture() const;  // "DeepseekV3ForCausalLM", ...
};

}  // namespace distill::model
