// model/hf_checkpoint.cpp: see hf_checkpoint.h.
#include "model/hf_checkpoint.h"

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <limits>
#include <regex>
#include <set>
#include <sstream>

#include "common/errors.h"
#include "common/fs.h"
#include "common/sha256.h"
#include "model/tokenizer.h"

namespace distill::model {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kIndexName = "model.safetensors.index.json";

// weight_map {tensor: shard file} of an index, validated: every shard a plain file name.
std::map<std::string, std::string> read_weight_map(const std::string& path) {
  json j;
  try {
    j = json::parse(read_file(path));
  } catch (const json::exception& e) {
    throw InputError(path + ": invalid JSON: " + without_library_tag(e.what()));
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw InputError(path + ": expected an object with a 'weight_map' object");
  std::map<std::string, std::string> map;
  for (auto& [name, shard] : j["weight_map"].items()) {
    if (!shard.is_string()) throw InputError(path + ": weight_map['" + name + "'] must be a file name");
    const auto file = shard.get<std::string>();
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..")
      throw InputError(path + ": weight_map['" + name + "'] = '" + file + "' is not a file name in the folder");
    map[name] = file;
  }
  if (map.empty()) throw InputError(path + ": weight_map lists no tensors");
  return map;
}

bool is_float(StDtype d) { return d == StDtype::F32 || d == StDtype::F16 || d == StDtype::BF16 || d == StDtype::F64; }

// Checkpoint tensors transformers skips on load, so a checkpoint it accepts is accepted here too.
bool skipped_on_load(const ModelConfig& c, const std::string& name) {
  if (name.size() > 20 && name.compare(name.size() - 20, 20, ".rotary_emb.inv_freq") == 0) return true;
  if (c.tie_word_embeddings && name == "lm_head.weight") return true;
  if (c.model_type == "deepseek_v3" && name.rfind("model.layers.", 0) == 0) {
    const auto layer = std::strtoll(name.c_str() + 13, nullptr, 10);  // MTP layers follow the decoder layers
    return layer >= c.num_hidden_layers && layer < c.num_hidden_layers + std::max<std::int64_t>(c.num_nextn_predict_layers, 1);
  }
  return false;
}

}  // namespace

CheckpointTensors CheckpointTensors::of_file(std::shared_ptr<SafetensorsFile> file) {
  CheckpointTensors t;
  for (const auto& info : file->header().tensors) t.where_[info.name] = 0;
  t.source_ = file->path();
  t.files_.push_back(std::move(file));
  return t;
}

CheckpointTensors CheckpointTensors::open_dir(const std::string& dir) {
  const auto single = (fs::path(dir) / "model.safetensors").string();
  const auto index = (fs::path(dir) / kIndexName).string();
  if (fs::exists(single)) return of_file(SafetensorsFile::open(single));
  if (!fs::exists(index)) throw InputError(dir + ": no model.safetensors and no " + kIndexName);
  CheckpointTensors t;
  t.source_ = index;
  std::map<std::string, std::size_t> file_ids;
  for (const auto& [name, shard] : read_weight_map(index)) {
    auto [it, added] = file_ids.emplace(shard, t.files_.size());
    if (added) {
      const auto path = (fs::path(dir) / shard).string();
      if (!fs::exists(path))
        throw InputError(index + ": shard '" + shard + "' (holding '" + name + "') is missing from " + dir);
      t.files_.push_back(SafetensorsFile::open(path));
    }
    if (!t.files_[it->second]->contains(name))
      throw InputError(index + ": tensor '" + name + "' is not in its shard '" + shard + "'");
    t.where_[name] = it->second;
  }
  return t;
}

torch::Tensor CheckpointTensors::get(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw InputError(source_ + ": no tensor '" + name + "'");
  return files_[it->second]->get(name);
}

const StTensorInfo& CheckpointTensors::info(const std::string& name) const {
  const auto& file = *files_[where_.at(name)];
  for (const auto& t : file.header().tensors)
    if (t.name == name) return t;
  throw InputError(file.path() + ": no tensor '" + name + "'");
}

const std::string& CheckpointTensors::file_of(const std::string& name) const { return files_[where_.at(name)]->path(); }

std::vector<std::string> CheckpointTensors::names() const {
  std::vector<std::string> out;
  for (const auto& [n, _] : where_) out.push_back(n);
  return out;
}

void load_state(TransformerImpl& model, const CheckpointTensors& ckpt, const std::string& prefix) {
  torch::NoGradGuard g;
  std::set<std::string> used;
  for (auto& [name, dst] : model.state_dict()) {
    const std::string key = prefix + name;
    if (!ckpt.contains(key)) throw InputError(ckpt.source() + ": missing tensor '" + key + "' required by the model");
    const auto& info = ckpt.info(key);
    const auto& path = ckpt.file_of(key);
    if (!is_float(info.dtype))
      throw InputError(path + ": tensor '" + key + "' has dtype " + dtype_name(info.dtype) +
                       ", expected a floating-point dtype (F32, BF16 or F16)");
    auto src = ckpt.get(key);
    if (src.sizes() != dst.sizes()) {
      std::ostringstream os;
      os << path << ": tensor '" << key << "' has shape " << src.sizes() << ", the model expects " << dst.sizes();
      throw InputError(os.str());
    }
    dst.copy_(src);  // converts the dtype; reads the mapped bytes once
    used.insert(key);
  }
  for (const auto& name : ckpt.names())
    if (name.rfind(prefix, 0) == 0 && !used.count(name) && !skipped_on_load(model.config(), name.substr(prefix.size())))
      throw InputError(ckpt.file_of(name) + ": unexpected tensor '" + name + "' (not part of this model's config)");
}

void load_state(TransformerImpl& model, const SafetensorsFile& file, const std::string& prefix) {
  // A non-owning shared_ptr: `file` outlives this call.
  load_state(model, CheckpointTensors::of_file(std::shared_ptr<SafetensorsFile>(std::shared_ptr<SafetensorsFile>(),
                                                                                  const_cast<SafetensorsFile*>(&file))),
             prefix);
}

void save_hf_dir(TransformerImpl& model, const std::string& dir, const std::string& tokenizer_dir) {
  fs::create_directories(dir);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& [n, t] : model.state_dict()) tensors.emplace_back(n, t.detach().to(torch::kFloat32));
  save_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  auto cfg = model.config();
  cfg.torch_dtype = "float32";  // what was written, whatever the source checkpoint held
  write_file_atomic((fs::path(dir) / "config.json").string(), cfg.to_hf_json());
  if (!tokenizer_dir.empty())  // the tokenizer and its chat template travel with the weights
    for (const auto& f : tokenizer_files(tokenizer_dir))
      write_file_atomic((fs::path(dir) / f).string(), read_file((fs::path(tokenizer_dir) / f).string()));
}

