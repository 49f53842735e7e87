// model/transformer.h: the one decoder-only transformer that serves teacher and student.
// Per layer: RMSNorm -> attention (GQA, or DeepSeek MLA) -> residual -> RMSNorm -> FFN (dense SwiGLU, or
// MoE with routed + shared experts) -> residual. Parameter names equal the HF state_dict keys of the
// config's model_type (tensor-name table in transformer.cpp), so loading a checkpoint is a lookup.
// Device-agnostic: every tensor follows the module's device; nothing here copies to the host except the
// per-expert token counts of grouped MoE dispatch.
//
// Shapes: B batch rows, T new tokens per row, S key length (cache), D hidden, H heads, K kv heads,
// E routed experts, k experts per token, N = B*T tokens, V vocab.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <optional>
#include <vector>

#include "model/config.h"

namespace distill::model {

// nn::Linear (same parameters, names and options) whose forward is gemm::linear: oneDNN for large fp32 products
// on the CPU, ATen's linear otherwise (model/cpu_gemm.h).
class LinearImpl : public torch::nn::LinearImpl {
 public:
  using torch::nn::LinearImpl::LinearImpl;
  torch::Tensor forward(const torch::Tensor& x);
  // A 16-bit copy of the weight for decode steps (model/cpu_gemv.h), when it is exact; reset() frees it.
  void prepare_decode_copy();
  torch::Tensor weight16;
  // A LoRA adapter (student/lora.h attaches one): forward adds lora_scale * B(A(dropout(x))), A [r, in] and
  // B [out, r]. Not registered as parameters, so the model's own names and checkpoints stay as they are.
  torch::Tensor lora_A, lora_B;
  double lora_scale = 0, lora_dropout = 0;
};
TORCH_MODULE(Linear);

// Preallocated K/V for every layer; row `slot` holds one sequence, index `position` its token.
struct KVCache {
  // per layer: [slots, K, max_len, head_dim] each; MLA: k only, [slots, 1, max_len, kv_lora_rank + qk_rope_head_dim]
  // (the normed latent and the rotated shared key; see MlaAttentionImpl::forward_latent)
  std::vector<torch::Tensor> k, v;
  std::int64_t max_len = 0;
  static KVCache allocate(const ModelConfig& c, std::int64_t slots, std::int64_t max_len,
                          const torch::TensorOptions& opts);
};

struct ForwardInput {
  torch::Tensor input_ids;    // [B, T] int64
  torch::Tensor positions;    // [B, T] int64; undefined: 0..T-1 in every row
  torch::Tensor segment_ids;  // [B, T] int64, optional: packed documents attend only within their segment
  KVCache* cache = nullptr;   // set: write K/V at (slot, position) and attend over the cache
  torch::Tensor slots;        // [B] int64 cache rows; undefined: 0..B-1
  std::int64_t kv_len = 0;    // with a cache: keys read per row (0: max position + 1, a host sync)
  std::int64_t slot_begin = -1;   // >= 0: slots == slot_begin..slot_begin+B-1, read as a view of the cache (no gather)
  bool want_aux_loss = false; // compute the load-balancing loss over all MoE layers
  bool hidden_only = false;   // return the final (normed) hidden states instead of logits (chunked losses)
  torch::Tensor logits_at;    // [B] int64, optional: logits only at this time index of each row -> [B, 1, V]
  // Training: keep only each layer's input; backward recomputes the layer (activation checkpointing, as
  // torch.utils.checkpoint does): memory for one layer's activations instead of all, one more forward of compute.
  bool checkpoint_layers = false;
};

struct ForwardOutput {
  torch::Tensor logits;    // [B, T, V] float (unless hidden_only)
  torch::Tensor hidden;    // [B, T, D] after the final norm (hidden_only)
  torch::Tensor aux_loss;  // scalar, when requested and the model has MoE layers
};

// What every layer needs besides its input; built once per forward.
struct LayerContext {
  torch::Tensor mask;                     // [B, 1, T, S] bool, true = may attend; made on first use (dense_mask)
  torch::Tensor cos, sin_rot;             // [B, 1, T, rope_dim]; sin_rot = [-sin, sin] halves (see apply_rope)
  bool causal = false;                    // mask is plain causal over T == S (attention may skip it)
  torch::Tensor doc_starts;               // [B, T] int64 CPU, packed rows only: the mask is keys doc_starts[i]..i
  torch::Tensor bias_heads;               // GQA decode without grad: [B*H, 1, S], made by the first layer
  KVCache* cache = nullptr;
  torch::Tensor slots;                    // [B]
  torch::Tensor positions;                // [B, T] int64, with a cache: the new tokens' positions
  torch::Tensor flat_index;               // [B*heads*T] (slot*heads + head)*max_len + position, for cache writes
  std::int64_t kv_len = 0;
  std::int64_t slot_begin = -1;
  std::int64_t layer = 0;
  std::vector<torch::Tensor>* router_logits = nullptr;  // MoE layers append [N, E]
  // The mask as an additive bias [B, T, 1, S] (0 or -inf; B is 1 for plain causal rows), made on first use and
  // shared by the layers.
  const torch::Tensor& additive_mask(torch::ScalarType dtype);
  // The bool mask, made by the forward unless the fused attention will read doc_starts instead (a dense [B, T, T]
  // mask of a long ragged row would cost more than its attention), else on first use.
  const torch::Tensor& dense_mask();
  torch::Tensor mask_positions, mask_segments;  // what dense_mask makes the mask from (segments may be undefined)

