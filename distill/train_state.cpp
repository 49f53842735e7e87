// distill/train_state.cpp: see train_state.h.
#include "distill/train_state.h"

#include <torch/torch.h>

#include <fcntl.h>
#include <stdio.h>

#include <filesystem>
#include <set>
#include <utility>
#include <vector>

#include "common/errors.h"
#include "common/fs.h"
#include "model/weights_io.h"

namespace distill::train {

namespace fs = std::filesystem;
using model::SafetensorsFile;
using model::save_safetensors;

NamedTensors named_parameters(const torch::nn::Module& m) {
  NamedTensors out;
  for (const auto& p : m.named_parameters()) out.emplace_back(p.key(), p.value());
  return out;
}

void save_optimizer(torch::optim::AdamW& opt, const NamedTensors& params, const std::string& path) {
  std::vector<std::pair<std::string, torch::Tensor>> t;
  for (const auto& [name, value] : params) {
    auto it = opt.state().find(value.unsafeGetTensorImpl());
    if (it == opt.state().end()) continue;
    auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
    t.emplace_back(name + ".exp_avg", st.exp_avg());
    t.emplace_back(name + ".exp_avg_sq", st.exp_avg_sq());
    t.emplace_back(name + ".step", torch::tensor(st.step(), torch::kInt64));
  }
  save_safetensors(path, t);
}

void save_optimizer(torch::optim::AdamW& opt, const torch::nn::Module& m, const std::string& path) {
  save_optimizer(opt, named_parameters(m), path);
}

void load_optimizer(torch::optim::AdamW& opt, const torch::nn::Module& m, const std::string& path, std::int64_t step) {
  load_optimizer(opt, named_parameters(m), path, step);
}

void load_optimizer(torch::optim::AdamW& opt, const NamedTensors& params, const std::string& path, std::int64_t step) {
  auto f = SafetensorsFile::open(path);
  std::set<std::string> used;
  for (const auto& [key, value] : params) {
    const auto avg = key + ".exp_avg", sq = key + ".exp_avg_sq";
    if (!f->contains(avg) && !f->contains(sq)) continue;
    auto moment = [&](const std::string& name) {
      if (!f->contains(name)) throw InputError(path + ": no tensor " + name + " to go with the other moment");
      auto t = f->get(name);
      if (t.sizes() != value.sizes())
        throw InputError(path + ": " + name + " has shape " + c10::str(t.sizes()) + ", the parameter has " +
                         c10::str(value.sizes()));
      used.insert(name);
      return t.to(value.options(), /*non_blocking=*/false, /*copy=*/true);
    };
    // Its own step count; files from before it was stored: the checkpoint's step, right for dense students.
    std::int64_t own = step;
    if (const auto sname = key + ".step"; f->contains(sname)) {
      auto t = f->get(sname);
      if (t.numel() != 1 || t.scalar_type() != torch::kInt64 || t.item<std::int64_t>() < 0 || t.item<std::int64_t>() > step)
        throw InputError(path + ": " + sname + " must be one int64 in [0, " + std::to_string(step) + "]");
      own = t.item<std::int64_t>();
      used.insert(sname);
    }
    auto st = std::make_unique<torch::optim::AdamWParamState>();
    st->step(own);
    st->exp_avg(moment(avg));
    st->exp_avg_sq(moment(sq));
    opt.state()[value.unsafeGetTensorImpl()] = std::move(st);
  }
  for (const auto& t : f->header().tensors)
    if (!used.count(t.name))
      throw InputError(path + ": tensor " + t.name + " is not a moment or step count of any parameter of this model");
  if (used.empty()) throw InputError(path + ": holds no optimizer moments (*.exp_avg, *.exp_avg_sq)");
}


std::int64_t newest_checkpoint(const std::string& out) {
  std::int64_t best = 0;
  if (!fs::is_directory(out)) return 0;
  for (const auto& e : fs::directory_iterator(out)) {
    const auto name = e.path().filename().string();
    const auto digits = name.size() > 11 && name.find_first_not_of("0123456789", 11) == std::string::npos;
    if (name.rfind("checkpoint-", 0) == 0 && digits && fs::exists(e.path() / "trainer_state.json")) {  // not .tmp/.old
      try {
        best = std::max<std::int64_t>(best, std::stoll(name.substr(11)));
      } catch (const std::exception&) {
      }
    }
  }
  return best;
}

void refuse_earlier_checkpoints(const std::string& out) {
  if (const auto n = newest_checkpoint(out))
    throw InputError("--out " + out + " holds checkpoint-" + std::to_string(n) + "/ of an earlier run: continue it with "
                     "--resume, or train into another directory (or remove that one)");
}

void write_checkpoint(const std::string& out, std::int64_t step, const std::function<void(const std::string&)>& fill) {
  const auto dir = out + "/checkpoint-" + std::to_string(step), tmp = dir + ".tmp", old = dir + ".old";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  fill(tmp);
  sync_directory(tmp);  // its files' entries are durable before the name points at them
  fs::remove_all(old);
  if (!fs::exists(dir)) {
    fs::rename(tmp, dir);
  } else if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(tmp);  // one atomic swap: checkpoint-N is the old copy or the new one at every instant
  } else {  // a filesystem without RENAME_EXCHANGE: a short window where only the .old copy exists
    fs::rename(dir, old);
    fs::rename(tmp, dir);
    fs::remove_all(old);
  }
  sync_directory(out);  // the rename itself survives a power cut
}

nlohmann::json read_trainer_state(const std::string& dir, std::int64_t step, const nlohmann::json& schedule) {
  const auto state_file = dir + "/trainer_state.json";
  nlohmann::json state;
  try {
    state = nlohmann::json::parse(read_file(state_file));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(state_file + ": not valid JSON (" + without_library_tag(e.what()) + ")");
  }
  if (!state.is_object() || !state.value("step", nlohmann::json()).is_number_integer() ||
      !state.value("tokens", nlohmann::json()).is_number_integer())
    throw InputError(state_file + ": expected an object with integer \"step\" and \"tokens\"");
  if (state["step"].get<std::int64_t>() != step)
    throw InputError(state_file + ": records step " + state["step"].dump() + " but sits in checkpoint-" +
                     std::to_string(step) + "/");
  for (const auto& [key, want] : schedule.items()) {
    auto have = state.contains("schedule") ? state["schedule"].value(key, nlohmann::json()) : state.value(key, nlohmann::json());
    if (key == "precision" && have.is_null()) continue;  // recorded since the CUDA audit; older: either
    if (key == "position_stretch" && have.is_null() && want == 0) continue;  // older checkpoints: none
    if (key == "average_last" && have.is_null() && want == 0) continue;  // older checkpoints: no averaging
    if (key == "train_examples_sha256" && have.is_null()) continue;  // older checkpoints: only the example count
    if (key == "lora" && have.is_null() && want.is_null()) continue;  // no LoRA (older checkpoints: no such key)
    if (have.is_null()) throw InputError(state_file + " does not record " + key + " (an older checkpoint); start afresh");
    if (have != want)
      throw InputError(state_file + ": the checkpoint was made with " + key + " = " + have.dump() + ", this run has " +
                       want.dump() + "; resume with the same settings and samples" +
                       (key == "precision" ? std::string(" (bf16-autocast: CUDA with train --precision auto or bf16; "
                                                         "fp32: the CPU, or train --precision fp32)")
                                           : std::string()));
  }
  return state;
}

}  // namespace distill::train