std::string checkpoint_sha256(const std::string& dir) {
  const auto single = (fs::path(dir) / "model.safetensors").string();
  if (fs::exists(single)) return sha256_file_hex(single);
  const auto index = (fs::path(dir) / kIndexName).string();
  if (!fs::exists(index)) throw InputError(dir + ": no model.safetensors and no " + kIndexName);
  std::string all = sha256_file_hex(index);
  std::set<std::string> seen;
  for (const auto& [name, shard] : read_weight_map(index))
    if (seen.insert(shard).second) all += sha256_file_hex((fs::path(dir) / shard).string());
  return sha256_hex(all);
}

Transformer load_hf_dir(const std::string& dir, const torch::Device& device, torch::ScalarType dtype) {
  const auto cfg_path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(cfg_path) && fs::exists(fs::path(dir) / "adapter_config.json"))
    throw InputError(dir + ": a LoRA adapter (adapter_config.json), not a model; merge it into its base first: "
                     "distill export --model " + dir + " --merge-lora --format hf --out MERGED_DIR");
  if (!fs::exists(cfg_path)) throw InputError(dir + ": not a model directory (no config.json)");
  auto cfg = ModelConfig::from_hf_json(read_file(cfg_path), cfg_path);
  auto ckpt = CheckpointTensors::open_dir(dir);
  Transformer m(nullptr);
  try {
    m = Transformer(cfg, /*init_weights=*/false);
  } catch (const c10::Error& e) {  // sizes within range whose product still exceeds the machine
    if (std::string(e.what()).find("allocate") == std::string::npos) throw;
    throw InputError(cfg_path + ": the model these sizes describe does not fit in memory (" +
                     std::string(e.what_without_backtrace()).substr(0, 200) + ")");
  }
  m->to(dtype);
  load_state(*m, ckpt);
  m->to(device);
  return m;
}

GenerationDefaults parse_generation_config(const std::string& text, const std::string& src) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw InputError(src + ": invalid JSON: " + without_library_tag(e.what()));
  }
  if (!j.is_object()) throw InputError(src + ": expected a JSON object");
  GenerationDefaults g;
  auto has = [&](const char* k) { return j.contains(k) && !j[k].is_null(); };
  auto id = [&](const char* k, const json& v) {
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0)
      throw InputError(src + ": '" + std::string(k) + "' must be a token id or a list of them, got " + v.dump());
    return v.get<std::int64_t>();
  };
  if (has("eos_token_id")) {
    const auto& v = j["eos_token_id"];
    if (v.is_array())
      for (const auto& e : v) g.eos_token_ids.push_back(id("eos_token_id", e));
    else
      g.eos_token_ids.push_back(id("eos_token_id", v));
  }
  if (has("bos_token_id")) g.bos_token_id = id("bos_token_id", j["bos_token_id"]);
  if (has("pad_token_id")) g.pad_token_id = id("pad_token_id", j["pad_token_id"]);
  if (has("do_sample")) {
    if (!j["do_sample"].is_boolean()) throw InputError(src + ": 'do_sample' must be true or false");
    g.do_sample = j["do_sample"].get<bool>();
  }
  // Each value within the range the samplers take (transformers' GenerationConfig.validate refuses the same).
  auto real = [&](const char* k, std::optional<double>& field, double lo, double hi, const char* range) {
    if (!has(k)) return;
    if (!j[k].is_number()) throw InputError(src + ": '" + std::string(k) + "' must be a number");
    const double v = j[k].get<double>();
    if (!(v >= lo && v <= hi)) throw InputError(src + ": '" + std::string(k) + "' is " + j[k].dump() + ", expected " + range);
    field = v;
  };
  auto count = [&](const char* k, std::optional<std::int64_t>& field) {
    if (!has(k)) return;
    if (!j[k].is_number_integer() || j[k].get<std::int64_t>() < 0)
      throw InputError(src + ": '" + std::string(k) + "' must be an integer >= 0, got " + j[k].dump());
    field = j[k].get<std::int64_t>();
  };
  real("temperature", g.temperature, 0, std::numeric_limits<double>::max(), "a finite number >= 0");
  real("top_p", g.top_p, 0, 1, "0..1");
  real("min_p", g.min_p, 0, 1, "0..1");
  count("top_k", g.top_k);
  count("max_new_tokens", g.max_new_tokens);
  return g;
}

GenerationDefaults read_generation_config(const std::string& dir) {
  const auto path = (fs::path(dir) / "generation_config.json").string();
  if (!fs::exists(path)) return {};
  return parse_generation_config(read_file(path), path);
}

}  // namespace distill::model
