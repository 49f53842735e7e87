// cli/cmd_plan.cpp: `distill plan --student PRESET|DIR [options of train]`: the memory a training run will need
// (distill/memory_plan.h), part by part, whether it fits the device, and what to change when it does not.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "common/config_text.h"
#include "common/errors.h"
#include "common/memory.h"
#include "distill/memory_plan.h"
#include "student/presets.h"

namespace distill::cli {

namespace {

struct PlanArgs {
  train::PlanInput in;
  std::string student, lora_targets, precision = "auto", device = "cpu";
  double gpu_mem_gib = 80;
  std::int64_t gpus = 1;
  bool json = false;
};

model::ModelConfig student_config(const std::string& student) {
  if (auto c = student::student_config(student)) return *c;
  throw InputError("--student '" + student + "' is neither a preset (" + student::preset_names() +
                   ") nor a model directory with a config.json");
}

// What would make a run fit that does not, in the order a person would try them.
std::vector<std::string> advice(const train::PlanInput& in, const train::MemoryPlan& m, std::int64_t capacity) {
  std::vector<std::string> out;
  auto with = [&](auto edit) {
    auto other = in;
    edit(other);
    return train::plan_memory(other).peak;
  };
  if (in.lora_rank == 0)
    out.push_back("--lora-rank 16: " + train::bytes_text(with([](auto& i) { i.lora_rank = 16; })));
  if (!in.checkpoint_activations)
    out.push_back("--checkpoint-activations: " + train::bytes_text(with([](auto& i) { i.checkpoint_activations = true; })));
  if (in.batch_tokens > in.seq_len)
    out.push_back("--batch-tokens " + std::to_string(in.seq_len) + " (one row; --grad-accum keeps the step's size): " +
                  train::bytes_text(with([](auto& i) { i.batch_tokens = i.seq_len; })));
  if (in.vocab_chunk == 0 || in.vocab_chunk > 8192)
    out.push_back("--vocab-chunk 8192: " + train::bytes_text(with([](auto& i) { i.vocab_chunk = 8192; })));
  const auto states = m.weights + m.gradients + m.optimizer;
  if (capacity > 0) {
    const auto half = std::max<std::int64_t>(1, capacity / 2);  // half of each device for its share of the states
    const auto gpus = (states + half - 1) / half;
    out.push_back("more GPUs: weights, gradients and optimizer (" + train::bytes_text(states) + ") sharded over about " +
                  std::to_string(gpus) + " devices (FSDP; distill does not shard yet)");
  }
  return out;
}

void print_plan(const PlanArgs& a, const train::MemoryPlan& m, std::int64_t capacity, const std::string& where,
                const std::vector<std::string>& tips) {
  using train::bytes_text;
  const auto acts = a.in.checkpoint_activations ? m.activations_checkpointed : m.activations;
  std::cout << "plan: " << a.student << ", " << m.params << " parameters (" << m.trainable << " trained"
            << (a.in.lora_rank > 0 ? ", LoRA rank " + std::to_string(a.in.lora_rank) : std::string()) << "), "
            << a.in.batch_tokens << " tokens per micro-batch of rows of " << a.in.seq_len << ", "
            << (a.in.bf16_autocast ? "bf16 autocast" : "fp32") << "\n";
  auto row = [](const std::string& k, std::int64_t v, const std::string& note = "") {
    std::printf("  %-34s %12s%s\n", k.c_str(), bytes_text(v).c_str(), note.c_str());
  };
  row("weights", m.weights);
  row("gradients", m.gradients);
  row("optimizer (AdamW moments)", m.optimizer);
  row(std::string("activations") + (a.in.checkpoint_activations ? " (checkpointed)" : ""), acts,
      a.in.checkpoint_activations ? "   (without checkpointing: " + bytes_text(m.activations) + ")"
                                  : "   (with --checkpoint-activations: " + bytes_text(m.activations_checkpointed) + ")");
  row("logits and loss", m.logits, a.in.vocab_chunk > 0 ? "" : "   (all of the vocabulary at once; --vocab-chunk slices it)");
  row("workspace", m.workspace);
  row("peak", m.peak);
  if (capacity <= 0) return;
  std::cout << (m.peak <= capacity ? "fits: " : "does not fit: ") << bytes_text(m.peak) << " of " << bytes_text(capacity)
            << " (" << where << ")\n";
  if (m.peak > capacity) {
    std::cout << "what each change alone gives:\n";
    for (const auto& t : tips) std::cout << "  " << t << "\n";
  }
}

}  // namespace

void register_plan(CLI::App& root, Registry& reg) {
  auto a = std::make_shared<PlanArgs>();
  CLI::App* c = root.add_subcommand("plan", torch_command_about("plan"));
  c->add_option("--student", a->student, "a preset (" + student::preset_names() + ") or an HF model directory");
  c->add_option("--seq-len", a->in.seq_len, "packed row length (train --max-seq-len)");
  c->add_option("--batch-tokens", a->in.batch_tokens, "tokens per micro-batch");
  c->add_option("--vocab-chunk", a->in.vocab_chunk, "cross-entropy over slices of this many vocabulary rows (0: all)");
  c->add_option("--lora-rank", a->in.lora_rank, "LoRA rank (0: full fine-tuning)");
  c->add_option("--lora-targets", a->lora_targets, "LoRA projections, comma-separated (default: all)");
  c->add_option("--precision", a->precision, "auto (bf16 autocast on CUDA, fp32 on the CPU), bf16 or fp32");
  c->add_flag("--checkpoint-activations", a->in.checkpoint_activations, "recompute each layer in backward");
  c->add_option("--grad-accum", a->in.grad_accum, "micro-batches per optimizer step (gradients held between them)");
  c->add_flag("--average-last", a->in.average_last, "train --average-last: a running mean of the weights");
  c->add_option("--device", a->device, "cpu (this machine's RAM) or cuda (--gpu-mem)");
  c->add_option("--gpu-mem", a->gpu_mem_gib, "memory of one GPU in GiB (default 80)");
  c->add_option("--gpus", a->gpus, "GPUs (each holds a whole replica: distill does not shard yet)");
  c->add_flag("--json", a->json, "print JSON");
  reg.add(c, [c, a] {
    require(*c, "--student");
    if (a->in.seq_len < 8) throw InputError("--seq-len " + std::to_string(a->in.seq_len) + ": expected >= 8");
    if (a->in.batch_tokens < a->in.seq_len) throw InputError("--batch-tokens: expected >= --seq-len");
    if (a->in.lora_rank < 0) throw InputError("--lora-rank: expected >= 0");
    if (a->in.grad_accum < 1) throw InputError("--grad-accum: expected >= 1");
    if (a->gpus < 1 || !(a->gpu_mem_gib > 0)) throw InputError("--gpus and --gpu-mem: expected positive numbers");
    const bool cuda = a->device.rfind("cuda", 0) == 0;
    if (!cuda && a->device != "cpu") throw InputError("--device '" + a->device + "': expected cpu or cuda");
    if (a->precision != "auto" && a->precision != "bf16" && a->precision != "fp32")
      throw InputError("--precision '" + a->precision + "': expected auto, bf16 or fp32");
    if (a->precision == "bf16" && !cuda) throw InputError("--precision bf16: bf16 autocast is for CUDA");
    a->in.bf16_autocast = cuda && a->precision != "fp32";
    a->in.model = student_config(a->student);
    if (!a->lora_targets.empty()) a->in.lora_targets = split_list(a->lora_targets);
    a->in.batch_tokens = a->in.batch_tokens / a->in.seq_len * a->in.seq_len;  // whole rows, as train packs them
    const auto m = train::plan_memory(a->in);
    const auto capacity = cuda ? std::int64_t(a->gpu_mem_gib * double(1ll << 30)) : total_ram_bytes();
    const std::string where = cuda ? "one GPU's memory, --gpu-mem" : "this machine's RAM";
    const auto tips = m.peak > capacity ? advice(a->in, m, capacity) : std::vector<std::string>{};
    if (!a->json) return print_plan(*a, m, capacity, where, tips);
    std::cout << nlohmann::json{{"student", a->student}, {"params", m.params}, {"trainable", m.trainable},
                                {"weights", m.weights}, {"gradients", m.gradients}, {"optimizer", m.optimizer},
                                {"activations", m.activations}, {"activations_checkpointed", m.activations_checkpointed},
                                {"logits", m.logits}, {"workspace", m.workspace}, {"peak", m.peak},
                                {"capacity", capacity}, {"fits", m.peak <= capacity}, {"advice", tips}}
                     .dump(2)
              << "\n";
  });
}

}  // namespace distill::cli