 private:
  torch::Tensor bias_;
};

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(std::int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;  // [dim]
  double eps;
};
TORCH_MODULE(RMSNorm);

// SwiGLU FFN: down(silu(gate(x)) * up(x)). The three projections take their names from the table.
class MLPImpl : public torch::nn::Module {
 public:
  MLPImpl(std::int64_t dim, std::int64_t hidden, const char* gate, const char* up, const char* down);
  torch::Tensor forward(const torch::Tensor& x);
  void prepare_inference();  // w_gate_up, used while gradients are off
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};  // [hidden, dim] x2, [dim, hidden]
  torch::Tensor w_gate_up;  // prepared: [gate; up] [2*hidden, dim]
};
TORCH_MODULE(MLP);

// Modules may keep fused copies of their weights for no-grad inference (prepare_inference): one matmul where
// the checkpoint has several, rotary rows pre-permuted. Those copies go stale when the weights change.
class AttentionBase : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x, LayerContext& ctx) = 0;  // [B,T,D] -> [B,T,D]
  virtual void prepare_inference() {}
  virtual void release_inference() {}
};

class FfnBase : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x, LayerContext& ctx) = 0;  // [B,T,D] -> [B,T,D]
  virtual void prepare_inference() {}
  virtual void release_inference() {}
};

// grouped: sort (token, expert) pairs by expert, one matmul chain per active expert (training and default; with
//          prepare_inference it uses the stacked weight copies: two matmuls per expert). The CPU inference choice.
// stacked: inference only; tokens padded per expert to the largest group, two bmm calls for all experts and no
//          sort: fewer, larger kernels, chosen by prepare_inference off the CPU.
// naive:   a per-token loop, kept as the test reference.
enum class MoeDispatch { grouped, stacked, naive };

