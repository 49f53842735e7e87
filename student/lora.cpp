// student/lora.cpp: see lora.h.
#include "student/lora.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/errors.h"
#include "common/fs.h"
#include "model/hf_checkpoint.h"
#include "model/weights_io.h"

namespace distill::student {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPrefix = "base_model.model.";

// The projections an adapter may sit on: Linear modules inside the decoder layers, with their HF names.
std::vector<std::pair<std::string, model::LinearImpl*>> projections(model::TransformerImpl& m) {
  std::vector<std::pair<std::string, model::LinearImpl*>> out;
  for (const auto& item : m.named_modules()) {
    auto* lin = dynamic_cast<model::LinearImpl*>(item.value().get());
    if (lin && item.key().find(".layers.") != std::string::npos) out.emplace_back(item.key(), lin);
  }
  return out;
}

std::string last_name(const std::string& path) { return path.substr(path.rfind('.') + 1); }

}  // namespace

void check_lora_config(const LoraConfig& c) {
  if (c.rank < 1) throw InputError("--lora-rank " + std::to_string(c.rank) + ": expected >= 1");
  if (!(c.alpha >= 0) || !std::isfinite(c.alpha))
    throw InputError("--lora-alpha " + number_text(c.alpha) + ": expected a finite number >= 0 (0: the rank)");
  if (!(c.dropout >= 0 && c.dropout < 1)) throw InputError("--lora-dropout " + number_text(c.dropout) + ": expected a number in [0, 1)");
}

std::vector<std::string> add_lora(model::TransformerImpl& m, LoraConfig c, const std::set<std::string>* modules) {
  check_lora_config(c);
  m.release_inference();  // the prepared copies (the experts' stacked weights) would bypass the adapters
  const auto all = projections(m);
  std::set<std::string> names;
  for (const auto& [path, lin] : all) names.insert(last_name(path));
  if (c.targets.empty()) c.targets.assign(names.begin(), names.end());
  for (const auto& t : c.targets) {
    if (names.count(t)) continue;
    std::string have;
    for (const auto& n : names) have += (have.empty() ? "" : ", ") + n;
    throw InputError("--lora-targets: '" + t + "' names no projection of this model; its projections are " + have);
  }
  const std::set<std::string> wanted(c.targets.begin(), c.targets.end());
  if (c.dropout > 0 && !modules)
    for (const auto& [path, lin] : all)
      if (wanted.count(last_name(path)) && path.find(".experts.") != std::string::npos)
        throw InputError("--lora-dropout " + number_text(c.dropout) + " with the routed experts' '" + last_name(path) +
                         "' as a target: peft keeps routed experts stacked and implements no dropout there, so it "
                         "could not load the adapter; leave out --lora-dropout, or list --lora-targets without the "
                         "experts' projections");
  torch::NoGradGuard no_grad;
  for (auto& p : m.parameters()) p.set_requires_grad(false);
  std::vector<std::string> adapted;
  for (const auto& [path, lin] : all) {
    if (!wanted.count(last_name(path)) || (modules && !modules->count(path))) continue;
    const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(lin->weight.device());
    lin->lora_A = torch::empty({c.rank, lin->weight.size(1)}, opts);
    torch::nn::init::kaiming_uniform_(lin->lora_A, std::sqrt(5.0));
    lin->lora_A.set_requires_grad(true);
    lin->lora_B = torch::zeros({lin->weight.size(0), c.rank}, opts).set_requires_grad(true);
    lin->lora_scale = c.scale();
    lin->lora_dropout = c.dropout;
    adapted.push_back(path);
  }
  return adapted;
}

std::vector<std::pair<std::string, torch::Tensor>> lora_tensors(model::TransformerImpl& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [path, lin] : projections(m)) {
    if (!lin->lora_A.defined()) continue;
    out.emplace_back(path + ".lora_A.weight", lin->lora_A);
    out.emplace_back(path + ".lora_B.weight", lin->lora_B);
  }
  return out;
}

