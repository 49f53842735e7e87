"""tests/reference/reference_model.py: an independent plain-PyTorch reference of distill's transformer.

Written from the architecture descriptions (Llama/Qwen2 GQA attention, DeepSeek-V2/V3 MLA, SwiGLU,
softmax top-k routing as in Mixtral/Qwen2-MoE, DeepSeek-V3 sigmoid routing with bias correction and
group-limited selection, shared experts, Switch-style load-balancing loss), not from distill's C++.
It works on a flat dict of HF-named tensors so the fixture's weights are exactly what C++ loads.
Every op is eager fp32/fp64; clarity over speed. Used only by gen_fixtures.py.
"""
import math

import torch
import torch.nn.functional as F


def rms_norm(x, w, eps):
    xf = x.float()
    return w * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def rope_tables(positions, dim, theta, scaling=None):
    # angle[b, t, i] = positions[b, t] * theta ** (-2i / dim), duplicated to the full dim (half-split layout)
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    if scaling:  # Llama 3.1 ("llama3"): per frequency, written out one element at a time from the definition
        orig, lo, hi, factor = (scaling["original_max_position_embeddings"], scaling["low_freq_factor"],
                                scaling["high_freq_factor"], scaling["factor"])
        out = []
        for f in inv.tolist():
            wavelen = 2 * math.pi / f
            if wavelen < orig / hi:
                out.append(f)
            elif wavelen > orig / lo:
                out.append(f / factor)
            else:
                s = (orig / wavelen - lo) / (hi - lo)
                out.append((1 - s) * f / factor + s * f)
        inv = torch.tensor(out, dtype=torch.float32)
    ang = positions.float()[..., None] * inv.to(positions.device)
    ang = torch.cat([ang, ang], dim=-1)[:, None]  # [B, 1, T, dim]
    return ang.cos(), ang.sin()


def rotate(x, cos, sin, interleaved=False):
    if interleaved:  # pairs (x0,x1),(x2,x3).. -> (x0,x2,..,x1,x3,..)
        x = torch.cat([x[..., 0::2], x[..., 1::2]], dim=-1)
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rot * sin


def causal_mask(positions):
    # key s visible from query t when pos[s] <= pos[t]
    return positions[:, None, :] <= positions[:, :, None]  # [B, Tq, Tk]


def sdpa(q, k, v, mask, scale):
    # q [B,H,T,d], k [B,H,S,d], v [B,H,S,dv], mask [B,T,S]
    scores = (q @ k.transpose(-1, -2)) * scale
    scores = scores.masked_fill(~mask[:, None], float("-inf"))
    return scores.softmax(-1) @ v


def swiglu(x, wg, wu, wd):
    return F.linear(F.silu(F.linear(x, wg)) * F.linear(x, wu), wd)


def lin(W, name, x):
    b = W.get(name + ".bias")
    return F.linear(x, W[name + ".weight"], b)


