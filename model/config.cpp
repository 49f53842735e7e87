// model/config.cpp: HF config.json <-> ModelConfig, per model_type, and consistency checks.
#include "model/config.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "common/errors.h"

namespace distill::model {

using nlohmann::json;

namespace {
const std::set<std::string> kTypes = {"llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen2_moe", "qwen3_moe",
                                      "deepseek_v3"};
const char* kTypeList = "llama, mistral, qwen2, qwen3, mixtral, qwen2_moe, qwen3_moe or deepseek_v3";

// Keys that never change what the forward pass computes (bookkeeping, training-only knobs at their inference
// meaning, or values derived from other keys and checked there).
const std::set<std::string> kIgnorable = {
    "architectures", "transformers_version", "use_cache", "_name_or_path", "output_router_logits", "model_type",
    "ep_size", "topk_method", "aux_loss_alpha", "seq_aux", "max_window_layers", "bos_token_id", "eos_token_id",
    "pad_token_id", "initializer_range", "max_position_embeddings", "torch_dtype", "dtype",
    "num_nextn_predict_layers", "chunk_size_feed_forward", "is_encoder_decoder", "output_attentions",
    "output_hidden_states", "return_dict", "problem_type", "tie_encoder_decoder", "id2label", "label2id",
    "use_sliding_window", "sliding_window", "layer_types", "qk_head_dim", "head_dim", "tokenizer_class"};

using Used = std::set<std::string>;

// One reader per config.json: typed field access that records every key it consumed, so whatever is left at
// the end is unknown and refused.
struct Reader {
  const json& j;
  const std::string& src;
  Used used;
  bool has(const char* k) const { return j.contains(k) && !j[k].is_null(); }
  [[noreturn]] void fail(const std::string& what) const { throw InputError(src + ": " + what); }
  template <class T>
  void num(const char* k, T& field) {
    used.insert(k);
    if (!has(k)) return;
    if (!j[k].is_number()) fail("key '" + std::string(k) + "' must be a number");
    if constexpr (std::is_integral_v<T>) {
      if (!j[k].is_number_integer()) fail("key '" + std::string(k) + "' must be an integer");
    }
    field = j[k].get<T>();
  }
  void flag(const char* k, bool& field) {
    used.insert(k);
    if (!has(k)) return;
    if (!j[k].is_boolean()) fail("key '" + std::string(k) + "' must be true or false");
    field = j[k].get<bool>();
  }
  // The key, when present, must have one of the values the implementation computes with.
  void must(const char* k, const std::vector<json>& allowed, const char* why) {
    used.insert(k);
    if (!has(k)) return;
    for (const auto& a : allowed)
      if (j[k] == a) return;
    fail("key '" + std::string(k) + "' = " + j[k].dump() + " is not supported (" + why + ")");
  }
};

double rope_number(const json& rs, const char* k, const std::string& src, const std::string& type) {
  if (!rs.contains(k) || !rs[k].is_number())
    throw InputError(src + ": rope_scaling needs a number '" + std::string(k) + "' for rope_type " + type);
  return rs[k].get<double>();
}

// RoPE from either spelling: 4.x rope_theta + rope_scaling {type|rope_type, ...}, or 5.x rope_parameters
// {rope_theta, rope_type, ...} (rope_type "default" meaning unscaled).
void read_rope(Reader& r, ModelConfig& c) {
  r.num("rope_theta", c.rope_theta);
  r.used.insert("rope_scaling");
  r.used.insert("rope_parameters");
  json rs;
  if (r.has("rope_parameters")) {
    rs = r.j["rope_parameters"];
    if (!rs.is_object()) r.fail("key 'rope_parameters' must be an object");
    if (rs.contains("rope_theta")) {
      if (!rs["rope_theta"].is_number()) r.fail("rope_parameters.rope_theta must be a number");
      c.rope_theta = rs["rope_theta"].get<double>();
    } else if (!rs.empty() && rs.begin().value().is_object()) {
      r.fail("key 'rope_parameters' = " + rs.dump() + " is not supported (per-layer-type RoPE is not implemented)");
    }
  }
  if (r.has("rope_scaling")) {
    if (!r.j["rope_scaling"].is_object()) r.fail("key 'rope_scaling' must be an object or null");
    for (auto& [k, v] : r.j["rope_scaling"].items()) rs[k] = v;  // 4.x: rope_theta stays top-level
  }
  if (rs.is_null()) return;
  const auto type_of = [&](const char* k) { return rs.contains(k) && rs[k].is_string() ? rs[k].get<std::string>() : ""; };
  std::string type = type_of("rope_type");
  if (type.empty()) type = type_of("type");
  if (type.empty() || type == "default") {
    for (auto& [k, v] : rs.items())
      if (k != "rope_theta" && k != "rope_type" && k != "type" && k != "partial_rotary_factor")
        r.fail("key 'rope_scaling' = " + rs.dump() + ": '" + k + "' needs a rope_type");
  }
  if (rs.contains("partial_rotary_factor") && rs["partial_rotary_factor"] != 1.0)
    r.fail("rope partial_rotary_factor = " + rs["partial_rotary_factor"].dump() + " is not supported (only 1.0)");
  std::set<std::string> known = {"rope_type", "type", "rope_theta", "partial_rotary_factor", "factor"};
  if (type == "linear") {
    c.rope_scaling_factor = rope_number(rs, "factor", r.src, type);
  } else if (type == "llama3") {
    c.rope_scaling_factor = rope_number(rs, "factor", r.src, type);
    c.rope_low_freq_factor = rope_number(rs, "low_freq_factor", r.src, type);
    c.rope_high_freq_factor = rope_number(rs, "high_freq_factor", r.src, type);
    c.rope_original_max_position = std::int64_t(rope_number(rs, "original_max_position_embeddings", r.src, type));
    known.insert({"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"});
  } else if (type == "yarn") {
    c.rope_scaling_factor = rope_number(rs, "factor", r.src, type);
    c.rope_original_max_position = std::int64_t(rope_number(rs, "original_max_position_embeddings", r.src, type));
    auto opt = [&](const char* k, double& field) {
      if (rs.contains(k) && !rs[k].is_null()) field = rope_number(rs, k, r.src, type);
    };
    opt("beta_fast", c.rope_beta_fast);
    opt("beta_slow", c.rope_beta_slow);
    opt("mscale", c.rope_mscale);
    opt("mscale_all_dim", c.rope_mscale_all_dim);
    opt("attention_factor", c.rope_attention_factor);
    if (rs.contains("truncate") && !rs["truncate"].is_null()) {
      if (!rs["truncate"].is_boolean()) r.fail("rope_scaling.truncate must be true or false");
      c.rope_truncate = rs["truncate"].get<bool>();
    }
    known.insert({"original_max_position_embeddings", "beta_fast", "beta_slow", "mscale", "mscale_all_dim",
                  "attention_factor", "truncate"});
  } else if (!type.empty() && type != "default") {
    r.fail("key 'rope_scaling' = " + rs.dump() + " is not supported (rope_type " + type +
           "; implemented: default, linear, llama3, yarn)");
  }
  for (auto& [k, v] : rs.items())
    if (!known.count(k)) r.fail("unknown rope_scaling key '" + k + "' for rope_type " + (type.empty() ? "default" : type));
  c.rope_scaling_type = type == "default" ? "" : type;
}

// Sliding windows: Mistral and Mixtral use one whenever sliding_window is set; Qwen models only with
// use_sliding_window (5.x also lists the layers in layer_types). Llama and DeepSeek have none.
void read_window(Reader& r, ModelConfig& c) {
  bool on = false;
  if (c.model_type == "mistral" || c.model_type == "mixtral") on = r.has("sliding_window");
  if (c.model_type.rfind("qwen", 0) == 0) {
    r.flag("use_sliding_window", on);
  }
  if (r.has("layer_types")) {
    const auto& lt = r.j["layer_types"];
    if (!lt.is_array() || std::int64_t(lt.size()) != c.num_hidden_layers)
      r.fail("key 'layer_types' must list one type per layer (" + std::to_string(c.num_hidden_layers) + ")");
    bool sliding = false;
    for (std::size_t i = 0; i < lt.size(); ++i) {
      if (lt[i] == "sliding_attention") sliding = true;
      else if (lt[i] != "full_attention")
        r.fail("layer_types[" + std::to_string(i) + "] = " + lt[i].dump() +
               " is not supported (full_attention or sliding_attention)");
    }
    if (c.model_type.rfind("qwen", 0) == 0) on = on && sliding;
    else if (sliding && !on) r.fail("layer_types names sliding_attention but sliding_window is not set");
  }
  if (!on) return;
  if (!r.has("sliding_window") || !r.j["sliding_window"].is_number_integer() || r.j["sliding_window"].get<std::int64_t>() <= 0)
    r.fail("key 'sliding_window' must be a positive integer when sliding-window attention is on");
  c.sliding_window = r.j["sliding_window"].get<std::int64_t>();
  if (c.model_type == "llama" || c.model_type == "deepseek_v3") c.sliding_window = 0;
}

// Token ids may be an int or a list (the first is kept; generation_config.json lists them all).
void read_token(Reader& r, const char* k, std::int64_t& field) {
  if (!r.has(k)) return;
  const auto& v = r.j[k];
  if (v.is_array() && !v.empty() && v[0].is_number_integer()) field = v[0].get<std::int64_t>();
  else if (v.is_number_integer()) field = v.get<std::int64_t>();
}

void read_moe_qwen(Reader& r, ModelConfig& c) {
  // transformers 5 spells Qwen3-MoE's expert count num_local_experts; checkpoints say num_experts.
  r.num("num_experts", c.n_routed_experts);
  r.num("num_local_experts", c.n_routed_experts);
  r.num("num_experts_per_tok", c.num_experts_per_tok);
  r.num("moe_intermediate_size", c.moe_intermediate_size);
  if (c.model_type == "qwen2_moe") r.num("shared_expert_intermediate_size", c.shared_expert_intermediate_size);
  r.num("decoder_sparse_step", c.moe_layer_freq);
  r.num("router_aux_loss_coef", c.router_aux_loss_coef);
  c.norm_topk_prob = false;
  r.flag("norm_topk_prob", c.norm_topk_prob);
  r.used.insert("mlp_only_layers");
  if (r.has("mlp_only_layers")) {
    const auto& m = r.j["mlp_only_layers"];
    if (!m.is_array()) r.fail("key 'mlp_only_layers' must be a list of layer indices");
    for (const auto& v : m) {
      if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() >= c.num_hidden_layers)
        r.fail("mlp_only_layers entry " + v.dump() + " is not a layer index (0.." +
               std::to_string(c.num_hidden_layers - 1) + ")");
      c.mlp_only_layers.push_back(v.get<std::int64_t>());
    }
  }
}

void read_deepseek(Reader& r, ModelConfig& c) {
  r.must("attention_bias", {false}, "biased MLA projections are not implemented");
  r.num("q_lora_rank", c.q_lora_rank);
  r.num("kv_lora_rank", c.kv_lora_rank);
  r.num("qk_nope_head_dim", c.qk_nope_head_dim);
  r.num("qk_rope_head_dim", c.qk_rope_head_dim);
  r.num("v_head_dim", c.v_head_dim);
  r.flag("rope_interleave", c.rope_interleave);
  r.num("n_routed_experts", c.n_routed_experts);
  r.num("num_experts_per_tok", c.num_experts_per_tok);
  r.num("n_shared_experts", c.n_shared_experts);
  r.num("moe_intermediate_size", c.moe_intermediate_size);
  r.num("n_group", c.n_group);
  r.num("topk_group", c.topk_group);
  r.flag("norm_topk_prob", c.norm_topk_prob);
  r.num("routed_scaling_factor", c.routed_scaling_factor);
  r.num("first_k_dense_replace", c.first_k_dense_replace);
  // transformers makes every layer from first_k_dense_replace on MoE, whatever moe_layer_freq says.
  r.must("moe_layer_freq", {1}, "transformers ignores it and makes every layer past first_k_dense_replace MoE");
  r.num("router_aux_loss_coef", c.router_aux_loss_coef);
  r.num("num_nextn_predict_layers", c.num_nextn_predict_layers);
  r.must("scoring_func", {"sigmoid"}, "deepseek_v3 routing is sigmoid with bias correction");
  c.scoring_func = "sigmoid";
  // 5.x writes the derived qk_head_dim (and head_dim = qk_rope_head_dim); a different value would mean another
  // layout than the one computed.
  if (r.has("qk_head_dim") && r.j["qk_head_dim"] != c.qk_head_dim())
    r.fail("key 'qk_head_dim' = " + r.j["qk_head_dim"].dump() + " differs from qk_nope_head_dim + qk_rope_head_dim = " +
           std::to_string(c.qk_head_dim()));
}

// Attention heads for the GQA families: head_dim may be explicit (Qwen3, Mistral) or null.
void read_gqa(Reader& r, ModelConfig& c) {
  if (!r.has("head_dim") && (c.model_type == "qwen3" || c.model_type == "qwen3_moe")) c.head_dim = 128;  // its default
  if (r.has("head_dim")) {
    if (!r.j["head_dim"].is_number_integer()) r.fail("key 'head_dim' must be an integer");
    c.head_dim = r.j["head_dim"].get<std::int64_t>();
    if (c.head_dim == c.hidden_size / c.num_attention_heads && c.hidden_size % c.num_attention_heads == 0) c.head_dim = 0;
  }
  if (c.model_type == "qwen2" || c.model_type == "qwen2_moe") {
    c.qkv_bias = true;
    r.must("qkv_bias", {true}, "Qwen2 attention always has q/k/v biases");
    r.must("attention_bias", {true}, "Qwen2 attention always has q/k/v biases");
  } else if (c.model_type == "mistral" || c.model_type == "mixtral") {
    r.must("attention_bias", {false}, "Mistral attention has no biases");
  } else {  // llama, qwen3, qwen3_moe: attention_bias biases q, k, v and o
    bool b = false;
    r.flag("attention_bias", b);
    c.qkv_bias = c.o_bias = b;
  }
  c.qk_norm = c.model_type == "qwen3" || c.model_type == "qwen3_moe";
}
}  // namespace

