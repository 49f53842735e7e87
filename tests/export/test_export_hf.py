"""tests/export/test_export_hf.py: `distill export --format hf` judged by transformers itself (pinned in
scripts/setup). For a SentencePiece student distill trained (its tokenizer converted to tokenizer.json), and
transformers-saved Llama, Qwen3 and Mixtral checkpoints (tests/fixtures/hf/gen_hf_models.py):
- AutoModelForCausalLM loads the export and gives distill's logprobs (fp32 within 1e-4) and greedy tokens;
- AutoTokenizer gives distill's ids on a corpus, and apply_chat_template distill's chat prompt;
- transformers re-saves the config.json unchanged; shards with an index load; bf16 and generation_config hold;
- the export comes back into distill (complete, generate, eval, train) unchanged.
Usage: test_export_hf.py DISTILL FIXTURES_DIR DEMO_TEACHER WORKDIR"""
import json
import os
import shutil
import sys

import torch
import transformers as T

sys.path.insert(0, os.path.dirname(__file__))
from export_common import CORPUS, check, complete, logprob_diff, run, sp_student  # noqa: E402

LOGPROB_ATOL = 1e-4  # tests/tolerances.h kHfLogitsAtol
PROMPT = "What is 12 + 30?"


def check_model(distill, src, out, name):
    tok = T.AutoTokenizer.from_pretrained(out)
    model = T.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    ours = complete(distill, src, PROMPT, 16, "--topk-logprobs", "8")
    check(tok(PROMPT)["input_ids"] == ours["prompt_ids"], f"{name}: AutoTokenizer(prompt) ids = distill's")
    worst = logprob_diff(model, ours["prompt_ids"], ours)
    print(f"  {name}: worst fp32 logprob difference vs transformers {worst:.2e}")
    check(worst <= LOGPROB_ATOL, f"{name}: logprobs within {LOGPROB_ATOL}")
    gen = model.generate(torch.tensor([ours["prompt_ids"]]), max_new_tokens=16, do_sample=False)
    theirs = gen[0].tolist()[len(ours["prompt_ids"]):]
    check(theirs[:len(ours["ids"])] == ours["ids"], f"{name}: transformers' greedy generate = distill complete --greedy")
    # tokenizer parity on the corpus (ids without specials; decode gives the text back)
    same = 0
    for text in CORPUS:
        mine = json.loads(run(distill, "tokenizer", "encode", "--dir", src, "--json", text).stdout)["ids"]
        hf = tok(text, add_special_tokens=False)["input_ids"]
        if mine == hf and tok.decode(hf) == text:
            same += 1
        else:
            print(f"  {name}: differs on {text!r}: distill {mine} transformers {hf} -> {tok.decode(hf)!r}")
    print(f"  {name}: tokenizer parity {same}/{len(CORPUS)}")
    check(same == len(CORPUS), f"{name}: AutoTokenizer ids and text = distill's on the corpus")
    # the chat prompt
    chat = complete(distill, out, PROMPT, 1, "--chat")
    msgs = [{"role": "user", "content": PROMPT}]
    check(tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False) == chat["prompt"],
          f"{name}: apply_chat_template text = distill's chat prompt")
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    check(list(ids) == chat["prompt_ids"], f"{name}: apply_chat_template ids = distill's")
    # config.json as transformers itself writes it: every key we wrote survives a load and re-save unchanged
    ours_cfg = json.load(open(os.path.join(out, "config.json")))
    resaved = os.path.join(out + ".resaved")
    T.AutoConfig.from_pretrained(out).save_pretrained(resaved)
    theirs_cfg = json.load(open(os.path.join(resaved, "config.json")))
    shutil.rmtree(resaved)
    changed = {k: (v, theirs_cfg.get(k)) for k, v in ours_cfg.items() if theirs_cfg.get(k) != v}
    check(not changed, f"{name}: config.json keys survive transformers' load and save ({changed})")
    # round trip: the export back in distill gives the source's tokens and logprobs
    back = complete(distill, out, PROMPT, 16, "--topk-logprobs", "8")
    check(back["prompt_ids"] == ours["prompt_ids"] and back["ids"] == ours["ids"], f"{name}: distill complete on the export = on the source")
    worst = max(abs(a["logprob"] - b["logprob"]) for a, b in zip(back["steps"], ours["steps"]))
    check(worst == 0.0, f"{name}: the f32 export's logprobs in distill equal the source's exactly ({worst})")
    return model


