"""bench/reference_train.py: the PyTorch-Python eager reference for bench_train.

Loads an HF directory written by distill (config.json + model.safetensors) as plain tensors, and trains it with
the same model maths as tests/reference/reference_model.py, the same batches (read from the given safetensors
file) and torch.optim.AdamW with the same hyperparameters: forward, next-token cross-entropy, backward, clip,
step. It is the strongest stock eager setup, not the test oracle: attention through
F.scaled_dot_product_attention (causal; what HF models use by default) and AdamW(fused=True). With "labels" in
the batches file (SFT rows: -100 on the prompt and padding) the loss is the mean over the labelled targets,
computed as an eager loop would (full logits, cross_entropy with ignore_index) over each batch cut to its longest
row (as an HF collator pads), and "tokens" there gives each batch's real (non-padding) token count. Prints one
JSON line: {"tokens": N, "seconds": S, "final_loss": L}. The first --warmup steps (default 1: allocations,
first-touch, kernel set-up) are run but not timed or counted, as bench_train does on its side.
With --device cuda --bf16 (bench_mfu) it runs as a GPU training script would: weights and batches on the GPU,
forward and backward under torch.autocast(bfloat16) (SDPA's flash kernels apply), AdamW on the fp32 weights.
Usage: reference_train.py MODEL_DIR BATCHES.safetensors --steps N --lr LR --threads K [--device cuda --bf16]
"""
import argparse
import json
import os
import sys
import time

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "reference"))
import reference_model as ref  # noqa: E402
from gen_fixtures import reference_view  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("batches")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true", help="autocast forward and backward to bfloat16")
    a = ap.parse_args()
    dev = torch.device(a.device)
    # Every row is one causal sequence (padding, if any, after it): attention through SDPA, as HF models run it by
    # default on either device (flash kernels on CUDA, the fused CPU kernel here), not the oracle's explicit softmax.
    ref.sdpa = lambda q, k, v, mask, scale: torch.nn.functional.scaled_dot_product_attention(
        q, k, v, is_causal=True, scale=scale)
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = reference_view(json.load(open(os.path.join(a.model_dir, "config.json"))))
    W = {k: v.to(dev).clone().requires_grad_(True)
         for k, v in load_file(os.path.join(a.model_dir, "model.safetensors")).items()}
    decay = [t for n, t in W.items() if t.dim() >= 2 and "norm" not in n]
    no_decay = [t for n, t in W.items() if not (t.dim() >= 2 and "norm" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), fused=True)  # the fastest stock AdamW, on CPU too
    data = load_file(a.batches)
    ids, labels, counted = data["ids"].to(dev), data.get("labels"), data.get("tokens")
    if labels is not None:
        labels = labels.to(dev)
    widths = None  # an HF-style collator pads each batch to its longest row: columns after it are never run
    if labels is not None:
        widths = [int((labels[i] != -100).any(0).nonzero().max()) + 1 for i in range(ids.shape[0])]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    tokens, t0, loss = 0, time.perf_counter(), None
    for step in range(-a.warmup, a.steps):
        if step == 0:
            sync()
            tokens, t0 = 0, time.perf_counter()
        i = step % ids.shape[0]
        batch = ids[i] if widths is None else ids[i][:, :widths[i]]
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
            logits, _ = ref.forward(W, cfg, batch)
        flat = logits[:, :-1].reshape(-1, logits.shape[-1])
        if labels is None:
            loss = torch.nn.functional.cross_entropy(flat, batch[:, 1:].reshape(-1))
        else:
            target = labels[i][:, 1:widths[i]].reshape(-1)
            loss = torch.nn.functional.cross_entropy(flat, target, ignore_index=-100, reduction="sum") / (target != -100).sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(W.values()), 1.0)
        opt.step()
        tokens += batch.numel() if counted is None else int(counted[i])
    sync()
    print(json.dumps({"tokens": tokens, "seconds": time.perf_counter() - t0, "final_loss": loss.item()}))


if __name__ == "__main__":
    main()
