"""tests/reference/gen_adamw.py: writes tests/fixtures/reference/adamw.safetensors.

Four optimizer steps of the student trainer's recipe on the weights of the `llama` reference model
(tests/fixtures/reference/llama.safetensors), with torch.optim.AdamW as the reference:
  - two groups: weight decay 0.1 on tensors of 2+ dims whose name has no "norm", none on the rest;
  - betas (0.9, 0.95), eps 1e-8;
  - per step: clip the global gradient norm to 1.0 (torch.nn.utils.clip_grad_norm_), then step at the lr of
    the schedule: linear warmup over 2 steps to 3e-3, then cosine to 0.1 x peak at step 6 (distill/schedule.h).
Gradients follow a formula both sides compute exactly (see grad()), scaled so that some steps clip and some do
not. The fixture holds each parameter's value after the last step ("<name>.final") and the lr of each step
("lr"). C++: distill/optimizer.cpp, tests/test_train.cpp.
Run: .venv/bin/python tests/reference/gen_adamw.py
"""
import math
import os

import torch
from safetensors.torch import load_file, save_file

STEPS, TOTAL, WARMUP, PEAK, FLOOR, DECAY, CLIP = 4, 6, 2, 3e-3, 0.1, 0.1, 1.0


def lr_at(step):
    if WARMUP > 0 and step < WARMUP:
        return PEAK * (step + 1) / WARMUP
    t = min(max((step - WARMUP) / max(1, TOTAL - WARMUP), 0.0), 1.0)
    return PEAK * (FLOOR + (1 - FLOOR) * 0.5 * (1 + math.cos(math.pi * t)))


def grad(shape, step, scale):
    """Element i (row-major) of the gradient at `step`: scale * (((37 i + 11 step) mod 101) - 50) / 50, computed
    in float64 and rounded once to float32 (the C++ test does the same)."""
    i = torch.arange(math.prod(shape), dtype=torch.float64)
    return (scale * (torch.remainder(37 * i + 11 * step, 101) - 50) / 50).float().view(shape)


def main():
    here = os.path.dirname(__file__)
    weights = load_file(os.path.join(here, "..", "fixtures", "reference", "llama.safetensors"))
    # the model's parameters are stored as "w.<HF name>" beside the other fixtures
    params = {k[2:]: torch.nn.Parameter(v.clone().float()) for k, v in sorted(weights.items()) if k.startswith("w.")}
    decay = [p for k, p in params.items() if p.dim() >= 2 and "norm" not in k]
    no_decay = [p for k, p in params.items() if not (p.dim() >= 2 and "norm" not in k)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": DECAY}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=PEAK, betas=(0.9, 0.95), eps=1e-8)
    out, lrs = {}, []
    for step in range(STEPS):
        scale = [0.3, 0.02, 0.5, 0.01][step]  # total norm well above 1 on steps 0 and 2, below on 1 and 3
        for p in params.values():
            p.grad = grad(p.shape, step, scale)
        torch.nn.utils.clip_grad_norm_(list(params.values()), CLIP)
        lr = lr_at(step)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        lrs.append(lr)
    for k, p in params.items():
        out[f"{k}.final"] = p.detach().clone()
    out["lr"] = torch.tensor(lrs, dtype=torch.float64)
    path = os.path.join(here, "..", "fixtures", "reference", "adamw.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path, metadata={"generator": "tests/reference/gen_adamw.py"})


if __name__ == "__main__":
    main()
