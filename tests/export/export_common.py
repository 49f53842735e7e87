"""tests/export/export_common.py: what the export tests (and tests/lora) share: running the distill binary, a
transformers model's worst logprob difference from `distill complete --json`'s top-k, and a SentencePiece
Llama student trained by distill itself (the demo's kind: tokenizer.model, R1 prompt format), trained long enough
on repeated data that its greedy choices are clear (peaked logits), so other engines can be held to its tokens."""
import json
import os
import subprocess
import sys

CORPUS = [
    "What is 12 + 30?",
    "Please reason step by step, and put your final answer within \\boxed{}.",
    "<think>\n3+5=8\n</think>\n\\boxed{8}",
    "a b  c   d\t\te\n\n\nf",
    "  leading and trailing spaces  ",
    "digits 1234567890 and 3.14159, -42",
    "Unicode: café naïve Ærøskøbing — “quotes” ‘single’",
    "Greek αβγ, Cyrillic привет, CJK 你好世界, Japanese こんにちは",
    "emoji 🙂🚀👍🏽 and a ZWJ family 👨‍👩‍👧",
    "code: def f(x):\n    return x**2  # square\n",
    "mixed<think>inline</think>tags and \\frac{1}{2} LaTeX $x^2$",
    "tabs\tand\r\nwindows newlines",
]


def run(distill, *args, check=True):
    r = subprocess.run([distill, *args], capture_output=True, text=True, env={**os.environ, "DISTILL_QUIET": "1"})
    if check and r.returncode != 0:
        sys.exit(f"distill {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r


def complete(distill, model, prompt, n, *more):
    r = run(distill, "complete", "--model", model, "--prompt", prompt, "--greedy", "--max-tokens", str(n), "--json", *more)
    return json.loads(r.stdout)


def sp_student(distill, work, teacher):
    """A tiny Llama student with distill's SentencePiece tokenizer, trained on the demo teacher's samples."""
    out = os.path.join(work, "sp_student")
    if os.path.exists(out):
        return out
    db = os.path.join(work, "s.db")
    run(distill, "data", "synth", "--db", db, "--task", "chain", "--n", "40", "--difficulty", "1-2")
    run(distill, "generate", "--db", db, "--teacher", teacher, "--samples", "2", "--limit", "20", "--max-tokens", "48")
    run(distill, "data", "review", "--db", db, "--all-pending", "--accept", "--reason", "export test")
    run(distill, "train", "--db", db, "--student", "tiny", "--out", out, "--steps", "400", "--max-seq-len", "96",
        "--batch-tokens", "768", "--val-fraction", "0", "--lr", "3e-3")
    return out


def check(cond, what):
    if not cond:
        sys.exit("FAILED: " + what)
    print("ok:", what)


def logprob_diff(model, prompt_ids, done):
    """Worst |transformers logprob - distill's| over every generated step's top-k (`done`: complete --json)."""
    import torch
    full = torch.tensor([prompt_ids + done["ids"]])
    with torch.no_grad():
        lp = torch.log_softmax(model(full).logits[0].double(), -1)
    worst = 0.0
    for i, step in enumerate(done["steps"]):
        pos = len(prompt_ids) - 1 + i
        for t in step["top"]:
            worst = max(worst, abs(lp[pos, t["id"]].item() - t["logprob"]))
    return worst