bool ModelConfig::is_moe_layer(std::int64_t layer) const {
  if (!is_moe()) return false;
  for (auto l : mlp_only_layers)
    if (l == layer) return false;
  if (is_qwen_moe()) return (layer + 1) % moe_layer_freq == 0;
  return layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
}

void ModelConfig::validate(const std::string& src) const {
  auto bad = [&](const std::string& what) { throw InputError(src + ": " + what); };
  if (!kTypes.count(model_type)) bad("model_type '" + model_type + "' is not supported (expected " + kTypeList + ")");
  // Each size named with its range; the bounds are far above any published model, and keep products from overflowing.
  auto in_range = [&](const char* key, std::int64_t v, std::int64_t lo, std::int64_t hi) {
    if (v < lo || v > hi)
      bad(std::string(key) + " " + std::to_string(v) + " is out of range (expected " + std::to_string(lo) + ".." +
          std::to_string(hi) + ")");
  };
  constexpr std::int64_t kWide = 1 << 20, kMany = 1 << 16;
  in_range("vocab_size", vocab_size, 1, kWide);
  in_range("hidden_size", hidden_size, 1, kWide);
  in_range("num_hidden_layers", num_hidden_layers, 1, kMany);
  in_range("num_attention_heads", num_attention_heads, 1, kMany);
  in_range("num_key_value_heads", num_key_value_heads, 1, kMany);
  in_range("intermediate_size", intermediate_size, 0, kWide);
  in_range("moe_intermediate_size", moe_intermediate_size, 0, kWide);
  in_range("n_routed_experts", n_routed_experts, 0, kMany);
  in_range("head_dim", head_dim, 0, kMany);
  if (!(rope_theta > 0) || !std::isfinite(rope_theta)) bad("rope_theta " + number_text(rope_theta) + " must be > 0");
  if (num_attention_heads % num_key_value_heads) bad("num_attention_heads must be a multiple of num_key_value_heads");
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
    if (model_type != "mixtral" && model_type != "deepseek_v3" && !is_qwen_moe())
      bad("model_type " + model_type + " has no experts: n_routed_experts must be 0");
  }
  if (rope_scaling_type == "yarn" && (rope_scaling_factor <= 0 || rope_original_max_position <= 0))
    bad("yarn RoPE needs factor > 0 and original_max_position_embeddings > 0");
  if (sliding_window < 0) bad("sliding_window must be >= 0");
  if (kv_lora_rank < 0 || q_lora_rank < 0 || n_routed_experts < 0)
    bad("kv_lora_rank, q_lora_rank and n_routed_experts must be >= 0");
  if (intermediate_size <= 0 && (!is_moe() || first_k_dense_replace > 0 || moe_layer_freq > 1))
    bad("intermediate_size must be > 0 for dense layers");
}