// Routed experts (top-k of E) plus optional shared experts. Router semantics per config.scoring_func.
class MoEImpl : public FfnBase {
 public:
  explicit MoEImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& x, LayerContext& ctx) override;
  // x: [N, D] -> router logits [N, E] in fp32 even under autocast (which would make this matmul bf16): expert
  // choice and the sigmoid scores with their bias correction are made at full precision, as DeepSeek-V3 does.
  torch::Tensor router_logits(const torch::Tensor& x) const;
  // x: [N, D] -> (topk_idx [N, k] int64, topk_weight [N, k] float), from router logits [N, E].
  std::pair<torch::Tensor, torch::Tensor> route(const torch::Tensor& router_logits) const;
  torch::Tensor moe(const torch::Tensor& x, const torch::Tensor& idx, const torch::Tensor& w);  // [N, D]
  MoeDispatch dispatch = MoeDispatch::grouped;  // naive: a per-token loop, kept as the test reference
  // DeepSeek-V3 aux-loss-free balancing: in training, tokens routed to each expert by the last forward ([E]).
  torch::Tensor last_load;
  // Nudges e_score_correction_bias towards balance: b_e += rate * sign(mean load - load_e). Sigmoid routing only.
  void update_bias(double rate);
  // Copies the experts' weights into stacked tensors and picks the inference dispatch (used only while gradients
  // are off). Call again after the weights change; release_inference() frees the copies.
  void prepare_inference() override;
  void release_inference() override;
  torch::Tensor w_gate_up_t;  // [E, D, 2I] stacked (gate | up)^T, inference only
  torch::Tensor w_router_shared;  // fp32 with shared experts: [router; shared gate; shared up; (Qwen shared gate)]
  torch::Tensor w_down_t;     // [E, I, D]
  std::vector<torch::Tensor> expert_gate_up_t, expert_down_t;  // per-expert views of the two stacks

  ModelConfig cfg;
  torch::Tensor router_weight;          // [E, D]  "gate.weight"
  torch::Tensor e_score_correction_bias;  // [E]   "gate.e_score_correction_bias" (sigmoid routing only)
  torch::nn::ModuleList experts{nullptr};
  MLP shared{nullptr};                   // DeepSeek shared_experts / Qwen2-MoE shared_expert
  Linear shared_gate{nullptr};  // Qwen2-MoE shared_expert_gate [1, D]
};
TORCH_MODULE(MoE);

class TransformerImpl : public torch::nn::Module {
 public:
  // init_weights false leaves parameters uninitialised, for a checkpoint to fill (no wasted random init).
  explicit TransformerImpl(const ModelConfig& c, bool init_weights = true);
  ForwardOutput forward(const ForwardInput& in);
  const ModelConfig& config() const { return cfg_; }

  // Every MoE layer, e.g. to switch dispatch in tests.
  // Fused and stacked weight copies for fast no-grad inference (see AttentionBase, MoeDispatch); call again after
  // the weights change, release_inference() to free them.
  void prepare_inference();
  void release_inference();
  std::vector<std::shared_ptr<MoEImpl>> moe_layers() const;
  // HF state_dict: parameters and buffers by their HF names.
  std::vector<std::pair<std::string, torch::Tensor>> state_dict() const;
  std::int64_t n_params() const;          // unique parameters (tied embeddings counted once)
  std::int64_t n_active_params() const;   // per token: only top-k routed experts counted
  torch::Tensor output_weight() const;    // [V, D]: lm_head, or the embedding when tied
  // Whether training on `dev` reads, for documents packed in one row, only each document's own keys (the fused
  // CPU attention with document starts) rather than a dense mask over the whole row: then the cost of a packed
  // row grows with its documents' lengths, not the row's, and a batch may be one ragged row (distill/batch.h).
  bool packed_attention_is_per_document(const torch::Device& dev) const;
  // The same, before a model exists: for config `c` with fp32 weights (`fp32`) on `dev`.
  static bool packed_attention_is_per_document(const ModelConfig& c, const torch::Device& dev, bool fp32);

 private:
  ModelConfig cfg_;
  std::shared_ptr<torch::nn::Module> model_;   // "model": embed_tokens, layers, norm
  torch::nn::Embedding embed_tokens{nullptr};  // [V, D]
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  Linear lm_head{nullptr};          // [V, D]; absent when tied
  torch::Tensor output16_;          // prepared: output_weight() as an exact 16-bit copy for decode (cpu_gemv.h)
  std::vector<std::shared_ptr<MoEImpl>> moes_;
  torch::Tensor inv_freq_;  // RoPE inverse frequencies [rope_dim/2], on the device of the last forward
  double rope_attention_ = 1.0;  // yarn's scale of cos and sin
};
TORCH_MODULE(Transformer);

// RoPE inverse frequencies [rope_dim/2] (float32, as transformers computes them, with the config's scaling) and
// the factor that scales cos and sin (1 except under yarn).
std::pair<torch::Tensor, double> rope_frequencies(const ModelConfig& c, const torch::Device& dev);

// Next-token cross-entropy, mean over positions whose label is not -100: logits[:, t] predicts labels[:, t+1].
torch::Tensor causal_lm_loss(const torch::Tensor& logits, const torch::Tensor& labels);

}  // namespace distill::model
