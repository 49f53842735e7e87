"""tests/reference/gen_fixtures.py: writes tests/fixtures/reference/*.safetensors + *.config.json.

For each tiny configuration (DeepSeek-V3 MLA+MoE, Qwen2-MoE, Mixtral, Llama, Qwen2) it draws random weights
(seeded), runs reference_model.forward on fixed token ids, and stores the weights ("w.<name>"), the inputs,
the logits, the LM loss, the load-balancing loss and the gradient of every parameter ("grad.<name>") of
total = loss + 0.01 * aux_loss. tests/test_model_reference.cpp loads the same weights into the C++ model
and compares. Run with the project venv:  .venv/bin/python tests/reference/gen_fixtures.py
"""
import json
import os

import torch
from safetensors.torch import save_file

import reference_model as ref

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "reference")
AUX_COEF = 0.01

BASE = dict(vocab_size=96, hidden_size=32, rms_norm_eps=1e-6, rope_theta=10000.0, hidden_act="silu",
            max_position_embeddings=64, initializer_range=0.02, bos_token_id=1, eos_token_id=2, pad_token_id=3,
            rope_scaling=None, attention_dropout=0.0)

CONFIGS = {
    "deepseek_v3": dict(BASE, model_type="deepseek_v3", architectures=["DeepseekV3ForCausalLM"], num_hidden_layers=3,
                        num_attention_heads=4, num_key_value_heads=4, intermediate_size=48, q_lora_rank=16,
                        kv_lora_rank=12, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=6, n_routed_experts=8,
                        num_experts_per_tok=3, n_shared_experts=1, moe_intermediate_size=16, n_group=4,
                        topk_group=2, norm_topk_prob=True, routed_scaling_factor=2.5, first_k_dense_replace=1,
                        moe_layer_freq=1, rope_interleave=True, tie_word_embeddings=False, attention_bias=False),
    "deepseek_v3_plain_q": dict(BASE, model_type="deepseek_v3", architectures=["DeepseekV3ForCausalLM"],
                                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                intermediate_size=40, q_lora_rank=None, kv_lora_rank=8, qk_nope_head_dim=6,
                                qk_rope_head_dim=6, v_head_dim=8, n_routed_experts=4, num_experts_per_tok=2,
                                n_shared_experts=2, moe_intermediate_size=12, n_group=1, topk_group=1,
                                norm_topk_prob=False, routed_scaling_factor=1.0, first_k_dense_replace=0,
                                moe_layer_freq=1, rope_interleave=False, tie_word_embeddings=True,
                                attention_bias=False),
    "qwen2_moe": dict(BASE, model_type="qwen2_moe", architectures=["Qwen2MoeForCausalLM"], num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, intermediate_size=48, num_experts=6,
                      num_experts_per_tok=2, moe_intermediate_size=16, shared_expert_intermediate_size=24,
                      decoder_sparse_step=1, norm_topk_prob=False, use_sliding_window=False, mlp_only_layers=[],
                      tie_word_embeddings=False),
    "mixtral": dict(BASE, model_type="mixtral", architectures=["MixtralForCausalLM"], num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, intermediate_size=24, num_local_experts=4,
                    num_experts_per_tok=2, sliding_window=None, tie_word_embeddings=False),
    "llama": dict(BASE, model_type="llama", architectures=["LlamaForCausalLM"], num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=1, head_dim=16, intermediate_size=40,
                  attention_bias=True, mlp_bias=False, tie_word_embeddings=True),
    # Llama 3.1 RoPE scaling; original context 32 so that the 16-dim rotary frequencies fall on all three ranges
    "llama3_rope": dict(BASE, model_type="llama", architectures=["LlamaForCausalLM"], num_hidden_layers=2,
                        num_attention_heads=2, num_key_value_heads=2, head_dim=16, intermediate_size=40,
                        attention_bias=False, mlp_bias=False, tie_word_embeddings=False, rope_theta=500.0,
                        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                          original_max_position_embeddings=32)),
    "qwen2": dict(BASE, model_type="qwen2", architectures=["Qwen2ForCausalLM"], num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, intermediate_size=40, use_sliding_window=False,
                  tie_word_embeddings=False),
}


def reference_view(c):
    """The fields reference_model reads, derived from the HF config."""
    t = c["model_type"]
    r = dict(c)
    if "rope_theta" not in r and "rope_parameters" in c:  # transformers 5's spelling, as distill writes configs
        rp = dict(c["rope_parameters"])
        r["rope_theta"] = rp.pop("rope_theta")
        r["rope_scaling"] = rp if rp.get("rope_type", "default") != "default" else None
    r["scoring"] = "sigmoid" if t == "deepseek_v3" else "softmax"
    r["expert_names"] = ("w1", "w3", "w2") if t == "mixtral" else ("gate_proj", "up_proj", "down_proj")
    r["ffn_name"] = "block_sparse_moe" if t == "mixtral" else "mlp"
    r["shared_name"] = {"deepseek_v3": "shared_experts", "qwen2_moe": "shared_expert"}.get(t)
    if t == "mixtral":
        r["n_routed_experts"] = c["num_local_experts"]
        r["norm_topk_prob"] = True
        r["is_moe_layer"] = lambda i: True
    elif t == "qwen2_moe":
        r["n_routed_experts"] = c["num_experts"]
        r["is_moe_layer"] = lambda i: (i + 1) % c["decoder_sparse_step"] == 0
    elif t == "deepseek_v3":
        r["is_moe_layer"] = lambda i: i >= c["first_k_dense_replace"] and i % c["moe_layer_freq"] == 0
    else:
        r["is_moe_layer"] = lambda i: False
    return r


