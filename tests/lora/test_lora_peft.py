#!/usr/bin/env python3
"""tests/lora/test_lora_peft.py DISTILL FIXTURES_DIR DEMO_TEACHER WORKDIR: LoRA judged by the real client, peft.

distill trains a LoRA adapter (rank 4, dropout, every projection) on a transformers-saved Llama (the HF fixture,
with its tokenizer.json and chat template) from curated samples of the demo teacher. Then:
- peft's PeftModel.from_pretrained loads the adapter onto the transformers base, and its logprobs equal those of
  `distill complete` on the `export --merge-lora` folder (fp32, within 1e-4), and transformers on that merged
  folder agrees with peft; the adapter moved the model away from its base;
- a run stopped after 6 steps and resumed writes the adapter of the uninterrupted run, byte for byte;
- --average-last averages the adapter;
- on a transformers-saved Mixtral, the adapter covers every routed expert (named per expert, as the checkpoint
  names them), and peft, which folds those into transformers' stacked experts, gets our logprobs too. (Not the
  Qwen3-MoE fixture: its layer 0 is a dense MLP, and peft 0.21 drops a dense gate_proj/up_proj/down_proj adapter
  when it folds the experts' of the same name; tests/test_lora.cpp covers an all-MoE Qwen3-MoE against peft.)
- LoRA with --kd and --checkpoint-activations trains too;
- bad input exits 2 with the reason: a preset student, an unknown target, an adapter given where a model is wanted.
Usage: test_lora_peft.py DISTILL FIXTURES_DIR DEMO_TEACHER WORKDIR"""
import json
import os
import shutil
import subprocess
import sys

import torch
import transformers as T
from peft import PeftModel
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "export"))
from export_common import logprob_diff  # noqa: E402

ATOL = 1e-4  # tests/tolerances.h kHfLogitsAtol
PROMPT = "What is 12 + 30?"


def run(*args, code=0):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, env={**os.environ, "DISTILL_QUIET": "1"})
    if r.returncode != code:
        print(r.stdout, r.stderr)
        raise SystemExit(f"FAIL: {' '.join(map(str, args[:3]))}... exited {r.returncode}, expected {code}")
    return r


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        raise SystemExit(1)


def check_moe(distill, fixtures, db, work, name):
    """LoRA on every projection of an MoE base, routed experts included, judged by peft."""
    base = os.path.join(work, name)
    shutil.copytree(os.path.join(fixtures, "models", name), base)
    adapter, merged = os.path.join(work, name + "_adapter"), os.path.join(work, name + "_merged")
    args = ["train", "--db", db, "--student", base, "--tokenizer", base, "--lora-rank", "4", "--lora-alpha", "8",
            "--steps", "8", "--lr", "2e-2", "--warmup", "2", "--max-seq-len", "128", "--batch-tokens", "512"]
    r = run(distill, *args, "--lora-dropout", "0.1", "--out", adapter, code=2)
    check("--lora-dropout" in r.stderr and "routed experts" in r.stderr and not os.path.exists(adapter),
          f"{name}: dropout on routed experts is refused with the reason")
    run(distill, *args, "--out", adapter)
    keys = load_file(os.path.join(adapter, "adapter_model.safetensors"))
    check(any(".experts.3." in k for k in keys), f"{name}: the adapter covers the routed experts, named per expert")
    run(distill, "export", "--model", adapter, "--merge-lora", "--format", "hf", "--out", merged)
    ours = json.loads(run(distill, "complete", "--model", merged, "--prompt", PROMPT, "--greedy", "--max-tokens", "12",
                          "--topk-logprobs", "8", "--json").stdout)
    peft_model = PeftModel.from_pretrained(T.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter).eval()
    worst = logprob_diff(peft_model, ours["prompt_ids"], ours)
    print(f"  {name}: peft (base + our adapter) vs distill on the merged export: worst logprob difference {worst:.2e}")
    check(worst <= ATOL, f"{name}: peft's logprobs = distill's within {ATOL}")
    plain = T.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    check(logprob_diff(plain, ours["prompt_ids"], ours) > 1e-2, f"{name}: the adapter changed the model")


