// model/hf_checkpoint.cpp: see hf_checkpoint.h.
#include "model/hf_checkpoint.h"

#include <torch/torch.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "common/errors.h"
#include "common/fs.h"

namespace distill::model {

void load_state(TransformerImpl& model, const SafetensorsFile& file, const std::string& prefix) {
  torch::NoGradGuard g;
  std::set<std::string> used;
  for (auto& [name, dst] : model.state_dict()) {
    const std::string key = prefix + name;
    if (!file.contains(key)) throw InputError(file.path() + ": missing tensor '" + key + "' required by the model");
    auto src = file.get(key);
    if (src.sizes() != dst.sizes()) {
      std::ostringstream os;
      os << file.path() << ": tensor '" << key << "' has shape " << src.sizes() << ", the model expects " << dst.sizes();
      throw InputError(os.str());
    }
    dst.copy_(src.to(dst.scalar_type()));
    used.insert(key);
  }
  for (const auto& t : file.header().tensors)
    if (t.name.rfind(prefix, 0) == 0 && !used.count(t.name))
      throw InputError(file.path() + ": unexpected tensor '" + t.name + "' (not part of this model's config)");
}

void save_hf_dir(TransformerImpl& model, const std::string& dir, const std::string& tokenizer_dir) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& [n, t] : model.state_dict()) tensors.emplace_back(n, t.detach().to(torch::kFloat32));
  save_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  write_file_atomic((fs::path(dir) / "config.json").string(), model.config().to_hf_json());
  if (!tokenizer_dir.empty()) {
    const auto src = fs::path(tokenizer_dir) / "tokenizer.model";
    write_file_atomic((fs::path(dir) / "tokenizer.model").string(), read_file(src.string()));
  }
}

Transformer load_hf_dir(const std::string& dir, const torch::Device& device) {
  namespace fs = std::filesystem;
  const auto cfg_path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(cfg_path)) throw InputError(dir + ": not a model directory (no config.json)");
  auto cfg = ModelConfig::from_hf_json(read_file(cfg_path), cfg_path);
  const auto w_path = (fs::path(dir) / "model.safetensors").string();
  if (!fs::exists(w_path)) {
    if (fs::exists(fs::path(dir) / "model.safetensors.index.json"))
      throw InputError(dir + ": sharded checkpoints are not supported yet (model.safetensors.index.json)");
    throw InputError(dir + ": no model.safetensors");
  }
  Transformer m(cfg);
  load_state(*m, *SafetensorsFile::open(w_path));
  m->to(device);
  return m;
}

}  // namespace distill::model
