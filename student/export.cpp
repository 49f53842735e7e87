// student/export.cpp: see export.h. The HF writer and the publish step; GGUF is in gguf_export.cpp.
#include "student/export.h"

#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "common/errors.h"
#include "common/fs.h"
#include "model/chat_template.h"
#include "model/hf_checkpoint.h"
#include "model/sentencepiece_model.h"
#include "model/tokenizer.h"
#include "model/weights_io.h"
#include "student/lora.h"
#include "student/tokenizer_export.h"

namespace distill::student {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace detail {

void publish(const std::string& out, bool force, bool is_dir, const std::function<void(const std::string&)>& write) {
  const fs::path target = fs::absolute(out);
  if (fs::exists(fs::symlink_status(target)) && !force)
    throw InputError("--out " + out + " exists; --force replaces it");
  if (fs::exists(target) && fs::is_directory(target) != is_dir)
    throw InputError("--out " + out + " exists and is " + (is_dir ? "not a folder" : "a folder") +
                     (is_dir ? "; hf export writes a folder" : "; gguf export writes a file"));
  if (!fs::is_directory(target.parent_path()))
    throw InputError("--out " + out + ": folder " + target.parent_path().string() + " does not exist");
  const auto tag = ".distill-" + std::to_string(::getpid());
  const fs::path tmp = target.string() + tag + ".tmp", old = target.string() + tag + ".old";
  fs::remove_all(tmp);
  try {
    write(tmp.string());
    if (fs::exists(target)) fs::rename(target, old);
    fs::rename(tmp, target);
    sync_directory(target.parent_path().string());
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    if (!fs::exists(target) && fs::exists(old)) fs::rename(old, target, ec);  // put the old one back
    throw;
  }
  fs::remove_all(old);
}

namespace {

torch::ScalarType hf_dtype(const std::string& d) {
  if (d.empty() || d == "f32") return torch::kFloat32;
  if (d == "bf16") return torch::kBFloat16;
  if (d == "f16") return torch::kFloat16;
  throw InputError("--dtype " + d + " is not an hf export dtype (expected f32, bf16 or f16" +
                   (d == "q8_0" ? std::string("; q8_0 is for --format gguf)") : std::string(")")));
}

const char* dtype_name(torch::ScalarType t) {
  return t == torch::kBFloat16 ? "bfloat16" : t == torch::kFloat16 ? "float16" : "float32";
}

// The weights, cast, in files of at most max_bytes (one model.safetensors when they fit).
std::vector<std::string> write_weights(model::TransformerImpl& m, torch::ScalarType dt, std::int64_t max_bytes,
                                       const std::string& dir, ExportReport& rep) {
  std::vector<std::vector<std::pair<std::string, torch::Tensor>>> shards(1);
  std::int64_t in_shard = 0;
  for (auto& [name, t] : m.state_dict()) {
    auto c = t.detach().to(dt).contiguous();
    const std::int64_t n = c.numel() * c.element_size();
    if (in_shard > 0 && in_shard + n > max_bytes) shards.emplace_back(), in_shard = 0;
    shards.back().emplace_back(name, c);
    in_shard += n;
    rep.bytes += n;
    ++rep.tensors;
  }
  std::vector<std::string> files;
  if (shards.size() == 1) {
    model::save_safetensors((fs::path(dir) / "model.safetensors").string(), shards[0], {{"format", "pt"}});
    return {"model.safetensors"};
  }
  json weight_map = json::object();
  for (std::size_t i = 0; i < shards.size(); ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    model::save_safetensors((fs::path(dir) / name).string(), shards[i], {{"format", "pt"}});
    for (const auto& [tn, t] : shards[i]) weight_map[tn] = name;
    files.push_back(name);
  }
  const json index = {{"metadata", {{"total_size", rep.bytes}}}, {"weight_map", weight_map}};
  write_file_atomic((fs::path(dir) / "model.safetensors.index.json").string(), index.dump(2) + "\n");
  files.push_back("model.safetensors.index.json");
  return files;
}

// generation_config.json: every EOS id the model stops at, and the recommended sampling.
std::string generation_config(const std::string& src_dir, const model::ModelConfig& c, const model::Tokenizer& tok,
                              const ExportOptions& opt) {
  const auto src = model::read_generation_config(src_dir);
  std::set<std::int64_t> eos(src.eos_token_ids.begin(), src.eos_token_ids.end());
  if (tok.eos_id() >= 0) eos.insert(tok.eos_id());
  if (eos.empty() && c.eos_token_id >= 0) eos.insert(c.eos_token_id);
  json g = json::object();
  if (tok.bos_id() >= 0) g["bos_token_id"] = tok.bos_id();
  g["eos_token_id"] = eos.size() == 1 ? json(*eos.begin()) : json(std::vector<std::int64_t>(eos.begin(), eos.end()));
  if (tok.pad_id() >= 0) g["pad_token_id"] = tok.pad_id();
  const auto temperature = opt.temperature ? opt.temperature : src.temperature;
  const auto top_p = opt.top_p ? opt.top_p : src.top_p;
  if (temperature && *temperature > 0) {
    g["do_sample"] = true;
    g["temperature"] = *temperature;
    if (top_p) g["top_p"] = *top_p;
    if (src.top_k && !opt.temperature) g["top_k"] = *src.top_k;
  } else if (src.do_sample || opt.temperature) {
    g["do_sample"] = false;
  }
  return g.dump(2) + "\n";
}

// The tokenizer files: tokenizer.json as it came, or one written from tokenizer.model; the chat template as it
// came, or distill's R1 template for a model that prompts in the R1 format.
std::string write_tokenizer_files(const std::string& src, const std::string& dir, const model::ModelConfig& c,
                                  const model::Tokenizer& tok, std::vector<std::string>& files) {
  auto copy = [&](const std::string& f) {
    write_file_atomic((fs::path(dir) / f).string(), read_file((fs::path(src) / f).string()));
    files.push_back(f);
  };
  std::string what;
  const auto tokjson = fs::path(src) / "tokenizer.json";
  if (fs::exists(tokjson)) {
    for (const auto& f : model::tokenizer_files(src)) copy(f);
    what = "tokenizer.json as it came";
  } else {
    const auto spm = (fs::path(src) / "tokenizer.model").string();
    if (!fs::exists(spm)) throw InputError(src + ": no tokenizer.json or tokenizer.model to export");
    const auto m = model::parse_sentencepiece_model(read_file(spm), spm);
    write_file_atomic((fs::path(dir) / "tokenizer.json").string(), tokenizer_json_from_sentencepiece(m, spm));
    auto text = [&](int id) { return id >= 0 && id < int(m.pieces.size()) ? m.pieces[std::size_t(id)].text : std::string(); };
    write_file_atomic((fs::path(dir) / "tokenizer_config.json").string(),
                      tokenizer_config_json(text(tok.bos_id()), text(tok.eos_id()), text(tok.pad_id()),
                                            text(tok.unk_id()), c.max_position_embeddings));
    copy("tokenizer.model");  // for SentencePiece users and llama.cpp's own converter
    files.insert(files.end(), {"tokenizer.json", "tokenizer_config.json"});
    what = "tokenizer.json written from the SentencePiece tokenizer.model";
  }
  if (!model::load_chat_template(src)) {
    write_file_atomic((fs::path(dir) / "chat_template.jinja").string(), kR1ChatTemplate);
    files.push_back("chat_template.jinja");
    what += ", distill's R1 chat template";
  }
  return what;
}

}  // namespace

ExportReport export_hf(const ExportOptions& opt, const std::function<void(const std::string&)>& log) {
  const auto dt = hf_dtype(opt.dtype);
  if (opt.max_shard_bytes < 1) throw InputError("--max-shard-size must be positive");
  ExportReport rep;
  rep.out = opt.out;
  // --merge-lora: the adapter's base with it merged in; the tokenizer and generation defaults of the adapter
  // folder where it has them (distill train writes them there), else of the base
  std::string src = opt.model_dir, gen_src = opt.model_dir;
  model::Transformer m{nullptr};
  if (opt.merge_lora) {
    if (!is_adapter_dir(opt.model_dir)) throw InputError("--merge-lora: " + opt.model_dir + " has no adapter_config.json");
    std::string base;
    read_adapter_config(opt.model_dir, &base);
    if (!model::has_tokenizer(opt.model_dir)) src = base;
    if (!fs::exists(fs::path(opt.model_dir) / "generation_config.json")) gen_src = base;  // its EOS ids and sampling
    m = load_merged(opt.model_dir);
  } else {
    if (is_adapter_dir(opt.model_dir) && !fs::exists(fs::path(opt.model_dir) / "config.json"))
      throw InputError(opt.model_dir + " is a LoRA adapter: export it with --merge-lora (its base with the adapter merged)");
    m = model::load_hf_dir(opt.model_dir, torch::kCPU, torch::kFloat32);
  }
  auto cfg = m->config();
  rep.architecture = cfg.architecture();
  auto tok = model::load_tokenizer(src);
  cfg.check_tokenizer_ids(tok->vocab_size(), model::tokenizer_file(src));
  publish(opt.out, opt.force, /*is_dir=*/true, [&](const std::string& tmp) {
    fs::create_directories(tmp);
    if (log) log("export: writing " + std::string(dtype_name(dt)) + " weights");
    rep.files = write_weights(*m, dt, opt.max_shard_bytes, tmp, rep);
    cfg.torch_dtype = dtype_name(dt);
    write_file_atomic((fs::path(tmp) / "config.json").string(), cfg.to_hf_json());
    write_file_atomic((fs::path(tmp) / "generation_config.json").string(), generation_config(gen_src, cfg, *tok, opt));
    rep.files.insert(rep.files.end(), {"config.json", "generation_config.json"});
    rep.tokenizer = write_tokenizer_files(src, tmp, cfg, *tok, rep.files);
  });
  return rep;
}

}  // namespace detail

ExportReport export_model(const ExportOptions& opt, const std::function<void(const std::string&)>& log) {
  if (opt.model_dir.empty()) throw InputError("--model is required");
  if (opt.out.empty()) throw InputError("--out is required");
  if (opt.format == "hf") return detail::export_hf(opt, log);
  if (opt.format == "gguf") {
    if (opt.merge_lora || is_adapter_dir(opt.model_dir))
      throw InputError("--format gguf takes a model, not a LoRA adapter: merge it first (--format hf --merge-lora), "
                       "then export that folder");
    return detail::export_gguf(opt, log);
  }
  throw InputError("--format '" + opt.format + "': expected hf or gguf");
}

}  // namespace distill::student