def round_trip_stages(distill, src, out, work):
    """generate, eval and train take the export as they take the source."""
    db = os.path.join(work, "rt.db")
    run(distill, "data", "synth", "--db", db, "--task", "chain", "--n", "8", "--difficulty", "1", "--seed", "5")
    for model in (src, out):
        # the same weights are one model in the store (its sha256), so the export draws under another seed
        r = run(distill, "generate", "--db", db, "--teacher", model, "--samples", "1", "--limit", "4", "--temperature",
                "0", "--max-tokens", "24", "--seed", "1" if model == src else "2")
        check("new samples" in r.stdout, f"generate on {os.path.basename(model)}: {r.stdout.strip()}")
    import sqlite3
    con = sqlite3.connect(db)
    rows = con.execute("SELECT run_id, problem_id, completion FROM samples ORDER BY problem_id").fetchall()
    by = {}
    for run_id, pid, text in rows:
        by.setdefault(pid, {})[run_id] = text
    same = all(len(v) == 2 and len(set(v.values())) == 1 for v in by.values())
    check(same and len(by) == 4, "greedy samples of the export (its R1 chat template) = the source's (R1 format)")
    e = json.loads(run(distill, "eval", "--db", db, "--model", out, "--split", "train", "--limit", "3", "--greedy",
                       "--max-tokens", "16", "--json").stdout)
    check(e["prompt_format"] == "chat_template", "eval on the export prompts with its chat template")
    run(distill, "data", "review", "--db", db, "--all-pending", "--accept", "--reason", "rt")
    t = json.loads(run(distill, "train", "--db", db, "--student", out, "--out", os.path.join(work, "rt_student"),
                       "--steps", "2", "--max-seq-len", "96", "--batch-tokens", "384", "--val-fraction", "0",
                       "--json").stdout)
    check(t["last_step"] == 2, "train fine-tunes the export")


def main():
    distill, fixtures, teacher, work = sys.argv[1:5]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    sp = sp_student(distill, work, teacher)
    cases = [("sp_student", sp), ("llama", os.path.join(fixtures, "models", "llama")),
             ("qwen3", os.path.join(fixtures, "models", "qwen3")), ("mixtral", os.path.join(fixtures, "models", "mixtral"))]
    for name, src in cases:
        out = os.path.join(work, name + "_hf")
        r = run(distill, "export", "--model", src, "--format", "hf", "--out", out, "--force", "--json")
        print(f"{name}: {json.loads(r.stdout)['tokenizer']}")
        check_model(distill, src, out, name)
    round_trip_stages(distill, sp, os.path.join(work, "sp_student_hf"), work)

    # shards with an index above --max-shard-size load as one file does
    out = os.path.join(work, "sharded")
    run(distill, "export", "--model", sp, "--format", "hf", "--out", out, "--max-shard-size", "300KB")
    shards = [f for f in os.listdir(out) if f.endswith(".safetensors")]
    check(len(shards) > 1 and os.path.exists(os.path.join(out, "model.safetensors.index.json")), f"{len(shards)} shards and an index")
    a = T.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    b = T.AutoModelForCausalLM.from_pretrained(os.path.join(work, "sp_student_hf"), dtype=torch.float32)
    ids = torch.tensor([[1, 20, 30, 40, 50]])
    with torch.no_grad():
        check(torch.equal(a(ids).logits, b(ids).logits), "the sharded export's logits = the single file's")

    # bf16, and the recommended sampling in generation_config.json
    out = os.path.join(work, "qwen3_bf16")
    run(distill, "export", "--model", os.path.join(fixtures, "models", "qwen3"), "--format", "hf", "--dtype", "bf16",
        "--out", out, "--temperature", "0.6", "--top-p", "0.95")
    m = T.AutoModelForCausalLM.from_pretrained(out)
    check(m.dtype == torch.bfloat16 and json.load(open(os.path.join(out, "config.json")))["dtype"] == "bfloat16", "bf16 export loads as bf16")
    g = T.GenerationConfig.from_pretrained(out)
    check(g.do_sample is True and g.temperature == 0.6 and g.top_p == 0.95, "generation_config.json recommends T 0.6, top-p 0.95")
    check(complete(distill, out, PROMPT, 4)["ids"] is not None, "distill complete runs on the bf16 export")

    # bad input: exit 2, nothing overwritten, no temporary left behind
    before = sorted(os.listdir(out))
    r = run(distill, "export", "--model", sp, "--format", "hf", "--out", out, check=False)
    check(r.returncode == 2 and "--force" in r.stderr and sorted(os.listdir(out)) == before, "an existing --out needs --force")
    r = run(distill, "export", "--model", sp, "--format", "hf", "--dtype", "q8_0", "--out", os.path.join(work, "x"), check=False)
    check(r.returncode == 2 and "q8_0" in r.stderr and not os.path.exists(os.path.join(work, "x")), "q8_0 is refused for hf")
    check(not [f for f in os.listdir(work) if ".distill-" in f], "no temporary export left behind")
    print("all hf export checks passed")


if __name__ == "__main__":
    main()