void merge_lora(model::TransformerImpl& m) {
  torch::NoGradGuard no_grad;
  for (const auto& [path, lin] : projections(m)) {
    if (!lin->lora_A.defined()) continue;
    auto delta = torch::matmul(lin->lora_B.to(torch::kFloat32), lin->lora_A.to(torch::kFloat32)) * lin->lora_scale;
    lin->weight.add_(delta.to(lin->weight.scalar_type()));
    lin->lora_A = lin->lora_B = torch::Tensor();
    lin->lora_scale = lin->lora_dropout = 0;
  }
}

void save_peft_adapter(model::TransformerImpl& m, const LoraConfig& c, const std::string& base, const std::string& dir) {
  std::vector<std::pair<std::string, torch::Tensor>> named;
  std::set<std::string> targets;
  for (auto& [name, t] : lora_tensors(m)) {
    named.emplace_back(kPrefix + name, t.detach().to(torch::kFloat32));
    const auto module = name.substr(0, name.rfind(".lora_"));
    targets.insert(last_name(module));
  }
  fs::create_directories(dir);
  model::save_safetensors(dir + "/adapter_model.safetensors", named, {{"format", "pt"}});
  const nlohmann::json cfg = {
      {"peft_type", "LORA"}, {"task_type", "CAUSAL_LM"}, {"base_model_name_or_path", base},
      {"r", c.rank}, {"lora_alpha", c.alpha > 0 ? c.alpha : double(c.rank)}, {"lora_dropout", c.dropout},
      {"target_modules", std::vector<std::string>(targets.begin(), targets.end())}, {"bias", "none"},
      {"fan_in_fan_out", false}, {"use_rslora", false}, {"use_dora", false}, {"init_lora_weights", true},
      {"modules_to_save", nullptr}, {"inference_mode", true}, {"revision", nullptr}};
  write_file_atomic(dir + "/adapter_config.json", cfg.dump(2) + "\n");
}

bool is_adapter_dir(const std::string& dir) { return fs::exists(fs::path(dir) / "adapter_config.json"); }

namespace {

// A setting read from adapter_config.json is named by its key there, not by the train flag that sets it.
template <class F>
auto with_adapter_keys(const std::string& path, F&& f) {
  try {
    return f();
  } catch (const InputError& e) {
    std::string m = e.what();
    for (const auto& [flag, key] : {std::pair<std::string, std::string>{"--lora-rank", "r"}, {"--lora-alpha", "lora_alpha"},
                                    {"--lora-dropout", "lora_dropout"}, {"--lora-targets", "target_modules"}})
      if (m.rfind(flag, 0) == 0) {
        m = path + ": " + key + m.substr(flag.size());
        break;
      }
    throw InputError(m);
  }
}

LoraConfig adapter_config_json(const std::string& dir, std::string* base) {
  const auto path = dir + "/adapter_config.json";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": not JSON (" + without_library_tag(e.what()) + ")");
  }
  auto bad = [&](const std::string& what) { throw InputError(path + ": " + what); };
  if (!j.is_object()) bad("expected a JSON object");
  if (j.value("peft_type", "") != "LORA") bad("peft_type is " + j.value("peft_type", nlohmann::json()).dump() + ": expected \"LORA\"");
  for (const char* key : {"use_dora", "use_rslora", "fan_in_fan_out", "lora_bias", "use_qalora"})
    if (j.contains(key) && !j[key].is_null() && j[key] != false) bad(std::string(key) + " is set: this reader implements plain LoRA only");
  for (const char* key : {"rank_pattern", "alpha_pattern", "modules_to_save", "layers_to_transform", "exclude_modules",
                          "target_parameters", "layer_replication", "trainable_token_indices"})
    if (j.contains(key) && !j[key].is_null() && !j[key].empty()) bad(std::string(key) + " is set: this reader does not implement it");
  if (j.value("bias", "none") != "none") bad("bias is " + j["bias"].dump() + ": expected \"none\"");
  LoraConfig c;
  if (!j.value("r", nlohmann::json()).is_number_integer()) bad("expected an integer \"r\"");
  c.rank = j["r"].get<std::int64_t>();
  c.alpha = j.value("lora_alpha", double(c.rank));
  c.dropout = j.value("lora_dropout", 0.0);
  const auto t = j.value("target_modules", nlohmann::json());
  if (t.is_string() && t != "all-linear")  // peft reads any other single string as a regular expression
    bad("target_modules " + t.dump() + " is a regular expression, which this reader does not match; list the module names");
  else if (t.is_array() && std::all_of(t.begin(), t.end(), [](const auto& v) { return v.is_string(); }))
    c.targets = t.get<std::vector<std::string>>();
  else if (t != "all-linear")
    bad("expected \"target_modules\": a list of module names");
  with_adapter_keys(path, [&] { check_lora_config(c); });
  if (base) {
    const auto b = j.value("base_model_name_or_path", std::string());
    if (b.empty()) bad("expected \"base_model_name_or_path\": the base model's directory");
    // as peft reads it (a path from the working folder), else beside the adapter
    *base = fs::path(b).is_absolute() || fs::exists(b) ? b : (fs::path(dir) / b).lexically_normal().string();
    if (!fs::exists(fs::path(*base) / "config.json") && !is_adapter_dir(*base))
      bad("base_model_name_or_path '" + b + "' is not a model directory (no config.json at " + *base + ")");
  }
  return c;
}

}  // namespace