def main():
    distill, fixtures, teacher, work = sys.argv[1:5]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    base = os.path.join(work, "base")
    shutil.copytree(os.path.join(fixtures, "models", "llama"), base)
    db = os.path.join(work, "s.db")
    run(distill, "data", "synth", "--db", db, "--task", "chain", "--n", "60", "--difficulty", "1-2")
    run(distill, "generate", "--db", db, "--teacher", teacher, "--samples", "1", "--limit", "40", "--max-tokens", "64",
        "--topk-logprobs", "4")
    run(distill, "data", "review", "--db", db, "--all-pending", "--accept")
    common = ["train", "--db", db, "--student", base, "--lora-rank", "4", "--lora-alpha", "8", "--lora-dropout", "0.1",
              "--steps", "12", "--lr", "2e-2", "--warmup", "2", "--max-seq-len", "128", "--batch-tokens", "512",
              "--tokenizer", base]
    adapter = os.path.join(work, "adapter")
    out = run(distill, *common, "--out", adapter, "--save-every", "5")
    check(sorted(os.listdir(adapter))[:2] == ["adapter_config.json", "adapter_model.safetensors"],
          "the output folder holds a PEFT adapter")
    check("trainable parameters" in out.stderr, "train says how many parameters LoRA trains")

    # peft loads it onto the transformers base
    tok = T.AutoTokenizer.from_pretrained(base)
    plain = T.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    peft_model = PeftModel.from_pretrained(T.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter).eval()
    merged = os.path.join(work, "merged")
    run(distill, "export", "--model", adapter, "--merge-lora", "--format", "hf", "--out", merged)
    ours = json.loads(run(distill, "complete", "--model", merged, "--prompt", PROMPT, "--greedy", "--max-tokens", "12",
                          "--topk-logprobs", "8", "--json").stdout)
    check(tok(PROMPT)["input_ids"] == ours["prompt_ids"], "AutoTokenizer(prompt) ids = distill's")
    worst = logprob_diff(peft_model, ours["prompt_ids"], ours)
    print(f"  peft (base + our adapter) vs distill on the merged export: worst logprob difference {worst:.2e}")
    check(worst <= ATOL, f"peft's logprobs = distill's within {ATOL}")
    worst_hf = logprob_diff(T.AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval(), ours["prompt_ids"], ours)
    check(worst_hf <= ATOL, f"transformers on the merged export = distill's within {ATOL} ({worst_hf:.2e})")
    moved = logprob_diff(plain, ours["prompt_ids"], ours)
    print(f"  the base without the adapter differs by up to {moved:.2e}")
    check(moved > 1e-2, "the adapter changed the model")
    check_moe(distill, fixtures, db, work, "mixtral")

    # stop + resume = uninterrupted, byte for byte (dropout masks follow the seed and step)
    split = os.path.join(work, "split")
    run(distill, *common, "--out", split, "--save-every", "5", "--stop-after", "6")
    run(distill, *common, "--out", split, "--save-every", "5", "--resume")
    a = open(os.path.join(adapter, "adapter_model.safetensors"), "rb").read()
    b = open(os.path.join(split, "adapter_model.safetensors"), "rb").read()
    check(a == b, "a resumed LoRA run writes the uninterrupted run's adapter")
    again = run(distill, *common, "--out", split, "--save-every", "5", "--resume")
    check("nothing to do" in again.stdout, "--resume of the finished LoRA run changes nothing")
    other_base = os.path.join(work, "base2")
    shutil.copytree(base, other_base)
    moved_base = [other_base if a == base else a for a in common]
    r = run(distill, *moved_base, "--out", split, "--save-every", "5", "--resume", code=2)
    check("lora" in r.stderr and "same settings" in r.stderr, "resuming an adapter onto another base is refused")

    # --average-last 2 saves the mean of the adapter after steps 11 and 12: checkpoint-11's and the plain run's last
    avg = os.path.join(work, "avg")
    run(distill, *common, "--out", avg, "--save-every", "11", "--average-last", "2")
    a11 = load_file(os.path.join(avg, "checkpoint-11", "adapter_model.safetensors"))
    a12 = load_file(os.path.join(adapter, "adapter_model.safetensors"))
    mean = load_file(os.path.join(avg, "adapter_model.safetensors"))
    worst = max((mean[k] - (a11[k] + a12[k]) / 2).abs().max().item() for k in mean)
    check(set(mean) == set(a12) and worst <= 1e-6, f"--average-last averages the adapter ({worst:.1e})")

    # with logit KD and activation checkpointing (the demo teacher's top-k: its tokenizer, so a student of it)
    kd = run(distill, "train", "--db", db, "--student", os.path.join(work, "demo_student"), "--out",
             os.path.join(work, "x"), code=2)
    check("neither a preset" in kd.stderr, "a missing student directory is named")
    run(distill, "train", "--db", db, "--student", "tiny", "--steps", "2", "--out", os.path.join(work, "demo_student"))
    run(distill, "train", "--db", db, "--student", os.path.join(work, "demo_student"), "--lora-rank", "2",
        "--kd", "fkl", "--checkpoint-activations", "--steps", "3", "--max-seq-len", "128", "--batch-tokens", "512",
        "--out", os.path.join(work, "kd_adapter"))
    check(os.path.exists(os.path.join(work, "kd_adapter", "adapter_model.safetensors")), "LoRA + KD + checkpointing trains")

    # bad input
    r = run(distill, "train", "--db", db, "--student", "tiny", "--lora-rank", "4", "--out", os.path.join(work, "y"), code=2)
    check("pretrained student" in r.stderr and not os.path.exists(os.path.join(work, "y")), "LoRA on a preset is refused")
    r = run(distill, *common, "--lora-targets", "q_proj,qkv", "--out", os.path.join(work, "z"), code=2)
    check("'qkv' names no projection" in r.stderr, "an unknown target is named")
    r = run(distill, "complete", "--model", adapter, "--prompt", PROMPT, code=2)
    check("LoRA adapter" in r.stderr and "--merge-lora" in r.stderr, "an adapter where a model is wanted says how to merge it")
    r = run(distill, "export", "--model", adapter, "--format", "gguf", "--out", os.path.join(work, "a.gguf"), code=2)
    check("--merge-lora" in r.stderr, "GGUF export of an adapter says to merge first")
    print("lora peft client: all checks passed")


if __name__ == "__main__":
    main()
