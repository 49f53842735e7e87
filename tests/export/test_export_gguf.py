"""tests/export/test_export_gguf.py: `distill export --format gguf` judged by the gguf package's reader and by
llama.cpp itself (llama-cpp-python, pinned in scripts/setup). For a SentencePiece Llama student distill trained,
transformers-saved Llama (Q/K permutation, byte-level BPE), Llama 3 RoPE scaling (rope_freqs), Qwen2 (q/k/v biases)
and Qwen3 (q/k norms) models:
- the reader finds llama.cpp's keys, every tensor under llama.cpp's name and shape, and the values (f16 exactly as
  torch rounds them, q8_0 within half a quantization step of each block);
- llama.cpp loads the f16 file, tokenizes the prompt as distill does, and its 32 greedy tokens equal
  `distill complete --greedy` on the f16 HF export; for q8_0 the agreement and first divergence are printed.
Usage: test_export_gguf.py DISTILL FIXTURES_DIR DEMO_TEACHER WORKDIR"""
import json
import os
import shutil
import sys

import numpy as np
import torch
from gguf import GGUFReader, quants
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(__file__))
from export_common import CORPUS, check, complete, run, sp_student  # noqa: E402

PROMPT = "What is 12 + 30?"
PROMPTS = [PROMPT, "User: 3+4", "User: 7+5-3", "The quick brown fox", "Hello world, how are you today?",
           "<think>\n3+5=8\n</think>"]
STEPS = 32


def field(r, key):
    f = r.fields[key]
    return f.contents() if hasattr(f, "contents") else f.parts[f.data[0]].tolist()


def gguf_name(hf):
    top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
           "lm_head.weight": "output.weight"}
    if hf in top:
        return top[hf]
    parts = hf.split(".")  # model.layers.N.<module...>.<weight|bias>
    mid = ".".join(parts[3:-1])
    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
             "self_attn.k_norm": "attn_k_norm", "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate",
             "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    return f"blk.{parts[2]}.{names[mid]}.{parts[-1]}"


def permute(w, heads):  # llama.cpp's Llama Q/K layout, as convert_hf_to_gguf.py makes it
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def check_file(path, cfg, src_tensors, dtype, name, has_bos):
    r = GGUFReader(path)
    arch = cfg["model_type"]
    check(field(r, "general.architecture") == arch, f"{name} {dtype}: general.architecture {arch}")
    for key, want in [("context_length", cfg["max_position_embeddings"]), ("block_count", cfg["num_hidden_layers"]),
                      ("embedding_length", cfg["hidden_size"]), ("attention.head_count_kv", cfg["num_key_value_heads"])]:
        check(field(r, f"{arch}.{key}") == want, f"{name} {dtype}: {arch}.{key} = {want}")
    check(len(r.fields["tokenizer.ggml.tokens"].data) == cfg["vocab_size"], f"{name} {dtype}: one token per embedding row")
    by_name = {t.name: t for t in r.tensors}
    keys = ["tokenizer.ggml.eos_token_id", "tokenizer.chat_template"] + (["tokenizer.ggml.bos_token_id"] if has_bos else [])
    for key in keys:
        check(key in r.fields, f"{name} {dtype}: {key} present")
    worst = 0.0
    if cfg.get("rope_parameters", {}).get("rope_type") == "llama3":
        check("rope_freqs.weight" in by_name, f"{name} {dtype}: Llama 3 RoPE scaling as rope_freqs.weight")
    for hf, x in src_tensors.items():
        g = gguf_name(hf)
        check(g in by_name, f"{name} {dtype}: {g} present") if g not in by_name else None
        t = by_name[g]
        x = x.float().numpy()
        if arch == "llama" and (".attn_q." in g or ".attn_k." in g):
            x = permute(x, cfg["num_attention_heads"] if ".attn_q." in g else cfg["num_key_value_heads"])
        if list(reversed([int(d) for d in t.shape])) != list(x.shape):
            check(False, f"{name} {dtype}: {g} shape {list(t.shape)} for {list(x.shape)}")
        got = quants.dequantize(t.data, t.tensor_type).reshape(x.shape).astype(np.float64)
        if t.tensor_type.name == "F16":
            check(np.array_equal(got, x.astype(np.float16).astype(np.float64)), f"{name} {dtype}: {g} is torch's f16") if not np.array_equal(got, x.astype(np.float16).astype(np.float64)) else None
        elif t.tensor_type.name == "Q8_0":
            blocks = x.reshape(-1, 32)
            step = np.abs(blocks).max(axis=1, keepdims=True) / 127
            err = np.abs(got.reshape(-1, 32) - blocks)
            # round(x / d) costs half a step; the scale stored as f16 (relative error 2^-11) up to 127 of them more
            ok = np.all(err <= step * (0.5 + 127 / 2048) * 1.001 + 1e-12)
            worst = max(worst, float((err / np.maximum(step, 1e-30)).max()))
            check(ok, f"{name} {dtype}: {g} within half a q8_0 step") if not ok else None
        elif t.tensor_type.name == "F32":
            check(np.array_equal(got, x.astype(np.float64)), f"{name} {dtype}: {g} exact in f32") if not np.array_equal(got, x.astype(np.float64)) else None
    print(f"ok: {name} {dtype}: {len(src_tensors)} tensors under llama.cpp's names and shapes, values as written"
          + (f" (worst q8_0 error {worst:.3f} of a step, bound 0.562)" if dtype == "q8_0" else ""))