def gqa_attention(W, p, cfg, x, cos, sin, mask):
    B, T, _ = x.shape
    H, K = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // H
    q = lin(W, p + "q_proj", x).view(B, T, H, hd).transpose(1, 2)
    k = lin(W, p + "k_proj", x).view(B, T, K, hd).transpose(1, 2)
    v = lin(W, p + "v_proj", x).view(B, T, K, hd).transpose(1, 2)
    q, k = rotate(q, cos, sin), rotate(k, cos, sin)
    k = torch.repeat_interleave(k, H // K, dim=1)
    v = torch.repeat_interleave(v, H // K, dim=1)
    o = sdpa(q, k, v, mask, 1.0 / math.sqrt(hd))
    return lin(W, p + "o_proj", o.transpose(1, 2).reshape(B, T, H * hd))


def mla_attention(W, p, cfg, x, cos, sin, mask):
    B, T, _ = x.shape
    H = cfg["num_attention_heads"]
    nope, rope, vd, rank = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"], cfg["kv_lora_rank"]
    eps = cfg["rms_norm_eps"]
    if cfg.get("q_lora_rank"):
        q = F.linear(rms_norm(F.linear(x, W[p + "q_a_proj.weight"]), W[p + "q_a_layernorm.weight"], eps),
                     W[p + "q_b_proj.weight"])
    else:
        q = F.linear(x, W[p + "q_proj.weight"])
    q = q.view(B, T, H, nope + rope).transpose(1, 2)
    q_pass, q_rot = q[..., :nope], q[..., nope:]
    ckv = F.linear(x, W[p + "kv_a_proj_with_mqa.weight"])
    c, k_rot = ckv[..., :rank], ckv[..., rank:]
    kv = F.linear(rms_norm(c, W[p + "kv_a_layernorm.weight"], eps), W[p + "kv_b_proj.weight"])
    kv = kv.view(B, T, H, nope + vd).transpose(1, 2)
    k_pass, v = kv[..., :nope], kv[..., nope:]
    il = cfg.get("rope_interleave", True)
    q_rot = rotate(q_rot, cos, sin, il)
    k_rot = rotate(k_rot.view(B, 1, T, rope), cos, sin, il).expand(B, H, T, rope)
    q = torch.cat([q_pass, q_rot], -1)
    k = torch.cat([k_pass, k_rot], -1)
    o = sdpa(q, k, v, mask, 1.0 / math.sqrt(nope + rope))
    return F.linear(o.transpose(1, 2).reshape(B, T, H * vd), W[p + "o_proj.weight"])


def route(cfg, logits, bias):
    k = cfg["num_experts_per_tok"]
    if cfg["scoring"] == "softmax":
        probs = logits.float().softmax(-1)
        w, idx = probs.topk(k, dim=-1)
        if cfg["norm_topk_prob"]:
            w = w / w.sum(-1, keepdim=True)
    else:
        scores = logits.float().sigmoid()
        choice = scores + bias
        E, G = cfg["n_routed_experts"], cfg.get("n_group", 1)
        if G > 1:
            per = E // G
            gs = choice.view(-1, G, per).topk(min(2, per), dim=-1).values.sum(-1)
            keep = torch.zeros_like(gs, dtype=torch.bool)
            keep.scatter_(1, gs.topk(cfg["topk_group"], dim=-1).indices, True)
            keep = keep[:, :, None].expand(-1, G, per).reshape(-1, E)
            choice = choice.masked_fill(~keep, float("-inf"))
        idx = choice.topk(k, dim=-1).indices
        w = scores.gather(1, idx)
        if cfg["norm_topk_prob"]:
            w = w / (w.sum(-1, keepdim=True) + 1e-20)
    return idx, w * cfg.get("routed_scaling_factor", 1.0)


def moe(W, p, cfg, x, router_logits_out):
    shape = x.shape
    x = x.reshape(-1, shape[-1])
    names = cfg["expert_names"]
    logits = F.linear(x.float(), W[p + "gate.weight"].float())
    router_logits_out.append(logits)
    idx, w = route(cfg, logits, W.get(p + "gate.e_score_correction_bias"))
    out = torch.zeros_like(x)
    for e in range(cfg["n_routed_experts"]):  # plain loop over experts and their tokens
        hit = (idx == e)
        tok = hit.any(-1).nonzero().flatten()
        if tok.numel() == 0:
            continue
        we = (w * hit).sum(-1)[tok]
        ep = f"{p}experts.{e}."
        y = swiglu(x[tok], W[ep + names[0] + ".weight"], W[ep + names[1] + ".weight"], W[ep + names[2] + ".weight"])
        out = out.index_add(0, tok, y * we[:, None].to(y.dtype))
    sp = cfg.get("shared_name")
    if sp and (p + sp + ".gate_proj.weight") in W:
        s = swiglu(x, W[p + sp + ".gate_proj.weight"], W[p + sp + ".up_proj.weight"], W[p + sp + ".down_proj.weight"])
        if (p + "shared_expert_gate.weight") in W:
            s = torch.sigmoid(F.linear(x, W[p + "shared_expert_gate.weight"])) * s
        out = out + s
    return out.view(shape)


def forward(W, cfg, ids, positions=None):
    B, T = ids.shape
    if positions is None:
        positions = torch.arange(T, device=ids.device)[None].expand(B, T)
    mla = cfg.get("kv_lora_rank", 0) > 0
    rd = cfg["qk_rope_head_dim"] if mla else (cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"])
    cos, sin = rope_tables(positions, rd, cfg["rope_theta"], cfg.get("rope_scaling"))
    mask = causal_mask(positions)
    h = W["model.embed_tokens.weight"][ids]
    router_logits = []
    eps = cfg["rms_norm_eps"]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a_in = rms_norm(h, W[p + "input_layernorm.weight"], eps)
        att = mla_attention if mla else gqa_attention
        h = h + att(W, p + "self_attn.", cfg, a_in, cos, sin, mask)
        f_in = rms_norm(h, W[p + "post_attention_layernorm.weight"], eps)
        if cfg["is_moe_layer"](i):
            h = h + moe(W, p + cfg["ffn_name"] + ".", cfg, f_in, router_logits)
        else:
            h = h + swiglu(f_in, W[p + "mlp.gate_proj.weight"], W[p + "mlp.up_proj.weight"], W[p + "mlp.down_proj.weight"])
    h = rms_norm(h, W["model.norm.weight"], eps)
    head = W["lm_head.weight"] if "lm_head.weight" in W else W["model.embed_tokens.weight"]
    logits = F.linear(h, head).float()
    aux = None
    if router_logits:
        probs = torch.cat(router_logits).softmax(-1)
        E = probs.shape[-1]
        sel = probs.topk(cfg["num_experts_per_tok"], dim=-1).indices
        frac = F.one_hot(sel, E).float().mean(0)  # [k, E]
        aux = (frac * probs.mean(0)[None]).sum() * E
    return logits, aux


def lm_loss(logits, labels):
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100)
