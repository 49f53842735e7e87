// model/config.cpp: HF config.json <-> ModelConfig, per model_type, and consistency checks.
#include "model/config.h"

#include <nlohmann/json.hpp>
#include <set>

#include "common/errors.h"

namespace distill::model {

using nlohmann::json;

namespace {
const std::set<std::string> kTypes = {"llama", "qwen2", "mixtral", "qwen2_moe", "deepseek_v3"};

// Keys that never change what the forward pass computes.
const std::set<std::string> kIgnorable = {"architectures", "transformers_version", "torch_dtype", "dtype",
                                          "use_cache", "_name_or_path", "output_router_logits", "model_type",
                                          "num_nextn_predict_layers", "ep_size", "topk_method", "aux_loss_alpha",
                                          "seq_aux", "max_window_layers", "bos_token_id", "eos_token_id",
                                          "pad_token_id", "initializer_range", "max_position_embeddings"};
}  // namespace

void ModelConfig::validate(const std::string& src) const {
  auto bad = [&](const std::string& what) { throw InputError(src + ": " + what); };
  if (!kTypes.count(model_type)) bad("model_type '" + model_type + "' is not supported (expected llama, qwen2, mixtral, qwen2_moe or deepseek_v3)");
  if (vocab_size <= 0 || hidden_size <= 0 || num_hidden_layers <= 0 || num_attention_heads <= 0) bad("sizes must be positive");
  if (num_key_value_heads <= 0 || num_attention_heads % num_key_value_heads) bad("num_attention_heads must be a multiple of num_key_value_heads");
  if (!use_mla() && !head_dim && hidden_size % num_attention_heads) bad("hidden_size must be divisible by num_attention_heads (or set head_dim)");
  if (!use_mla() && attn_head_dim() % 2) bad("head_dim must be even for RoPE");
  if (use_mla() && (qk_rope_head_dim <= 0 || qk_rope_head_dim % 2 || qk_nope_head_dim < 0 || v_head_dim <= 0))
    bad("MLA needs qk_rope_head_dim (even, > 0), qk_nope_head_dim >= 0 and v_head_dim > 0");
  if (is_moe()) {
    if (num_experts_per_tok < 1 || num_experts_per_tok > n_routed_experts) bad("num_experts_per_tok must be in 1..n_routed_experts");
    if (moe_intermediate_size <= 0) bad("moe_intermediate_size must be > 0");
    if (scoring_func != "softmax" && scoring_func != "sigmoid") bad("scoring_func must be softmax or sigmoid");
    if (n_group < 1 || n_routed_experts % n_group || topk_group < 1 || topk_group > n_group)
      bad("n_group must divide n_routed_experts and 1 <= topk_group <= n_group");
    if (n_group > 1 && num_experts_per_tok > topk_group * (n_routed_experts / n_group))
      bad("num_experts_per_tok exceeds the experts in topk_group groups");
    if (moe_layer_freq < 1) bad("moe_layer_freq must be >= 1");
    if (n_shared_experts < 0) bad("n_shared_experts must be >= 0");
    if (model_type == "mixtral" && n_shared_experts > 0)
      bad("mixtral has no shared experts: n_shared_experts must be 0 (pretrain: --shared-experts 0)");
    if (first_k_dense_replace < 0 || first_k_dense_replace > num_hidden_layers)
      bad("first_k_dense_replace must be in 0..num_hidden_layers");
  }
  if (kv_lora_rank < 0 || q_lora_rank < 0 || n_routed_experts < 0)
    bad("kv_lora_rank, q_lora_rank and n_routed_experts must be >= 0");
  if (intermediate_size <= 0 && (!is_moe() || first_k_dense_replace > 0 || moe_layer_freq > 1))
    bad("intermediate_size must be > 0 for dense layers");
}

std::string ModelConfig::architecture() const {
  if (model_type == "deepseek_v3") return "DeepseekV3ForCausalLM";
  if (model_type == "mixtral") return "MixtralForCausalLM";
  if (model_type == "qwen2_moe") return "Qwen2MoeForCausalLM";
  if (model_type == "qwen2") return "Qwen2ForCausalLM";
  return "LlamaForCausalLM";
}

ModelConfig ModelConfig::from_hf_json(const std::string& text, const std::string& src) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse errors, and numbers past double's range (out_of_range)
    throw InputError(src + ": invalid JSON: " + without_library_tag(e.what()));
  }
  if (!j.is_object()) throw InputError(src + ": expected a JSON object");
  ModelConfig c;
  std::set<std::string> used;
  auto has = [&](const char* k) { return j.contains(k) && !j[k].is_null(); };
  auto num = [&](const char* k, auto& field) {
    used.insert(k);
    if (!has(k)) return;
    if (!j[k].is_number()) throw InputError(src + ": key '" + std::string(k) + "' must be a number");
    field = j[k].get<std::remove_reference_t<decltype(field)>>();
  };
  auto flag = [&](const char* k, bool& field) {
    used.insert(k);
    if (!has(k)) return;
    if (!j[k].is_boolean()) throw InputError(src + ": key '" + std::string(k) + "' must be true or false");
    field = j[k].get<bool>();
  };
  auto must = [&](const char* k, const json& allowed, const char* why) {
    used.insert(k);
    if (has(k) && j[k] != allowed)
      throw InputError(src + ": key '" + std::string(k) + "' = " + j[k].dump() + " is not supported (" + why + ")");
  };
  if (!j.contains("model_type") || !j["model_type"].is_string()) throw InputError(src + ": missing model_type");
  c.model_type = j["model_type"].get<std::string>();
  if (!kTypes.count(c.model_type)) c.validate(src);
  num("vocab_size", c.vocab_size);
  num("hidden_size", c.hidden_size);
  num("num_hidden_layers", c.num_hidden_layers);
  num("num_attention_heads", c.num_attention_heads);
  c.num_key_value_heads = c.num_attention_heads;
  num("num_key_value_heads", c.num_key_value_heads);
  num("head_dim", c.head_dim);
  num("intermediate_size", c.intermediate_size);
  num("max_position_embeddings", c.max_position_embeddings);
  num("rms_norm_eps", c.rms_norm_eps);
  num("rope_theta", c.rope_theta);
  flag("tie_word_embeddings", c.tie_word_embeddings);
  num("initializer_range", c.initializer_range);
  auto token = [&](const char* k, std::int64_t& field) {
    if (!has(k)) return;
    if (j[k].is_array() && !j[k].empty()) field = j[k][0].get<std::int64_t>();
    else if (j[k].is_number_integer()) field = j[k].get<std::int64_t>();
  };
  token("bos_token_id", c.bos_token_id);
  token("eos_token_id", c.eos_token_id);
  token("pad_token_id", c.pad_token_id);
  must("hidden_act", "silu", "only SwiGLU with SiLU is implemented");
  must("attention_dropout", 0.0, "dropout in attention is not implemented");
  must("pretraining_tp", 1, "tensor-parallel slicing is not implemented");
  used.insert("rope_scaling");
  if (has("rope_scaling")) {
    const auto& rs = j["rope_scaling"];
    const std::string type = rs.is_object() ? rs.value("rope_type", rs.value("type", "")) : "";
    if (type != "llama3")
      throw InputError(src + ": key 'rope_scaling' = " + rs.dump() + " is not supported (only rope_type llama3 is implemented)");
    for (const char* k : {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"})
      if (!rs.contains(k) || !rs[k].is_number())
        throw InputError(src + ": rope_scaling needs a number '" + std::string(k) + "' for rope_type llama3");
    for (auto& [k, v] : rs.items())
      if (k != "rope_type" && k != "type" && k != "factor" && k != "low_freq_factor" && k != "high_freq_factor" &&
          k != "original_max_position_embeddings")
        throw InputError(src + ": unknown rope_scaling key '" + k + "'");
    c.rope_scaling_type = type;
    c.rope_scaling_factor = rs["factor"].get<double>();
    c.rope_low_freq_factor = rs["low_freq_factor"].get<double>();
    c.rope_high_freq_factor = rs["high_freq_factor"].get<double>();
    c.rope_original_max_position = rs["original_max_position_embeddings"].get<std::int64_t>();
  }
  must("use_sliding_window", false, "sliding-window attention is not implemented");
  must("mlp_bias", false, "MLP biases are not implemented");
  must("quantization_config", nullptr, "quantised checkpoints are not supported");
  if (c.model_type == "qwen2" || c.model_type == "qwen2_moe") {
    c.qkv_bias = true;
    if (!j.value("use_sliding_window", false)) used.insert("sliding_window");
  }
  if (c.model_type == "mixtral") {
    used.insert("sliding_window");
    if (has("sliding_window")) throw InputError(src + ": key 'sliding_window' is not supported (set it to null)");
  }
  if (c.model_type == "llama") {
    bool b = false;
    flag("attention_bias", b);
    c.qkv_bias = c.o_bias = b;
  }
  if (c.model_type == "mixtral") {
    num("num_local_experts", c.n_routed_experts);
    num("num_experts_per_tok", c.num_experts_per_tok);
    num("router_aux_loss_coef", c.router_aux_loss_coef);
    c.moe_intermediate_size = c.intermediate_size;
    c.norm_topk_prob = true;
  }
  if (c.model_type == "qwen2_moe") {
    num("num_experts", c.n_routed_experts);
    num("num_experts_per_tok", c.num_experts_per_tok);
    num("moe_intermediate_size", c.moe_intermediate_size);
    num("shared_expert_intermediate_size", c.shared_expert_intermediate_size);
    num("decoder_sparse_step", c.moe_layer_freq);
    num("router_aux_loss_coef", c.router_aux_loss_coef);
    c.norm_topk_prob = false;
    flag("norm_topk_prob", c.norm_topk_prob);
    used.insert("mlp_only_layers");
    if (has("mlp_only_layers") && !j["mlp_only_layers"].empty())
      throw InputError(src + ": key 'mlp_only_layers' is not supported (must be empty)");
  }
  if (c.model_type == "deepseek_v3") {
    must("attention_bias", false, "biased MLA projections are not implemented");
    num("q_lora_rank", c.q_lora_rank);
    num("kv_lora_rank", c.kv_lora_rank);
    num("qk_nope_head_dim", c.qk_nope_head_dim);
    num("qk_rope_head_dim", c.qk_rope_head_dim);
    num("v_head_dim", c.v_head_dim);
    flag("rope_interleave", c.rope_interleave);
    num("n_routed_experts", c.n_routed_experts);
    num("num_experts_per_tok", c.num_experts_per_tok);
    num("n_shared_experts", c.n_shared_experts);
    num("moe_intermediate_size", c.moe_intermediate_size);
    num("n_group", c.n_group);
    num("topk_group", c.topk_group);
    flag("norm_topk_prob", c.norm_topk_prob);
    num("routed_scaling_factor", c.routed_scaling_factor);
    num("first_k_dense_replace", c.first_k_dense_replace);
    num("moe_layer_freq", c.moe_layer_freq);
    num("router_aux_loss_coef", c.router_aux_loss_coef);
    c.scoring_func = "sigmoid";
    used.insert("scoring_func");
    if (has("scoring_func") && j["scoring_func"] != "sigmoid")
      throw InputError(src + ": deepseek_v3 routing is sigmoid with bias correction; scoring_func " +
                       j["scoring_func"].dump() + " is not supported");
  }
  for (auto& [k, v] : j.items()) {
    if (used.count(k) || kIgnorable.count(k)) continue;
    throw InputError(src + ": unknown key '" + k + "' for model_type " + c.model_type +
                     " (distill refuses keys it does not implement rather than compute different logits)");
  }
  c.validate(src);
  return c;
}

std::string ModelConfig::to_hf_json() const {
  json j = {{"architectures", {architecture()}},
            {"model_type", model_type},
            {"vocab_size", vocab_size},
            {"hidden_size", hidden_size},
            {"num_hidden_layers", num_hidden_layers},
            {"num_attention_heads", num_attention_heads},
            {"num_key_value_heads", num_key_value_heads},
            {"intermediate_size", intermediate_size},
            {"max_position_embeddings", max_position_embeddings},
            {"rms_norm_eps", rms_norm_eps},
            {"rope_theta", rope_theta},
            {"rope_scaling", rope_scaling_type.empty()
                                 ? json(nullptr)
                                 : json{{"rope_type", rope_scaling_type},
                                        {"factor", rope_scaling_factor},
                                        {"low_freq_factor", rope_low_freq_factor},
                                        {"high_freq_factor", rope_high_freq_factor},
                                        {"original_max_position_embeddings", rope_original_max_position}}},
            {"tie_word_embeddings", tie_word_embeddings},
            {"initializer_range", initializer_range},
            {"hidden_act", "silu"},
            {"attention_dropout", 0.0},
            {"bos_token_id", bos_token_id},
            {"eos_token_id", eos_token_id},
            {"pad_token_id", pad_token_id},
            {"torch_dtype", "float32"},
            {"use_cache", true}};
  if (head_dim && !use_mla()) j["head_dim"] = head_dim;
  if (model_type == "llama") j["attention_bias"] = qkv_bias;
  if (model_type == "llama") j["mlp_bias"] = false;
  if (model_type == "qwen2" || model_type == "qwen2_moe") j["use_sliding_window"] = false;
  if (model_type == "mixtral") {
    j["num_local_experts"] = n_routed_experts;
    j["num_experts_per_tok"] = num_experts_per_tok;
    j["router_aux_loss_coef"] = router_aux_loss_coef;
    j["sliding_window"] = nullptr;
  }
  if (model_type == "qwen2_moe") {
    j["num_experts"] = n_routed_experts;
    j["num_experts_per_tok"] = num_experts_per_tok;
    j["moe_intermediate_size"] = moe_intermediate_size;
    j["shared_expert_intermediate_size"] = shared_expert_intermediate_size;
    j["decoder_sparse_step"] = moe_layer_freq;
    j["norm_topk_prob"] = norm_topk_prob;
    j["router_aux_loss_coef"] = router_aux_loss_coef;
    j["mlp_only_layers"] = json::array();
  }
  if (model_type == "deepseek_v3") {
    j["attention_bias"] = false;
    j["q_lora_rank"] = q_lora_rank ? json(q_lora_rank) : json(nullptr);
    j["kv_lora_rank"] = kv_lora_rank;
    j["qk_nope_head_dim"] = qk_nope_head_dim;
    j["qk_rope_head_dim"] = qk_rope_head_dim;
    j["v_head_dim"] = v_head_dim;
    j["rope_interleave"] = rope_interleave;
    j["n_routed_experts"] = n_routed_experts;
    j["num_experts_per_tok"] = num_experts_per_tok;
    j["n_shared_experts"] = n_shared_experts;
    j["moe_intermediate_size"] = moe_intermediate_size;
    j["n_group"] = n_group;
    j["topk_group"] = topk_group;
    j["norm_topk_prob"] = norm_topk_prob;
    j["routed_scaling_factor"] = routed_scaling_factor;
    j["first_k_dense_replace"] = first_k_dense_replace;
    j["moe_layer_freq"] = moe_layer_freq;
    j["router_aux_loss_coef"] = router_aux_loss_coef;
    j["scoring_func"] = "sigmoid";
    j["topk_method"] = "noaux_tc";
  }
  return j.dump(2) + "\n";
}

}  // namespace distill::model
