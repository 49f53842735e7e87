// cli/cmd_pretrain.cpp: `distill pretrain --config configs/demo-teacher.toml`: flags -> train::PretrainConfig.
#include <iostream>

#include "cli/command.h"
#include "cli/common.h"
#include "common/interrupt.h"
#include "cli/train_watch.h"
#include "distill/pretrain.h"

namespace distill::cli {

void register_pretrain(CLI::App& root, Registry& reg) {
  auto a = std::make_shared<train::PretrainConfig>();
  auto db = std::make_shared<std::string>();
  auto log_every = std::make_shared<std::int64_t>(10);
  auto& m = a->model;
  m.model_type = "deepseek_v3";
  m.hidden_size = 128;
  m.num_hidden_layers = 4;
  m.num_attention_heads = 4;
  m.num_key_value_heads = 4;
  m.intermediate_size = 256;
  m.kv_lora_rank = 32;
  m.qk_nope_head_dim = 16;
  m.qk_rope_head_dim = 16;
  m.v_head_dim = 32;
  m.n_routed_experts = 8;
  m.num_experts_per_tok = 2;
  m.n_shared_experts = 1;
  m.moe_intermediate_size = 128;
  m.first_k_dense_replace = 1;
  m.scoring_func = "sigmoid";
  m.norm_topk_prob = true;
  CLI::App* c = root.add_subcommand("pretrain", torch_command_about("pretrain"));
  c->add_option("--db", *db, "store file (problems with gold solutions)");
  c->add_option("--out", a->out, "output model directory (HF format, with tokenizer.model)");
  c->add_option("--tokenizer", a->tokenizer_dir, "tokenizer directory (from `distill tokenizer train`)");
  c->add_option("--split", a->split, "training split");
  c->add_option("--eval-split", a->eval_split, "held-out split for the accuracy printout");
  c->add_option("--log-every", *log_every, "when stderr is not a terminal, a log line every N steps (0: none)");
  c->add_option("--steps", a->steps, "optimizer steps");
  c->add_option("--batch-size", a->batch_size, "sequences per step");
  c->add_option("--lr", a->lr, "peak learning rate");
  c->add_option("--min-lr-ratio", a->min_lr_ratio, "final lr as a fraction of the peak (cosine floor)");
  c->add_option("--warmup", a->warmup, "linear warmup steps");
  c->add_option("--weight-decay", a->weight_decay, "AdamW decoupled weight decay (not on norms and biases)");
  c->add_option("--grad-clip", a->grad_clip, "global gradient-norm clip (0: off)");
  c->add_option("--aux-coef", a->aux_coef, "Switch load-balancing loss weight");
  c->add_option("--bias-update-rate", a->bias_update_rate, "DeepSeek-V3 aux-loss-free bias step");
  c->add_option("--eval-every", a->eval_every, "greedy held-out accuracy every N steps (0: at the end only)");
  c->add_option("--eval-n", a->eval_n, "held-out problems in that check");
  c->add_option("--seed", a->seed, "seed for init and data order");
  c->add_option("--device", a->device, "cpu or cuda");
  c->add_option("--precision", a->precision, "auto (bf16 autocast on CUDA, fp32 on the CPU) | bf16 (CUDA) | fp32");
  c->add_option("--threads", a->threads, "intra-op threads (0: default)");
  c->add_option("--save-every", a->save_every, "checkpoint every N steps into --out/checkpoint-N/ (0: none)");
  c->add_option("--stop-after", a->stop_after, "end this run after N steps, checkpointed; continue with --resume");
  c->add_flag("--resume", a->resume, "continue from the newest checkpoint in --out");
  c->add_option("--model-type", m.model_type, "llama | qwen2 | mixtral | qwen2_moe | deepseek_v3");
  c->add_option("--hidden-size", m.hidden_size, "d_model");
  c->add_option("--layers", m.num_hidden_layers, "decoder layers");
  c->add_option("--heads", m.num_attention_heads, "attention heads");
  c->add_option("--kv-heads", m.num_key_value_heads, "key/value heads (GQA)");
  c->add_option("--intermediate-size", m.intermediate_size, "dense FFN width");
  c->add_option("--q-lora-rank", m.q_lora_rank, "MLA query compression rank (0: plain q_proj)");
  c->add_option("--kv-lora-rank", m.kv_lora_rank, "MLA key/value compression rank (0: no MLA)");
  c->add_option("--qk-nope-head-dim", m.qk_nope_head_dim, "MLA non-rotary query/key dims per head");
  c->add_option("--qk-rope-head-dim", m.qk_rope_head_dim, "MLA rotary dims per head");
  c->add_option("--v-head-dim", m.v_head_dim, "MLA value dims per head");
  c->add_option("--experts", m.n_routed_experts, "routed experts (0: dense)");
  c->add_option("--experts-per-tok", m.num_experts_per_tok, "top-k");
  c->add_option("--shared-experts", m.n_shared_experts, "shared experts");
  c->add_option("--moe-intermediate-size", m.moe_intermediate_size, "expert FFN width");
  c->add_option("--first-k-dense", m.first_k_dense_replace, "leading dense layers");
  c->add_option("--n-group", m.n_group, "expert groups for group-limited routing");
  c->add_option("--topk-group", m.topk_group, "groups a token may use");
  c->add_option("--routed-scaling", m.routed_scaling_factor, "routed output scale");
  c->add_option("--scoring", m.scoring_func, "softmax or sigmoid");
  c->add_option("--rope-theta", m.rope_theta, "RoPE base");
  c->add_option("--tie-embeddings", m.tie_word_embeddings, "share input and output embeddings");
  reg.add(c, [c, a, db, log_every] {
    require(*c, "--db");
    require(*c, "--out");
    require(*c, "--tokenizer");
    const std::string config = resolved_config_toml(*c);
    print_config(config);
    auto store = dataset::Store::open(*db, dataset::OpenMode::read);
    TrainWatch watch("pretrain", *log_every);
    auto rep = train::run_pretrain(
        *store, *a, config, [&](const train::TrainStep& s) { watch.step(s); },
        [&](const std::string& line) {
          watch.interject();
          std::cout << line << std::endl;
        });
    watch.finish();
    if (rep.already_finished) {
      std::cout << "pretrain: " << a->out << " holds this run, finished; nothing to do\n";
      return;
    }
    std::cout << "pretrain: steps " << rep.first_step << "-" << rep.last_step << ", loss " << fmt_fixed(rep.final_loss, 4)
              << ", " << fmt_fixed(rep.seconds, 0) << " s, " << fmt_fixed(rep.tokens_per_s, 0) << " tok/s -> "
              << (rep.finished ? a->out
                               : a->out + "/checkpoint-" + std::to_string(rep.last_step) + " (continue with --resume)")
              << "\n";
    for (auto& [d, cnt] : rep.eval_by_difficulty)
      std::cout << "  held-out greedy accuracy, difficulty " << d << ": " << cnt.first << "/" << cnt.second << " ("
                << fmt_fixed(100.0 * cnt.first / std::max(1, cnt.second), 1) << "%)\n";
    if (!rep.interrupted_by.empty())
      throw Interrupted("pretrain: stopped by " + rep.interrupted_by + " after step " + std::to_string(rep.last_step) +
                        "; " + a->out + "/checkpoint-" + std::to_string(rep.last_step) + " holds it: rerun with --resume");
  });
}

}  // namespace distill::cli
