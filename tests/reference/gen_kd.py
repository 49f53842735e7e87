"""tests/reference/gen_kd.py: writes tests/fixtures/reference/kd.safetensors.

The logit-distillation losses from their definitions, with torch autograd for the gradient. The teacher is
known only through its top-k (token id, logprob) per position, as `distill generate --topk-logprobs K` stores
it; the remaining mass 1 - sum(top-k probs) is one more "tail" outcome. The student's distribution is folded
onto the same K + 1 outcomes (its tail = the mass of every other token). Both tails are floored at 1e-9 so the
logs stay finite; the teacher's tail is computed as -expm1(logsumexp(top-k logprobs)), which keeps its
precision when the top-k holds nearly all the mass. Per position, over those K + 1 outcomes:
  fkl = KL(p_teacher || q_student),  rkl = KL(q || p),  jsd = KL(p || m)/2 + KL(q || m)/2 with m = (p + q)/2, log m = logaddexp(log p, log q) - log 2 (the plain
  log((p + q)/2) is -inf where both probabilities underflow, and 0 * inf is NaN).
The fixture holds the sum over positions and d(sum)/d(student logits). C++: distill/kd.cpp.
Run: .venv/bin/python tests/reference/gen_kd.py
"""
import math
import os

import torch
from safetensors.torch import save_file

N, V, K, FLOOR = 6, 40, 5, 1e-9


def folded(logp_full, ids):
    """(log q over the top ids, log q of the tail) from full student log-probs."""
    top = logp_full.gather(-1, ids)
    masked = logp_full.scatter(-1, ids, float("-inf"))
    tail = torch.logsumexp(masked, -1, keepdim=True)
    return top, tail.clamp_min(torch.log(torch.tensor(FLOOR)))


def loss(kind, logits, ids, t_logp):
    logq = torch.log_softmax(logits, -1)
    q_top, q_tail = folded(logq, ids)
    p_tail = torch.log((-torch.logsumexp(t_logp, -1, keepdim=True).expm1()).clamp_min(FLOOR))
    lp = torch.cat([t_logp, p_tail], -1)
    lq = torch.cat([q_top, q_tail], -1)
    p, q = lp.exp(), lq.exp()
    if kind == "fkl":
        return (p * (lp - lq)).sum()
    if kind == "rkl":
        return (q * (lq - lp)).sum()
    lm = torch.logaddexp(lp, lq) - math.log(2)
    return (0.5 * (p * (lp - lm)) + 0.5 * (q * (lq - lm))).sum()


def main():
    g = torch.Generator().manual_seed(11)
    student = 2.0 * torch.randn(N, V, generator=g)
    teacher = 3.0 * torch.randn(N, V, generator=g)
    t_logp_full = torch.log_softmax(teacher, -1)
    t_logp, ids = t_logp_full.topk(K, -1)
    t_logp[0] = torch.log(torch.full((K,), 1.0 / K))  # a row whose top-k holds all the mass: the tail is empty
    # a row where teacher and student both give some top-k tokens logprobs below -104 (their probabilities
    # underflow in fp32): every loss and gradient must stay finite
    student[1] = torch.cat([torch.tensor([200.0, 90.0]), torch.zeros(V - 2)])
    ids[1] = torch.arange(K)
    t_logp[1] = torch.tensor([0.0, -105.0, -120.0, -130.0, -140.0])
    t_logp[2, 1:] = t_logp[2, 0] - 1e-7 * torch.arange(1, K)  # a top-k holding ~all the mass but for a small tail
    t_logp[2] = t_logp[2] - torch.logsumexp(t_logp[2], -1) + math.log1p(-1e-6)
    out = {"student_logits": student, "top_ids": ids, "top_logp": t_logp}
    for kind in ("fkl", "rkl", "jsd"):
        x = student.clone().requires_grad_(True)
        l = loss(kind, x, ids, t_logp)
        l.backward()
        out[kind + ".loss"] = l.detach().reshape(1)
        out[kind + ".grad"] = x.grad
    path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "reference", "kd.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path, metadata={"generator": "tests/reference/gen_kd.py"})
    print("wrote", path, {k: round(v.item(), 6) for k, v in out.items() if k.endswith(".loss")})


if __name__ == "__main__":
    main()