void ModelConfig::check_tokenizer_ids(int tokenizer_ids, const std::string& tokenizer_file) const {
  if (tokenizer_ids > vocab_size)
    throw InputError(tokenizer_file + ": the tokenizer has " + std::to_string(tokenizer_ids) + " ids, more than the " +
                     std::to_string(vocab_size) + " rows of the model's embedding (config.json vocab_size)");
}

std::string ModelConfig::architecture() const {
  if (model_type == "deepseek_v3") return "DeepseekV3ForCausalLM";
  if (model_type == "mixtral") return "MixtralForCausalLM";
  if (model_type == "qwen2_moe") return "Qwen2MoeForCausalLM";
  if (model_type == "qwen3_moe") return "Qwen3MoeForCausalLM";
  if (model_type == "qwen2") return "Qwen2ForCausalLM";
  if (model_type == "qwen3") return "Qwen3ForCausalLM";
  if (model_type == "mistral") return "MistralForCausalLM";
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
  Reader r{j, src, {}};
  if (!j.contains("model_type") || !j["model_type"].is_string()) throw InputError(src + ": missing model_type");
  c.model_type = j["model_type"].get<std::string>();
  if (!kTypes.count(c.model_type)) c.validate(src);
  r.num("vocab_size", c.vocab_size);
  r.num("hidden_size", c.hidden_size);
  r.num("num_hidden_layers", c.num_hidden_layers);
  r.num("num_attention_heads", c.num_attention_heads);
  c.num_key_value_heads = c.num_attention_heads;
  r.num("num_key_value_heads", c.num_key_value_heads);
  r.num("intermediate_size", c.intermediate_size);
  r.num("max_position_embeddings", c.max_position_embeddings);
  r.num("rms_norm_eps", c.rms_norm_eps);
  r.flag("tie_word_embeddings", c.tie_word_embeddings);
  r.num("initializer_range", c.initializer_range);
  for (const char* k : {"dtype", "torch_dtype"})
    if (r.has(k) && j[k].is_string()) {
      c.torch_dtype = j[k].get<std::string>();
      static const std::set<std::string> kDtypes = {"float32", "float16", "bfloat16", "float64"};
      if (!kDtypes.count(c.torch_dtype))
        throw InputError(src + ": " + k + " '" + c.torch_dtype + "' is not a dtype (expected float32, float16, bfloat16 or float64)");
    }
  read_token(r, "bos_token_id", c.bos_token_id);
  read_token(r, "eos_token_id", c.eos_token_id);
  read_token(r, "pad_token_id", c.pad_token_id);
  r.must("hidden_act", {"silu"}, "only SwiGLU with SiLU is implemented");
  r.must("attention_dropout", {0.0, 0}, "dropout in attention is not implemented");
  r.must("pretraining_tp", {1}, "tensor-parallel slicing is not implemented");
  r.must("mlp_bias", {false}, "MLP biases are not implemented");
  r.must("quantization_config", {}, "quantised checkpoints are not supported");
  r.must("router_jitter_noise", {0.0, 0}, "router jitter noise is not implemented");
  read_rope(r, c);
  if (c.model_type == "deepseek_v3") {
    read_deepseek(r, c);
  } else {
    read_gqa(r, c);
    if (c.model_type == "mixtral") {
      r.num("num_local_experts", c.n_routed_experts);
      r.num("num_experts_per_tok", c.num_experts_per_tok);
      r.num("router_aux_loss_coef", c.router_aux_loss_coef);
      c.moe_intermediate_size = c.intermediate_size;
      c.norm_topk_prob = true;
    }
    if (c.is_qwen_moe()) read_moe_qwen(r, c);
  }
  read_window(r, c);
  for (auto& [k, v] : j.items()) {
    if (r.used.count(k) || kIgnorable.count(k)) continue;
    throw InputError(src + ": unknown key '" + k + "' for model_type " + c.model_type +
                     " (distill refuses keys it does not implement rather than compute different logits)");
  }
  c.validate(src);
  return c;
}