LoraConfig read_adapter_config(const std::string& dir, std::string* base) {
  try {
    return adapter_config_json(dir, base);
  } catch (const nlohmann::json::exception& e) {  // a key of another type than peft writes
    throw InputError(dir + "/adapter_config.json: " + e.what());
  }
}


namespace {

// The tensors of `f` (the file at `path`) into m's attached adapters, which they must match one to one.
void copy_adapter_weights(model::TransformerImpl& m, model::SafetensorsFile& f, const std::string& path) {
  std::map<std::string, torch::Tensor> live;
  for (auto& [name, t] : lora_tensors(m)) live[kPrefix + name] = t;
  for (const auto& info : f.header().tensors)
    if (!live.count(info.name)) throw InputError(path + ": tensor " + info.name + " is not an adapter of this model");
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : live) {
    if (!f.contains(name)) throw InputError(path + ": missing " + name);
    auto v = f.get(name);
    if (v.sizes() != t.sizes())
      throw InputError(path + ": " + name + " has shape " + c10::str(v.sizes()) + ", the model's adapter " +
                       c10::str(t.sizes()) + " (rank " + std::to_string(name.find(".lora_A.") != std::string::npos ? t.size(0) : t.size(1)) +
                       ", the r of adapter_config.json)");
    t.copy_(v.to(t.scalar_type()));
  }
}

}  // namespace

void load_peft_adapter(model::TransformerImpl& m, const std::string& dir) {
  // The modules the file holds adapters for: peft on transformers 5 adapts a dense layer's or shared expert's
  // gate_proj without the routed experts' of the same name (their stacked weights take target_parameters).
  std::set<std::string> modules;
  const auto path = dir + "/adapter_model.safetensors";
  const auto file = model::SafetensorsFile::open(path);
  for (const auto& info : file->header().tensors)
    if (const auto at = info.name.rfind(".lora_"); info.name.rfind(kPrefix, 0) == 0 && at != std::string::npos)
      modules.insert(info.name.substr(std::string(kPrefix).size(), at - std::string(kPrefix).size()));
  const auto config = read_adapter_config(dir);
  with_adapter_keys(dir + "/adapter_config.json", [&] { return add_lora(m, config, &modules); });
  copy_adapter_weights(m, *file, path);
}

void load_adapter_weights(model::TransformerImpl& m, const std::string& dir) {
  const auto path = dir + "/adapter_model.safetensors";
  copy_adapter_weights(m, *model::SafetensorsFile::open(path), path);
}

model::Transformer load_merged(const std::string& adapter_dir) {
  std::string base;
  read_adapter_config(adapter_dir, &base);
  if (is_adapter_dir(base)) throw InputError(adapter_dir + ": its base " + base + " is itself an adapter");
  auto m = model::load_hf_dir(base, torch::kCPU);
  load_peft_adapter(*m, adapter_dir);
  merge_lora(*m);
  return m;
}

}  // namespace distill::student
