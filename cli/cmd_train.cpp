// cli/cmd_train.cpp: `distill train --db F --student PRESET|DIR --out DIR`: SFT of a student on curated samples
// (flags -> train::SftConfig), with a progress bar (loss, tok/s, ETA) and a JSON summary on request.
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "cli/common.h"
#include "common/interrupt.h"
#include "common/errors.h"
#include "cli/train_watch.h"
#include "distill/sft.h"
#include "common/config_text.h"
#include "student/lora.h"
#include "student/presets.h"

namespace distill::cli {

namespace {
struct Args {
  train::SftConfig cfg;
  std::string db, status = "kept";
  std::int64_t log_every = 10;
  std::string lora_targets;
  bool json = false;
};
}  // namespace

void register_train(CLI::App& root, Registry& reg) {
  auto a = std::make_shared<Args>();
  auto& c = a->cfg;
  CLI::App* t = root.add_subcommand("train", torch_command_about("train"));
  t->add_option("--db", a->db, "store file");
  t->add_option("--student", c.student, "a preset (" + student::preset_names() + ") or an HF model directory");
  t->add_option("--out", c.out, "output directory (final HF model; checkpoint-N/ beside it)");
  t->add_option("--tokenizer", c.tokenizer_dir,
                "tokenizer directory (default: the student directory's own, else the teacher's that made the samples)");
  t->add_option("--prompt-format", c.prompt_format,
                "auto (the tokenizer directory's chat template if it has one, else r1), r1 or chat_template");
  t->add_option("--status", a->status, "statuses to train on, comma-separated (default: kept)");
  t->add_option("--split", c.split, "only samples of problems in this split");
  t->add_option("--log-every", a->log_every, "when stderr is not a terminal, a log line every N steps (0: none)");
  t->add_option("--steps", c.steps, "optimizer steps");
  t->add_option("--max-seq-len", c.max_seq_len, "packed row length in tokens");
  t->add_option("--batch-tokens", c.batch_tokens, "tokens per micro-batch (rows = batch-tokens / max-seq-len)");
  t->add_option("--grad-accum", c.grad_accum, "micro-batches per optimizer step");
  t->add_option("--lr", c.lr, "peak learning rate");
  t->add_option("--min-lr-ratio", c.min_lr_ratio, "final lr as a fraction of the peak (cosine floor)");
  t->add_option("--warmup", c.warmup, "linear warmup steps");
  t->add_option("--weight-decay", c.weight_decay, "AdamW decoupled weight decay (not on norms and biases)");
  t->add_option("--grad-clip", c.grad_clip, "global gradient-norm clip (0: off)");
  t->add_option("--val-fraction", c.val_fraction, "share of problems held out for validation loss");
  t->add_option("--eval-every", c.eval_every, "validation loss every N steps (and at the end)");
  t->add_option("--save-every", c.save_every, "checkpoint every N steps (0: only the final model)");
  t->add_option("--stop-after", c.stop_after, "end this run after N steps, checkpointed; continue with --resume");
  t->add_flag("--resume", c.resume, "continue from the newest checkpoint in --out");
  t->add_option("--vocab-chunk", c.vocab_chunk, "cross-entropy over vocabulary slices of this size (0: whole)");
  t->add_option("--lora-rank", c.lora.rank, "LoRA: train rank-R adapters on a frozen --student DIR (PEFT format out)");
  t->add_option("--lora-alpha", c.lora.alpha, "LoRA scale alpha / rank (default: alpha = rank)");
  t->add_option("--lora-dropout", c.lora.dropout, "LoRA dropout on the adapters' input");
  t->add_option("--lora-targets", a->lora_targets,
                "LoRA: projections by HF/PEFT module name, comma-separated (default: every projection of the layers)");
  t->add_flag("--force", c.force, "train even when the memory plan says the run cannot fit this machine's RAM");
  t->add_flag("--checkpoint-activations", c.checkpoint_activations, "recompute each layer in backward (less memory, ~1/3 more compute)");
  t->add_option("--position-stretch", c.position_stretch,
                 "randomized prompt positions for length generalisation: each prompt token steps 2 with a rate drawn "
                 "from [0, P] per example (0: off)");
  t->add_option("--average-last", c.average_last,
                 "save the mean of the weights after each of the last N steps (tail averaging; 0: the last step's)");
  t->add_option("--target", c.target, "cot (the teacher's reasoning and answer) | answer (answer-only baseline)");
  t->add_option("--kd", c.kd, "logit distillation from the stored teacher top-k: fkl | rkl | jsd (default: off)");
  t->add_option("--kd-weight", c.kd_weight, "loss = CE + weight * KD");
  t->add_option("--seed", c.seed, "seed for init and data order");
  t->add_option("--device", c.device, "cpu or cuda");
  t->add_option("--precision", c.precision, "auto (bf16 autocast on CUDA, fp32 on the CPU) | bf16 (CUDA) | fp32");
  t->add_option("--threads", c.threads, "intra-op threads (0: default)");
  t->add_flag("--json", a->json, "print the summary as JSON");
  reg.add(t, [t, a] {
    require(*t, "--db");
    require(*t, "--out");
    auto& c = a->cfg;
    if (!a->lora_targets.empty()) c.lora.targets = split_list(a->lora_targets);
    if (c.lora.rank == 0 && (t->count("--lora-alpha") || t->count("--lora-dropout") || t->count("--lora-targets")))
      throw InputError("--lora-alpha, --lora-dropout and --lora-targets need --lora-rank R");
    if (t->count("--lora-rank")) student::check_lora_config(c.lora);
    c.statuses.clear();
    std::stringstream ss(a->status);
    for (std::string item; std::getline(ss, item, ',');) {
      auto st = dataset::parse_status(item);
      if (!st) throw InputError("--status '" + item + "' is not pending, kept or rejected");
      c.statuses.push_back(*st);
    }
    const std::string config = resolved_config_toml(*t);
    print_config(config);
    auto store = dataset::Store::open(a->db, dataset::OpenMode::read);
    TrainWatch watch("train", a->log_every);
    auto rep = train::run_sft(
        *store, c, config, [&](const train::TrainStep& s) { watch.step(s); },
        [&](const std::string& line) {
          watch.interject();
          std::cerr << line << std::endl;
        });
    watch.finish();
    if (rep.already_finished && !a->json) {
      std::cout << "train: " << c.out << " holds this run, finished; nothing to do (to train that model further, "
                << "start a new run from it: --student " << c.out << " --out NEW_DIR)\n";
      return;
    }
    if (a->json) {
      std::cout << nlohmann::json{{"run_id", rep.run_id},       {"n_params", rep.n_params},
                                  {"train_examples", rep.train_examples}, {"val_examples", rep.val_examples},
                                  {"first_step", rep.first_step}, {"last_step", rep.last_step},
                                  {"final_loss", rep.final_loss}, {"val_loss", rep.val_loss},
                                  {"seconds", rep.seconds},     {"tokens_per_s", rep.tokens_per_s},
                                  {"finished", rep.finished},   {"out", c.out},
                                  {"kd_examples", rep.kd_examples}, {"final_kd", rep.final_kd},
                                  {"truncated_examples", rep.truncated_examples},
                                  {"averaged_steps", rep.averaged_steps},
                                  {"interrupted_by", rep.interrupted_by},
                                  {"already_finished", rep.already_finished},
                                  {"planned_peak_bytes", rep.planned_peak_bytes},
                                  {"measured_peak_bytes", rep.peak_rss_bytes - rep.rss_before_model_bytes}}
                       .dump(2)
                << "\n";
    } else {
      std::cout << "train: steps " << rep.first_step << ".." << rep.last_step << ", loss " << fmt_fixed(rep.final_loss, 4)
                << (rep.val_loss >= 0 ? ", val loss " + fmt_fixed(rep.val_loss, 4) : "") << ", "
                << fmt_fixed(rep.seconds, 1) << " s, " << fmt_fixed(rep.tokens_per_s, 0) << " tok/s -> "
                << (rep.finished ? c.out : c.out + "/checkpoint-" + std::to_string(rep.last_step) + " (resume with --resume)")
                << "\n";
    }
    if (!rep.interrupted_by.empty())
      throw Interrupted("train: stopped by " + rep.interrupted_by + " after step " + std::to_string(rep.last_step) + "; " +
                        c.out + "/checkpoint-" + std::to_string(rep.last_step) + " holds it: rerun with --resume");
  });
}

}  // namespace distill::cli
