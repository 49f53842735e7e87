// cli/cmd_export.cpp: `distill export`: flags -> student::ExportOptions -> export_model. With --db, the sampling
// generation_config.json recommends is the protocol of the model's newest finished eval in that store.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "common/errors.h"
#include "dataset/evals.h"
#include "dataset/samples.h"
#include "eval/protocol.h"
#include "model/hf_checkpoint.h"
#include "student/export.h"

namespace distill::cli {

namespace {

struct ExportArgs {
  student::ExportOptions o;
  std::string db, max_shard = "5GB";
  double temperature = -1, top_p = -1;
  bool json = false;
};

// "5GB", "500MB", "2.5GiB" or plain bytes.
std::int64_t parse_size(const std::string& s) {
  std::size_t end = 0;
  double v = 0;
  try {
    v = std::stod(s, &end);
  } catch (...) {
    end = 0;
  }
  const std::string unit = s.substr(end);
  static const std::pair<const char*, double> units[] = {{"", 1},       {"B", 1},      {"KB", 1e3},  {"MB", 1e6},
                                                         {"GB", 1e9},   {"KiB", 1024}, {"MiB", 1048576.0},
                                                         {"GiB", 1073741824.0}};
  if (end > 0 && v > 0)
    for (const auto& [u, f] : units)
      if (unit == u) return std::int64_t(v * f);
  throw InputError("--max-shard-size '" + s + "': expected a size such as 5GB, 500MB or 2GiB");
}

// The newest finished eval of the model in the store: its temperature and top-p (0 for greedy).
void sampling_from_store(ExportArgs& a) {
  auto store = dataset::Store::open(a.db, dataset::OpenMode::read);
  const auto sha = model::checkpoint_sha256(a.o.model_dir);
  const auto run = dataset::newest_finished_eval_run(*store, sha);
  if (!run) throw InputError("--db " + a.db + ": no finished eval of " + a.o.model_dir + " (same weights) to take "
                             "its sampling from; run `distill eval` or give --temperature and --top-p");
  const auto p = eval::protocol_of(dataset::run_config_toml(*store, run));
  if (!p.known) throw InputError("--db " + a.db + ": eval run " + std::to_string(run) + " does not record its protocol");
  if (a.o.temperature || a.o.top_p) return;  // flags win
  a.o.temperature = p.greedy ? 0.0 : p.temperature;
  if (!p.greedy) a.o.top_p = p.top_p;
}

}  // namespace

void register_export(CLI::App& root, Registry& reg) {
  auto a = std::make_shared<ExportArgs>();
  CLI::App* c = root.add_subcommand("export", torch_command_about("export"));
  c->add_option("--model", a->o.model_dir, "model directory (HF checkpoint or a distill student)");
  c->add_option("--format", a->o.format, "hf | gguf");
  c->add_option("--dtype", a->o.dtype, "hf: f32 (default), bf16, f16; gguf: f16 (default), bf16, f32, q8_0");
  c->add_option("--out", a->o.out, "hf: a folder; gguf: a .gguf file");
  c->add_flag("--force", a->o.force, "replace --out if it exists");
  c->add_flag("--merge-lora", a->o.merge_lora, "hf: --model is a LoRA adapter (train --lora-rank); write its base with it merged");
  c->add_option("--max-shard-size", a->max_shard, "hf: safetensors shards of at most this size (an index above one)");
  c->add_option("--temperature", a->temperature, "generation_config.json's recommended temperature (0: greedy)");
  c->add_option("--top-p", a->top_p, "generation_config.json's recommended top-p");
  c->add_option("--db", a->db, "take the recommended sampling from the model's newest eval in this store");
  c->add_flag("--json", a->json, "print JSON");
  reg.add(c, [c, a] {
    require(*c, "--model");
    require(*c, "--format");
    require(*c, "--out");
    auto& o = a->o;
    o.max_shard_bytes = parse_size(a->max_shard);
    if (c->count("--temperature")) {
      if (a->temperature < 0) throw InputError("--temperature must be >= 0");
      o.temperature = a->temperature;
    }
    if (c->count("--top-p")) {
      if (a->top_p <= 0 || a->top_p > 1) throw InputError("--top-p must be in (0, 1]");
      o.top_p = a->top_p;
    }
    if (!a->db.empty()) sampling_from_store(*a);
    const auto r = student::export_model(o, [](const std::string& line) { std::cerr << line << "\n"; });
    if (a->json) {
      std::cout << nlohmann::json{{"out", r.out},         {"format", o.format},   {"files", r.files},
                                  {"tensors", r.tensors}, {"bytes", r.bytes},     {"tokenizer", r.tokenizer},
                                  {"architecture", r.architecture}}
                       .dump(2)
                << "\n";
      return;
    }
    std::cout << "exported " << r.architecture << " to " << r.out << " (" << o.format << ", " << r.tensors
              << " tensors, " << fmt_fixed(double(r.bytes) / 1e6, 1) << " MB; tokenizer: " << r.tokenizer << ")\n";
  });
}

}  // namespace distill::cli
