// student/gguf_export.cpp: export_gguf: a llama / qwen2 / qwen3 model as one GGUF v3 file for llama.cpp, with the
// tensor names, layouts and metadata keys llama.cpp's loader reads (as its convert_hf_to_gguf.py writes them):
// Llama's q/k rows un-permuted to GGML's adjacent-pair RoPE; norms in f32; the tokenizer as "gpt2" BPE (tokens,
// merges, the pre-tokenizer's llama.cpp name) or as "llama" SentencePiece (tokens, scores, types).
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "common/fs.h"
#include "model/chat_template.h"
#include "model/hf_checkpoint.h"
#include "model/transformer.h"
#include "model/sentencepiece_model.h"
#include "model/tokenizer.h"
#include "student/export.h"
#include "student/gguf.h"
#include "student/tokenizer_export.h"

namespace distill::student::detail {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The pre-tokenizer split regexes of the families llama.cpp knows, by its name for them.
const std::vector<std::pair<std::vector<std::string>, std::string>>& known_pre_tokenizers() {
  static const std::vector<std::pair<std::vector<std::string>, std::string>> k = {
      {{R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
       "qwen2"},
      {{R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
       "llama-bpe"},
  };
  return k;
}

std::string pre_tokenizer_name(const json& t, const std::string& path) {
  std::vector<std::string> regexes;
  const json& pre = t.contains("pre_tokenizer") ? t["pre_tokenizer"] : json();
  const json steps = pre.is_object() && pre.value("type", "") == "Sequence" ? pre.value("pretokenizers", json::array())
                                                                            : json::array({pre});
  bool byte_level = false;
  for (const auto& s : steps) {
    if (!s.is_object()) continue;
    if (s.value("type", "") == "Split" && s.contains("pattern") && s["pattern"].contains("Regex"))
      regexes.push_back(s["pattern"]["Regex"].get<std::string>());
    if (s.value("type", "") == "ByteLevel") byte_level = true;
  }
  if (!byte_level) throw InputError(path + ": GGUF export writes byte-level BPE tokenizers (and SentencePiece ones); "
                                    "this pre_tokenizer has no ByteLevel step");
  for (const auto& [want, name] : known_pre_tokenizers())
    if (regexes == want) return name;
  throw InputError(path + ": the pre-tokenizer " + (regexes.empty() ? std::string("(no Split regex)") : regexes[0]) +
                   " has no llama.cpp name export knows (qwen2, llama-bpe)");
}

// tokenizer.ggml.* from a tokenizer.json (byte-level BPE).
void bpe_metadata(GgufWriter& w, const std::string& dir, std::int64_t n_vocab) {
  const auto path = (fs::path(dir) / "tokenizer.json").string();
  json t;
  try {
    t = json::parse(read_file(path));
  } catch (const json::exception& e) {
    throw InputError(path + ": invalid JSON: " + without_library_tag(e.what()));
  }
  if (!t.contains("model") || t["model"].value("type", "BPE") != "BPE")
    throw InputError(path + ": GGUF export writes BPE tokenizer.json models only");
  std::vector<std::string> tokens(static_cast<std::size_t>(n_vocab));
  std::vector<std::int32_t> types(std::size_t(n_vocab), 5);  // unused until named
  for (const auto& [text, id] : t["model"]["vocab"].items()) {
    const auto i = id.get<std::int64_t>();
    if (i < 0 || i >= n_vocab) throw InputError(path + ": token id " + std::to_string(i) + " is past the model's vocab");
    tokens[std::size_t(i)] = text, types[std::size_t(i)] = 1;
  }
  for (const auto& a : t.value("added_tokens", json::array())) {
    const auto i = a["id"].get<std::int64_t>();
    if (i < 0 || i >= n_vocab) throw InputError(path + ": added token id " + std::to_string(i) + " is past the model's vocab");
    tokens[std::size_t(i)] = a["content"].get<std::string>();
    types[std::size_t(i)] = a.value("special", false) ? 3 : 4;
  }
  for (std::size_t i = 0; i < tokens.size(); ++i)
    if (types[i] == 5) tokens[i] = "[PAD" + std::to_string(i) + "]";  // embedding rows past the tokenizer
  std::vector<std::string> merges;
  for (const auto& m : t["model"].value("merges", json::array()))
    merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());
  w.set("tokenizer.ggml.model", std::string("gpt2"));
  w.set("tokenizer.ggml.pre", pre_tokenizer_name(t, path));
  w.set("tokenizer.ggml.tokens", tokens);
  w.set("tokenizer.ggml.token_type", types);
  w.set("tokenizer.ggml.merges", merges);
}

// tokenizer.ggml.* from a SentencePiece tokenizer.model.
void spm_metadata(GgufWriter& w, const std::string& dir, std::int64_t n_vocab) {
  const auto path = (fs::path(dir) / "tokenizer.model").string();
  const auto m = model::parse_sentencepiece_model(read_file(path), path);
  check_exportable(m, path);  // the same settings the hf export refuses
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<std::int32_t> types;
  for (const auto& p : m.pieces) tokens.push_back(p.text), scores.push_back(p.score), types.push_back(p.type);
  if (std::int64_t(tokens.size()) > n_vocab) throw InputError(path + ": more pieces than the model's vocab_size");
  for (auto i = std::int64_t(tokens.size()); i < n_vocab; ++i)
    tokens.push_back("[PAD" + std::to_string(i) + "]"), scores.push_back(-1000.0f), types.push_back(5);
  w.set("tokenizer.ggml.model", std::string("llama"));
  w.set("tokenizer.ggml.tokens", tokens);
  w.set("tokenizer.ggml.scores", scores);
  w.set("tokenizer.ggml.token_type", types);
  w.set("tokenizer.ggml.add_space_prefix", m.add_dummy_prefix);
}

// HF's q/k rows (rotate-half RoPE) in GGML's adjacent-pair order, as convert_hf_to_gguf.py permutes Llama's.
torch::Tensor unpermute_rope_rows(const torch::Tensor& w, std::int64_t heads) {
  auto shape = w.sizes().vec();
  auto r = w.reshape({heads, 2, w.size(0) / heads / 2, -1}).transpose(1, 2);
  return r.reshape(shape).contiguous();
}

std::string gguf_tensor_name(const std::string& hf) {
  static const std::map<std::string, std::string> top = {{"model.embed_tokens.weight", "token_embd.weight"},
                                                         {"model.norm.weight", "output_norm.weight"},
                                                         {"lm_head.weight", "output.weight"}};
  if (auto it = top.find(hf); it != top.end()) return it->second;
  static const std::map<std::string, std::string> layer = {
      {"input_layernorm", "attn_norm"},       {"self_attn.q_proj", "attn_q"},     {"self_attn.k_proj", "attn_k"},
      {"self_attn.v_proj", "attn_v"},         {"self_attn.o_proj", "attn_output"}, {"self_attn.q_norm", "attn_q_norm"},
      {"self_attn.k_norm", "attn_k_norm"},    {"post_attention_layernorm", "ffn_norm"},
      {"mlp.gate_proj", "ffn_gate"},          {"mlp.up_proj", "ffn_up"},           {"mlp.down_proj", "ffn_down"}};
  const std::string pre = "model.layers.";
  if (hf.rfind(pre, 0) == 0) {
    const auto dot = hf.find('.', pre.size());
    const auto last = hf.rfind('.');
    const auto mid = hf.substr(dot + 1, last - dot - 1), kind = hf.substr(last + 1);
    if (auto it = layer.find(mid); it != layer.end())
      return "blk." + hf.substr(pre.size(), dot - pre.size()) + "." + it->second + "." + kind;
  }
  return "";
}

GgmlType weight_type(const std::string& dtype) {
  if (dtype.empty() || dtype == "f16") return GgmlType::f16;
  if (dtype == "bf16") return GgmlType::bf16;
  if (dtype == "f32") return GgmlType::f32;
  if (dtype == "q8_0") return GgmlType::q8_0;
  throw InputError("--dtype " + dtype + " is not a gguf export dtype (expected f16, bf16, f32 or q8_0)");
}

std::uint32_t file_type(GgmlType t) {  // llama_ftype: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q8_0 7, MOSTLY_BF16 32
  return t == GgmlType::f32 ? 0 : t == GgmlType::f16 ? 1 : t == GgmlType::q8_0 ? 7 : 32;
}

std::string tensor_bytes(const torch::Tensor& t, GgmlType type) {
  auto f = t.to(torch::kFloat32).contiguous();
  if (type == GgmlType::q8_0) return quantize_q8_0(f.data_ptr<float>(), f.numel());
  auto c = type == GgmlType::f16 ? f.to(torch::kFloat16) : type == GgmlType::bf16 ? f.to(torch::kBFloat16) : f;
  c = c.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), std::size_t(c.numel() * c.element_size()));
}