// The 4.x spelling, which transformers 5 still reads.
nlohmann::json ModelConfig::rope_scaling_json() const {
  if (rope_scaling_type.empty()) return nullptr;
  json rs = {{"rope_type", rope_scaling_type}, {"factor", rope_scaling_factor}};
  if (rope_scaling_type == "llama3") {
    rs["low_freq_factor"] = rope_low_freq_factor;
    rs["high_freq_factor"] = rope_high_freq_factor;
  }
  if (rope_scaling_type == "llama3" || rope_scaling_type == "yarn")
    rs["original_max_position_embeddings"] = rope_original_max_position;
  if (rope_scaling_type == "yarn") {
    rs["beta_fast"] = rope_beta_fast;
    rs["beta_slow"] = rope_beta_slow;
    if (rope_mscale) rs["mscale"] = rope_mscale;
    if (rope_mscale_all_dim) rs["mscale_all_dim"] = rope_mscale_all_dim;
    if (rope_attention_factor) rs["attention_factor"] = rope_attention_factor;
    rs["truncate"] = rope_truncate;
  }
  return rs;
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
            {"tie_word_embeddings", tie_word_embeddings},
            {"initializer_range", initializer_range},
            {"hidden_act", "silu"},
            {"attention_dropout", 0.0},
            {"bos_token_id", bos_token_id},
            {"eos_token_id", eos_token_id},
            {"pad_token_id", pad_token_id},
            {"dtype", torch_dtype},
            {"use_cache", true}};
  // transformers 5's spelling: RoPE under rope_parameters, the dtype as `dtype`, attention kinds as layer_types.
  json rope = rope_scaling_json();
  if (rope.is_null()) rope = {{"rope_type", "default"}};
  rope["rope_theta"] = rope_theta;
  j["rope_parameters"] = rope;
  if (model_type == "qwen2" || model_type == "qwen3" || is_qwen_moe())
    j["layer_types"] = std::vector<std::string>(std::size_t(num_hidden_layers),
                                                sliding_window > 0 ? "sliding_attention" : "full_attention");
  if (!use_mla()) j["head_dim"] = attn_head_dim();  // explicit: Qwen3's default is 128, not hidden / heads
  if (model_type == "llama" || model_type == "qwen3" || model_type == "qwen3_moe") j["attention_bias"] = qkv_bias;
  if (model_type == "llama") j["mlp_bias"] = false;
  if (model_type.rfind("qwen", 0) == 0) {
    j["use_sliding_window"] = sliding_window > 0;
    j["sliding_window"] = sliding_window > 0 ? json(sliding_window) : json(nullptr);
    if (sliding_window > 0) j["max_window_layers"] = 0;
  }
  if (model_type == "mistral") j["sliding_window"] = sliding_window > 0 ? json(sliding_window) : json(nullptr);
  if (model_type == "mixtral") {
    j["num_local_experts"] = n_routed_experts;
    j["num_experts_per_tok"] = num_experts_per_tok;
    j["router_aux_loss_coef"] = router_aux_loss_coef;
    j["sliding_window"] = sliding_window > 0 ? json(sliding_window) : json(nullptr);
  }
  if (is_qwen_moe()) {
    j["num_experts"] = n_routed_experts;
    j["num_experts_per_tok"] = num_experts_per_tok;
    j["moe_intermediate_size"] = moe_intermediate_size;
    if (model_type == "qwen2_moe") j["shared_expert_intermediate_size"] = shared_expert_intermediate_size;
    j["decoder_sparse_step"] = moe_layer_freq;
    j["norm_topk_prob"] = norm_topk_prob;
    j["router_aux_loss_coef"] = router_aux_loss_coef;
    j["mlp_only_layers"] = mlp_only_layers;
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
    if (num_nextn_predict_layers) j["num_nextn_predict_layers"] = num_nextn_predict_layers;
  }
  return j.dump(2) + "\n";
}

}  // namespace distill::model
