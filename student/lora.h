// student/lora.h: LoRA adapters on a model::Transformer, saved and read in the PEFT format. An adapted projection
// computes W x + (alpha / r) * B A dropout(x), A [r, in] and B [out, r] kept in fp32 (under bf16 autocast their
// products run in bf16, as the base's do; model/transformer.h, LinearImpl);
// the base weights are frozen. Files, as peft's save_pretrained writes them: adapter_config.json (peft_type LORA,
// r, lora_alpha, lora_dropout, target_modules, base_model_name_or_path, ...) and adapter_model.safetensors with
// "base_model.model.<module>.lora_A.weight" / ".lora_B.weight" (<module> the HF name, e.g.
// model.layers.0.self_attn.q_proj). A target is a last name and covers every projection of that name, routed
// experts' included (model.layers.0.mlp.experts.3.gate_proj, Mixtral's block_sparse_moe.experts.3.w1), as the
// checkpoint names them; peft folds such per-expert adapters into transformers' stacked experts when it loads them.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "model/transformer.h"

namespace distill::student {

struct LoraConfig {
  std::int64_t rank = 0;             // 0: no LoRA
  double alpha = 0;                  // 0: the rank (a scale of 1)
  double dropout = 0;
  std::vector<std::string> targets;  // module names (q_proj, ...); empty: every projection of the decoder layers
  double scale() const { return (alpha > 0 ? alpha : double(rank)) / double(rank); }
};

// InputError naming the flag: rank >= 1, alpha >= 0, dropout in [0, 1).
void check_lora_config(const LoraConfig& c);

// Attaches an adapter to every projection (a Linear inside model.layers) whose last name is a target, on the
// weight's device: A drawn as PEFT draws it (kaiming-uniform, a = sqrt(5)) from torch's generator, B zero, so
// the output is unchanged. Freezes every parameter of the base. Returns the adapted modules' HF names, in order.
// InputError naming a target no projection has (listing those it has), or dropout on a routed expert (peft's
// stacked experts have none).
// `modules` (reading a file): attach only to these of the targeted modules, and allow dropout anywhere.
std::vector<std::string> add_lora(model::TransformerImpl& m, LoraConfig c, const std::set<std::string>* modules = nullptr);

// The adapters as PEFT names them, without the "base_model.model." prefix: "<module>.lora_A.weight", ... In
// module order, A before B. The tensors are the live ones (the optimizer trains these).
std::vector<std::pair<std::string, torch::Tensor>> lora_tensors(model::TransformerImpl& m);

// W += scale * B A for every adapter, which is then removed: the plain model that gives the same outputs.
void merge_lora(model::TransformerImpl& m);

// dir/adapter_config.json and dir/adapter_model.safetensors (fp32), each written atomically. `base` is recorded
// as base_model_name_or_path.
void save_peft_adapter(model::TransformerImpl& m, const LoraConfig& c, const std::string& base, const std::string& dir);

// Whether dir holds adapter_config.json (a PEFT adapter, not a model).
bool is_adapter_dir(const std::string& dir);

// The adapter_config.json of dir: a LORA config (InputError naming the file and key otherwise; options this
// reader does not implement, such as use_dora or rank_pattern, are refused by name). `base` gets
// base_model_name_or_path, resolved against dir when relative.
LoraConfig read_adapter_config(const std::string& dir, std::string* base = nullptr);

// Attaches the adapter of dir to m (add_lora with its config) and loads its weights.
void load_peft_adapter(model::TransformerImpl& m, const std::string& dir);
// Loads dir/adapter_model.safetensors into m's attached adapters: every tensor of the file must be one of them, in
// its shape, and every adapter must be in the file (InputError naming the tensor otherwise).
void load_adapter_weights(model::TransformerImpl& m, const std::string& dir);

// The model of an adapter directory: its base (an HF directory) with the adapter merged in, on the CPU.
model::Transformer load_merged(const std::string& adapter_dir);

}  // namespace distill::student
