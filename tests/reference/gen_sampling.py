"""tests/reference/gen_sampling.py: writes tests/fixtures/reference/sampling.safetensors.

The reference sampling pipeline, written from its definition: logits / temperature; top-k keeps the k
largest (ties with the k-th too); top-p drops a token when the probability mass of all strictly more likely
tokens already reaches top_p (so tied tokens stay or go together, whatever order a sort gives them);
min-p drops tokens below min_p * max prob and renormalises; then one torch.multinomial draw per step from
a per-row torch.Generator seeded with 100 + row. C++ (teacher/sampling.cpp) must give the same
distributions and, drawing from identically seeded generators, the same tokens.
Run: .venv/bin/python tests/reference/gen_sampling.py
"""
import json
import os

import torch
from safetensors.torch import save_file

PARAMS = [
    dict(temperature=1.0, top_p=1.0, top_k=0, min_p=0.0),
    dict(temperature=0.7, top_p=0.9, top_k=0, min_p=0.0),
    dict(temperature=1.3, top_p=1.0, top_k=5, min_p=0.0),
    dict(temperature=0.6, top_p=0.95, top_k=0, min_p=0.05),
    dict(temperature=0.9, top_p=0.5, top_k=8, min_p=0.1),
]
ROWS, VOCAB, DRAWS = 4, 50, 16


def probs_of(logits, temperature, top_p, top_k, min_p):
    x = logits / temperature
    if top_k:
        kth = x.topk(top_k, dim=-1).values[:, -1:]
        x = torch.where(x < kth, torch.tensor(float("-inf")), x)
    if top_p < 1.0:
        # drop a token when the mass of all strictly more likely tokens already reaches top_p (ties stay together)
        out = x.clone()
        for r in range(x.shape[0]):
            p = x[r].softmax(-1)
            for tok in range(x.shape[1]):
                if p[x[r] > x[r, tok]].double().sum().item() >= top_p:
                    out[r, tok] = float("-inf")
        x = out
    p = x.softmax(-1)
    if min_p > 0:
        p = torch.where(p < min_p * p.max(-1, keepdim=True).values, torch.zeros(()), p)
        p = p / p.sum(-1, keepdim=True)
    return p


def main():
    g = torch.Generator().manual_seed(7)
    logits = 2.0 * torch.randn(ROWS, VOCAB, generator=g)
    logits[0, :3] = 4.0  # a three-way tie at the top
    out = {"logits": logits}
    for i, prm in enumerate(PARAMS):
        p = probs_of(logits, **prm)
        toks = torch.zeros(ROWS, DRAWS, dtype=torch.int64)
        for r in range(ROWS):
            gen = torch.Generator().manual_seed(100 + r)
            for d in range(DRAWS):
                toks[r, d] = torch.multinomial(p[r], 1, generator=gen)
        out[f"p{i}.probs"] = p
        out[f"p{i}.tokens"] = toks
    path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "reference", "sampling.safetensors")
    save_file(out, path, metadata={"params": json.dumps(PARAMS), "draws": str(DRAWS)})
    print("wrote", path)


if __name__ == "__main__":
    main()