def weight_shapes(c):
    """HF state_dict names and shapes for config c."""
    t, D, V = c["model_type"], c["hidden_size"], c["vocab_size"]
    r = reference_view(c)
    S = {"model.embed_tokens.weight": (V, D), "model.norm.weight": (D,)}
    if not c["tie_word_embeddings"]:
        S["lm_head.weight"] = (V, D)
    H, K = c["num_attention_heads"], c["num_key_value_heads"]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        S[p + "input_layernorm.weight"] = (D,)
        S[p + "post_attention_layernorm.weight"] = (D,)
        a = p + "self_attn."
        if t == "deepseek_v3":
            nope, rope, vd, rank = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"], c["kv_lora_rank"]
            if c["q_lora_rank"]:
                S[a + "q_a_proj.weight"] = (c["q_lora_rank"], D)
                S[a + "q_a_layernorm.weight"] = (c["q_lora_rank"],)
                S[a + "q_b_proj.weight"] = (H * (nope + rope), c["q_lora_rank"])
            else:
                S[a + "q_proj.weight"] = (H * (nope + rope), D)
            S[a + "kv_a_proj_with_mqa.weight"] = (rank + rope, D)
            S[a + "kv_a_layernorm.weight"] = (rank,)
            S[a + "kv_b_proj.weight"] = (H * (nope + vd), rank)
            S[a + "o_proj.weight"] = (D, H * vd)
        else:
            hd = c.get("head_dim") or D // H
            qkv_bias = t in ("qwen2", "qwen2_moe") or c.get("attention_bias", False)
            for n, out in (("q_proj", H * hd), ("k_proj", K * hd), ("v_proj", K * hd)):
                S[a + n + ".weight"] = (out, D)
                if qkv_bias:
                    S[a + n + ".bias"] = (out,)
            S[a + "o_proj.weight"] = (D, H * hd)
            if t == "llama" and c.get("attention_bias"):
                S[a + "o_proj.bias"] = (D,)
        if r["is_moe_layer"](i):
            m = p + r["ffn_name"] + "."
            E, I = r["n_routed_experts"], c.get("moe_intermediate_size") or c["intermediate_size"]
            S[m + "gate.weight"] = (E, D)
            if t == "deepseek_v3":
                S[m + "gate.e_score_correction_bias"] = (E,)
            g, u, d = r["expert_names"]
            for e in range(E):
                S[f"{m}experts.{e}.{g}.weight"] = (I, D)
                S[f"{m}experts.{e}.{u}.weight"] = (I, D)
                S[f"{m}experts.{e}.{d}.weight"] = (D, I)
            shared_I = (c["moe_intermediate_size"] * c.get("n_shared_experts", 0)) if t == "deepseek_v3" else \
                c.get("shared_expert_intermediate_size", 0)
            if shared_I:
                sp = m + r["shared_name"] + "."
                S[sp + "gate_proj.weight"] = (shared_I, D)
                S[sp + "up_proj.weight"] = (shared_I, D)
                S[sp + "down_proj.weight"] = (D, shared_I)
                if t == "qwen2_moe":
                    S[m + "shared_expert_gate.weight"] = (1, D)
        else:
            I = c["intermediate_size"]
            S[p + "mlp.gate_proj.weight"] = (I, D)
            S[p + "mlp.up_proj.weight"] = (I, D)
            S[p + "mlp.down_proj.weight"] = (D, I)
    return S


def main():
    os.makedirs(OUT, exist_ok=True)
    for seed, (name, c) in enumerate(sorted(CONFIGS.items())):
        g = torch.Generator().manual_seed(1000 + seed)
        W = {}
        for n, shape in weight_shapes(c).items():
            if n.endswith("norm.weight"):
                W[n] = 1.0 + 0.1 * torch.randn(shape, generator=g)
            elif n.endswith(".bias") or n.endswith("e_score_correction_bias"):
                W[n] = 0.05 * torch.randn(shape, generator=g)
            elif n == "model.embed_tokens.weight":
                W[n] = 0.5 * torch.randn(shape, generator=g)
            else:
                W[n] = 0.15 * torch.randn(shape, generator=g)
        params = {n: t.clone().requires_grad_(not n.endswith("e_score_correction_bias")) for n, t in W.items()}
        ids = torch.randint(0, c["vocab_size"], (2, 12), generator=g)
        labels = ids.clone()
        labels[0, :3] = -100
        logits, aux = ref.forward(params, reference_view(c), ids)
        loss = ref.lm_loss(logits, labels)
        total = loss + (AUX_COEF * aux if aux is not None else 0.0)
        total.backward()
        out = {"input_ids": ids, "labels": labels, "logits": logits.detach(), "loss": loss.detach().reshape(1)}
        if aux is not None:
            out["aux_loss"] = aux.detach().reshape(1)
        for n, t in W.items():
            out["w." + n] = t
            if params[n].grad is not None:
                out["grad." + n] = params[n].grad
        save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(OUT, name + ".safetensors"),
                  metadata={"aux_coef": str(AUX_COEF), "generator": "tests/reference/gen_fixtures.py"})
        with open(os.path.join(OUT, name + ".config.json"), "w") as f:
            json.dump(c, f, indent=2)
            f.write("\n")
        print(f"{name}: {len(W)} tensors, loss {loss.item():.6f}" + (f", aux {aux.item():.6f}" if aux is not None else ""))


if __name__ == "__main__":
    main()
