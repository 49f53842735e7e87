"""bench/reference_generate.py: the PyTorch-Python eager reference for bench_generate.

Loads an HF directory written by distill (config.json + model.safetensors), and decodes the given prompts
with a per-layer K/V cache grown by torch.cat (as HF's DynamicCache does), the same model maths as
tests/reference/reference_model.py, and the same sampling (temperature, top-p, per-row torch.Generator).
No EOS stop: every row generates exactly --max-tokens, so both sides count the same tokens.
Prints one JSON line: {"tokens": N, "seconds": S}, S the best of --repeat runs (this machine is noisy).
Usage: reference_generate.py MODEL_DIR PROMPTS.json --batch B --max-tokens N --temperature T --top-p P --threads K
       [--repeat R]
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "reference"))
import reference_model as ref  # noqa: E402
from gen_fixtures import reference_view  # noqa: E402


def attention(W, p, cfg, x, cos, sin, cache, layer):
    B, T, _ = x.shape
    H = cfg["num_attention_heads"]
    if cfg.get("kv_lora_rank", 0) > 0:
        nope, rope, vd, rank = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"], cfg["kv_lora_rank"]
        eps = cfg["rms_norm_eps"]
        if cfg.get("q_lora_rank"):
            q = F.linear(ref.rms_norm(F.linear(x, W[p + "q_a_proj.weight"]), W[p + "q_a_layernorm.weight"], eps), W[p + "q_b_proj.weight"])
        else:
            q = F.linear(x, W[p + "q_proj.weight"])
        q = q.view(B, T, H, nope + rope).transpose(1, 2)
        ckv = F.linear(x, W[p + "kv_a_proj_with_mqa.weight"])
        kv = F.linear(ref.rms_norm(ckv[..., :rank], W[p + "kv_a_layernorm.weight"], eps), W[p + "kv_b_proj.weight"])
        kv = kv.view(B, T, H, nope + vd).transpose(1, 2)
        il = cfg.get("rope_interleave", True)
        q_rot = ref.rotate(q[..., nope:], cos, sin, il)
        k_rot = ref.rotate(ckv[..., rank:].view(B, 1, T, rope), cos, sin, il).expand(B, H, T, rope)
        q = torch.cat([q[..., :nope], q_rot], -1)
        k = torch.cat([kv[..., :nope], k_rot], -1)
        v = kv[..., nope:]
        scale, o_dim = 1.0 / math.sqrt(nope + rope), H * vd
    else:
        K = cfg["num_key_value_heads"]
        hd = cfg.get("head_dim") or cfg["hidden_size"] // H
        q = ref.lin(W, p + "q_proj", x).view(B, T, H, hd).transpose(1, 2)
        k = ref.lin(W, p + "k_proj", x).view(B, T, K, hd).transpose(1, 2)
        v = ref.lin(W, p + "v_proj", x).view(B, T, K, hd).transpose(1, 2)
        q, k = ref.rotate(q, cos, sin), ref.rotate(k, cos, sin)
        k, v = torch.repeat_interleave(k, H // K, 1), torch.repeat_interleave(v, H // K, 1)
        scale, o_dim = 1.0 / math.sqrt(hd), H * hd
    if layer in cache:
        k = torch.cat([cache[layer][0], k], 2)
        v = torch.cat([cache[layer][1], v], 2)
    cache[layer] = (k, v)
    o = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, scale=scale)
    return ref.lin(W, p + "o_proj", o.transpose(1, 2).reshape(B, T, o_dim))


def step(W, cfg, ids, start, cache):
    B, T = ids.shape
    pos = torch.arange(start, start + T)[None].expand(B, T)
    mla = cfg.get("kv_lora_rank", 0) > 0
    rd = cfg["qk_rope_head_dim"] if mla else (cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"])
    cos, sin = ref.rope_tables(pos, rd, cfg["rope_theta"])
    h = W["model.embed_tokens.weight"][ids]
    eps = cfg["rms_norm_eps"]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = h + attention(W, p + "self_attn.", cfg, ref.rms_norm(h, W[p + "input_layernorm.weight"], eps), cos, sin, cache, i)
        f_in = ref.rms_norm(h, W[p + "post_attention_layernorm.weight"], eps)
        if cfg["is_moe_layer"](i):
            h = h + ref.moe(W, p + cfg["ffn_name"] + ".", cfg, f_in, [])
        else:
            h = h + ref.swiglu(f_in, W[p + "mlp.gate_proj.weight"], W[p + "mlp.up_proj.weight"], W[p + "mlp.down_proj.weight"])
    h = ref.rms_norm(h[:, -1:], W["model.norm.weight"], eps)
    head = W["lm_head.weight"] if "lm_head.weight" in W else W["model.embed_tokens.weight"]
    return F.linear(h, head)[:, -1].float()


def sample(logits, temperature, top_p, gens):
    x = logits / temperature
    srt, order = x.sort(-1, descending=True)
    pr = srt.softmax(-1)
    drop = (pr.cumsum(-1) - pr) >= top_p
    x = x.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))
    probs = x.softmax(-1)
    return torch.stack([torch.multinomial(probs[i], 1, generator=g)[0] for i, g in enumerate(gens)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("prompts")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--temperature", type=float, default=0.6)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = reference_view(json.load(open(os.path.join(a.model_dir, "config.json"))))
    W = load_file(os.path.join(a.model_dir, "model.safetensors"))
    prompts = json.load(open(a.prompts))
    best = None
    for _ in range(a.repeat):
        tokens, t0 = 0, time.perf_counter()
        with torch.inference_mode():
            for b0 in range(0, len(prompts), a.batch):
                chunk = prompts[b0:b0 + a.batch]
                ids = torch.tensor(chunk)
                gens = [torch.Generator().manual_seed(1000 + b0 + i) for i in range(len(chunk))]
                cache = {}
                logits = step(W, cfg, ids, 0, cache)
                pos = ids.shape[1]
                for _ in range(a.max_tokens):
                    nxt = sample(logits, a.temperature, a.top_p, gens)
                    tokens += len(chunk)
                    logits = step(W, cfg, nxt[:, None], pos, cache)
                    pos += 1
        seconds = time.perf_counter() - t0
        best = seconds if best is None else min(best, seconds)
    print(json.dumps({"tokens": tokens, "seconds": best}))


if __name__ == "__main__":
    main()