def llama_greedy(path, prompt_ids, n, ours):
    """llama.cpp's greedy tokens, and its worst logprob difference from distill's over distill's path."""
    from llama_cpp import Llama
    llm = Llama(model_path=path, n_ctx=256, n_threads=2, n_batch=64, verbose=False, logits_all=True)
    out = []
    for t in llm.generate(prompt_ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True):
        out.append(t)
        if len(out) == n or llm.token_eos() == t:
            break
    llm.reset()
    llm.eval(prompt_ids + ours["ids"][:-1])
    scores = torch.tensor(np.array(llm.scores[:len(prompt_ids) + len(ours["ids"]) - 1]), dtype=torch.float64)
    lp = torch.log_softmax(scores, -1)
    worst = max(abs(lp[len(prompt_ids) - 1 + i, t["id"]].item() - t["logprob"])
                for i, step in enumerate(ours["steps"]) for t in step["top"])
    return llm, out, worst


def main():
    distill, fixtures, teacher, work = sys.argv[1:5]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    def with_tokenizer(fixture):  # a fixture saved without one, given the chat tokenizer (same vocabulary)
        d = os.path.join(work, fixture)
        shutil.copytree(os.path.join(fixtures, "models", fixture), d)
        for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
            shutil.copy(os.path.join(fixtures, "models", "qwen3", f), d)
        return d
    cases = [("sp_student", sp_student(distill, work, teacher)), ("llama", os.path.join(fixtures, "models", "llama")),
             ("llama3_rope", with_tokenizer("llama3_rope_4x")), ("qwen2", with_tokenizer("qwen2_4x")),
             ("qwen3", os.path.join(fixtures, "models", "qwen3"))]
    for name, src in cases:
        f32 = os.path.join(work, name + "_f32")
        f16 = os.path.join(work, name + "_f16")
        run(distill, "export", "--model", src, "--format", "hf", "--out", f32)
        run(distill, "export", "--model", src, "--format", "hf", "--dtype", "f16", "--out", f16)
        cfg = json.load(open(os.path.join(f32, "config.json")))
        tensors = load_file(os.path.join(f32, "model.safetensors"))
        # "A model with peaked logits": of a few prompts, the one whose 32-step greedy path has the clearest choices
        # (the largest smallest top-1/top-2 gap), since f16 arithmetic in two engines differs by ~1e-2 in logprob.
        runs = [complete(distill, f16, p, STEPS, "--topk-logprobs", "2") for p in PROMPTS]
        gaps = [min(s["top"][0]["logprob"] - s["top"][1]["logprob"] for s in r["steps"]) if len(r["ids"]) == STEPS else -1
                for r in runs]
        best = max(range(len(runs)), key=lambda i: gaps[i])
        prompt, ours, gap = PROMPTS[best], runs[best], gaps[best]
        for dtype in ("f16", "q8_0"):
            path = os.path.join(work, f"{name}.{dtype}.gguf")
            run(distill, "export", "--model", src, "--format", "gguf", "--dtype", dtype, "--out", path)
            has_bos = "bos_token" in json.load(open(os.path.join(f32, "tokenizer_config.json")))
            check_file(path, cfg, tensors, dtype, name, has_bos)
            llm, theirs, worst = llama_greedy(path, ours["prompt_ids"], STEPS, ours)
            agree = next((i for i, (a, b) in enumerate(zip(theirs, ours["ids"])) if a != b), min(len(theirs), len(ours["ids"])))
            print(f"  {name} {dtype}: llama.cpp greedy agrees with distill for {agree} of {len(ours['ids'])} tokens"
                  + ("" if agree == len(ours["ids"]) else f" (first divergence at step {agree})")
                  + f"; worst logprob difference {worst:.1e} on distill's path, whose smallest top-1/top-2 gap is {gap:.3f}")
            if dtype == "f16":
                check(worst < gap / 2, f"{name} f16: llama.cpp's logprobs within half the smallest gap of distill's")
                check(theirs == ours["ids"], f"{name} f16: llama.cpp's {STEPS} greedy tokens = distill complete --greedy on the f16 export")
                tok = llm.tokenize(prompt.encode(), add_bos=True, special=True)
                check(tok == ours["prompt_ids"], f"{name}: llama.cpp tokenizes the prompt as distill does")
                same = sum(llm.tokenize(t.encode(), add_bos=False, special=True) ==
                           json.loads(run(distill, "tokenizer", "encode", "--dir", src, "--json", t).stdout)["ids"] for t in CORPUS)
                print(f"  {name}: llama.cpp tokenizer parity {same}/{len(CORPUS)} on the corpus")

    # refusals: exit 2, naming the problem, nothing written
    bad = os.path.join(work, "bad.gguf")
    r = run(distill, "export", "--model", os.path.join(fixtures, "models", "mixtral"), "--format", "gguf", "--out", bad, check=False)
    check(r.returncode == 2 and "mixtral" in r.stderr and not os.path.exists(bad), "a Mixtral GGUF export is refused by name")
    r = run(distill, "export", "--model", cases[0][1], "--format", "gguf", "--dtype", "q4_k", "--out", bad, check=False)
    check(r.returncode == 2 and "q4_k" in r.stderr and not os.path.exists(bad), "an unknown gguf dtype is refused")
    path = os.path.join(work, "sp_student.f16.gguf")
    size = os.path.getsize(path)
    r = run(distill, "export", "--model", cases[0][1], "--format", "gguf", "--dtype", "q8_0", "--out", path, check=False)
    check(r.returncode == 2 and os.path.getsize(path) == size, "an existing file needs --force and is left as it was")
    check(not [f for f in os.listdir(work) if ".distill-" in f], "no temporary export left behind")
    print("all gguf export checks passed")


if __name__ == "__main__":
    main()