void check_supported(const model::ModelConfig& c, const std::string& dir) {
  if (c.model_type != "llama" && c.model_type != "qwen2" && c.model_type != "qwen3")
    throw InputError(dir + ": GGUF export covers the llama, qwen2 and qwen3 architectures (the students); this model "
                     "is " + c.model_type + " (" + c.architecture() + ")");
  if (!c.rope_scaling_type.empty() && c.rope_scaling_type != "llama3" && c.rope_scaling_type != "linear")
    throw InputError(dir + ": RoPE scaling '" + c.rope_scaling_type + "' is not written to GGUF yet (llama3 and linear "
                     "are); export --format hf instead");
  if (c.sliding_window > 0)
    throw InputError(dir + ": sliding-window attention is not written to GGUF yet; export --format hf instead");
  if (c.o_bias && c.model_type != "llama") throw InputError(dir + ": an o_proj bias is not written to GGUF");
}

}  // namespace

ExportReport export_gguf(const ExportOptions& opt, const std::function<void(const std::string&)>& log) {
  const GgmlType wt = weight_type(opt.dtype);
  auto m = model::load_hf_dir(opt.model_dir, torch::kCPU, torch::kFloat32);
  const auto& c = m->config();
  check_supported(c, opt.model_dir);
  auto tok = model::load_tokenizer(opt.model_dir);
  c.check_tokenizer_ids(tok->vocab_size(), model::tokenizer_file(opt.model_dir));
  const std::string arch = c.model_type;
  ExportReport rep;
  rep.out = opt.out;
  rep.architecture = c.architecture();
  GgufWriter w;
  w.set("general.architecture", arch);
  w.set("general.name", fs::path(fs::absolute(opt.model_dir)).lexically_normal().filename().string());
  w.set("general.file_type", file_type(wt));
  if (wt == GgmlType::q8_0) w.set("general.quantization_version", std::uint32_t(2));
  auto u32 = [](std::int64_t v) { return std::uint32_t(v); };
  w.set(arch + ".vocab_size", u32(c.vocab_size));
  w.set(arch + ".context_length", u32(c.max_position_embeddings));
  w.set(arch + ".embedding_length", u32(c.hidden_size));
  w.set(arch + ".block_count", u32(c.num_hidden_layers));
  w.set(arch + ".feed_forward_length", u32(c.intermediate_size));
  w.set(arch + ".attention.head_count", u32(c.num_attention_heads));
  w.set(arch + ".attention.head_count_kv", u32(c.num_key_value_heads));
  w.set(arch + ".attention.key_length", u32(c.attn_head_dim()));
  w.set(arch + ".attention.value_length", u32(c.attn_head_dim()));
  w.set(arch + ".rope.dimension_count", u32(c.attn_head_dim()));
  w.set(arch + ".rope.freq_base", float(c.rope_theta));
  w.set(arch + ".attention.layer_norm_rms_epsilon", float(c.rms_norm_eps));
  if (c.rope_scaling_type == "linear") {
    w.set(arch + ".rope.scaling.type", std::string("linear"));
    w.set(arch + ".rope.scaling.factor", float(c.rope_scaling_factor));
  }
  const bool has_json = fs::exists(fs::path(opt.model_dir) / "tokenizer.json");
  if (has_json) bpe_metadata(w, opt.model_dir, c.vocab_size);
  else spm_metadata(w, opt.model_dir, c.vocab_size);
  rep.tokenizer = has_json ? "byte-level BPE (gpt2) from tokenizer.json" : "SentencePiece (llama) from tokenizer.model";
  if (tok->bos_id() >= 0) w.set("tokenizer.ggml.bos_token_id", u32(tok->bos_id()));
  if (tok->eos_id() >= 0) w.set("tokenizer.ggml.eos_token_id", u32(tok->eos_id()));
  if (tok->pad_id() >= 0) w.set("tokenizer.ggml.padding_token_id", u32(tok->pad_id()));
  if (tok->unk_id() >= 0) w.set("tokenizer.ggml.unknown_token_id", u32(tok->unk_id()));
  const auto with = tok->encode_with_specials("a");
  w.set("tokenizer.ggml.add_bos_token", tok->bos_id() >= 0 && !with.empty() && with.front() == tok->bos_id());
  w.set("tokenizer.ggml.add_eos_token", false);
  const auto tpl = model::chat_template_source(opt.model_dir);
  w.set("tokenizer.chat_template", tpl ? tpl->first : std::string(kR1ChatTemplate));

  if (log) log("export: converting " + std::to_string(m->state_dict().size()) + " tensors");
  for (const auto& [hf, t] : m->state_dict()) {
    const auto name = gguf_tensor_name(hf);
    if (name.empty()) throw InputError(opt.model_dir + ": tensor '" + hf + "' has no GGUF name export knows");
    auto x = t.detach();
    if (arch == "llama" && (name.find(".attn_q.") != std::string::npos || name.find(".attn_k.") != std::string::npos))
      x = unpermute_rope_rows(x, name.find(".attn_q.") != std::string::npos ? c.num_attention_heads : c.num_key_value_heads);
    GgmlType type = x.dim() == 1 ? GgmlType::f32 : wt;
    if (type == GgmlType::q8_0 && x.size(-1) % kQ8Block) type = GgmlType::f16;  // rows must hold whole blocks
    rep.bytes += std::int64_t(ggml_nbytes(type, x.numel()));
    ++rep.tensors;
    w.add_tensor(name, x.sizes().vec(), type, [x, type] { return tensor_bytes(x, type); });  // converted at write
  }
  if (c.rope_scaling_type == "llama3") {
    // llama.cpp divides each rotary frequency by rope_freqs[i], as its converter writes Llama 3.1's scaling:
    // the ratio of the unscaled frequencies to ours, so both engines rotate alike.
    auto plain = c;
    plain.rope_scaling_type.clear();
    auto ratio = (model::rope_frequencies(plain, torch::kCPU).first / model::rope_frequencies(c, torch::kCPU).first)
                     .to(torch::kFloat32).contiguous();
    auto bytes = tensor_bytes(ratio, GgmlType::f32);
    rep.bytes += std::int64_t(bytes.size());
    ++rep.tensors;
    w.add_tensor("rope_freqs.weight", ratio.sizes().vec(), GgmlType::f32, std::move(bytes));
  }
  publish(opt.out, opt.force, /*is_dir=*/false, [&](const std::string& tmp) {
    w.write(tmp);  // tensor by tensor: the file is never whole in memory
  });
  rep.files = {fs::path(opt.out).filename().string()};
  return rep;
}

}  // namespace distill::student::detail
