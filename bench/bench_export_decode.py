"""bench/bench_export_decode.py: decode speed of `distill complete` against llama.cpp (llama-cpp-python, pinned in
scripts/setup) on the same exported f16 student, batch 1, the same thread count, side by side in one run.

The student is a Qwen3-shaped model built here with transformers' random init (no weights can be downloaded):
hidden 1024, 12 layers, 16 heads (8 KV), FFN 3072, vocab 32000 (about 190M parameters: decode is bound by reading
the weights, as a real 0.5-1.5B student's is). It goes out through `distill export` to an f16 HF directory
(distill reads it) and an f16 GGUF file (llama.cpp reads it). Each engine decodes --tokens greedy tokens after a
short prompt, --repeats runs alternated between the two; the figure is decode tokens per second (prompt processing excluded on both sides:
llama.cpp's eval timings, distill's per-step timing from a run minus a 1-token run).
distill reads an f16 checkpoint's weights through exact 16-bit copies in decode (model/cpu_gemv.h).
Usage: bench_export_decode.py [--distill build/bin/distill] [--threads 2] [--tokens 128] [--repeats 7]"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import torch
import transformers as T


def build_student(d):
    cfg = T.Qwen3Config(vocab_size=32000, hidden_size=1024, intermediate_size=3072, num_hidden_layers=12,
                        num_attention_heads=16, num_key_value_heads=8, head_dim=64, max_position_embeddings=4096,
                        tie_word_embeddings=False)
    torch.manual_seed(0)
    model = T.Qwen3ForCausalLM(cfg)
    model.save_pretrained(d)
    # a tokenizer is needed by both exports: the chat tokenizer of the HF test fixtures is enough for ids
    return sum(p.numel() for p in model.parameters())


def distill_decode(distill, model, threads, n, prompt):
    env = {**os.environ, "DISTILL_QUIET": "1", "OMP_NUM_THREADS": str(threads)}
    def run(k):
        r = subprocess.run([distill, "complete", "--model", model, "--prompt", prompt, "--greedy", "--max-tokens", str(k),
                            "--json"], capture_output=True, text=True, env=env, check=True)
        j = json.loads(r.stdout)
        return j["seconds"], len(j["ids"])
    s1, _ = run(1)
    sn, k = run(n)
    return (k - 1) / max(sn - s1, 1e-9)


def llama_decode(path, threads, n, prompt_ids):
    from llama_cpp import Llama
    llm = Llama(model_path=path, n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False)
    llm.reset()
    llm.eval(prompt_ids)
    t0 = time.perf_counter()
    for _ in range(n):
        tok = llm.sample(temp=0.0, top_k=1)
        llm.eval([tok])
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--distill", default=os.path.join(here, "..", "build", "bin", "distill"))
    ap.add_argument("--tokenizer", default=os.path.join(here, "..", "build", "fixtures", "hf", "models", "qwen3"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        src = os.path.join(work, "student")
        n_params = build_student(src)
        for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
            subprocess.run(["cp", os.path.join(a.tokenizer, f), src], check=True)
        hf, gguf = os.path.join(work, "student_f16"), os.path.join(work, "student.f16.gguf")
        for fmt, out in (("hf", hf), ("gguf", gguf)):
            subprocess.run([a.distill, "export", "--model", src, "--format", fmt, "--dtype", "f16", "--out", out],
                           check=True, capture_output=True)
        prompt = "What is 12 + 30? Please reason step by step."
        ids = json.loads(subprocess.run([a.distill, "complete", "--model", hf, "--prompt", prompt, "--greedy",
                                         "--max-tokens", "1", "--json"], capture_output=True, text=True,
                                        check=True).stdout)["prompt_ids"]
        ours, theirs = [], []
        for _ in range(a.repeats):  # alternated, so drift in the machine's load falls on both alike
            ours.append(distill_decode(a.distill, hf, a.threads, a.tokens, prompt))
            theirs.append(llama_decode(gguf, a.threads, a.tokens, ids))
        # A shared machine's memory bandwidth drifts within seconds: each run is compared with its neighbour run of
        # the other engine, and the median of those paired ratios is the figure (best-of per engine as well).
        pairs = sorted(o / t for o, t in zip(ours, theirs))
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        print(f"decode, batch 1, {a.threads} threads, {a.tokens} tokens, {a.repeats} alternated runs, "
              f"{n_params / 1e6:.0f}M-parameter Qwen3-shaped f16 student, CPU {cpu}")
        print(f"  distill complete  best {max(ours):8.1f} tok/s   runs " + " ".join(f"{x:.1f}" for x in ours))
        print(f"  llama.cpp         best {max(theirs):8.1f} tok/s   runs " + " ".join(f"{x:.1f}" for x in theirs))
        print(f"  ratio distill / llama.cpp: median of paired runs {pairs[len(pairs) // 2]:.2f}x "
              f"(range {pairs[0]:.2f}-{pairs[-1]:.2f}), best to best {max(ours) / max(theirs):.2f}x")


if __name__ == "__main__":
    main()
