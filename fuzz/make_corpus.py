#!/usr/bin/env python3
"""fuzz/make_corpus.py DISTILL BUILD_DIR: writes the fuzz targets' seed corpora, fuzz/corpus/NAME/, from real
outputs of distill's own writers (and of the transformers/tokenizers fixtures the tests already make).

It runs, in a scratch folder: `data synth` (every task), `generate` with the demo teacher and top-k logprobs,
`data review --accept`, a one-step `train --lora-rank` on the transformers-saved Llama fixture, `export --format
hf` of the demo teacher, and `distill serve` answered over HTTP. The seeds are then:
  safetensors      the LoRA adapter's adapter_model.safetensors (our writer)
  tokenizer_json   the export's tokenizer.json (our SentencePiece -> tokenizer.json writer), the fixtures' ones
  chat_template    the export's chat_template.jinja, the fixtures' templates
  answer           stored completions, NUL, their gold answers; synth solutions, NUL, answers
  jsonl_import     problems as jsonl, gsm8k and math lines
  topk             stored KD blobs, after one byte holding their k
  toml_config      the runs' resolved configs, cut to the fuzz target's keys
  openai_request   request bodies as the openai client sends them
  openai_response  serve's whole responses (chat and completions)
  sse              serve's streamed responses, after one byte (the piece size)
  studio_request   what the studio page sends: a filter query line, then a review, bulk or undo body (real ids,
                   action ids and stamps from `distill studio` on the scratch store)
Needs the build's HF fixtures (ctest -R hf_fixtures). Deterministic up to serve's ids and timestamps.
Usage: make_corpus.py build/bin/distill build [--only studio_request]   (--only: that target's seeds, others kept)"""
import glob
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
MAX = 65536  # scripts/fuzz's -max_len


def run(*args):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, env={**os.environ, "DISTILL_QUIET": "1"})
    if r.returncode != 0:
        raise SystemExit(f"make_corpus: {' '.join(map(str, args[:3]))} exited {r.returncode}: {r.stderr[-500:]}")
    return r.stdout


def seed(name, data):
    if isinstance(data, str):
        data = data.encode()
    if not data or len(data) > MAX:
        return
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def serve_seeds(distill, teacher):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([distill, "serve", "--model", teacher, "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        bodies = [
            ("chat/completions", {"model": "demo-teacher", "messages": [{"role": "user", "content": "What is 2 + 3?"}], "max_tokens": 12,
                                  "temperature": 0, "logprobs": True, "top_logprobs": 3}),
            ("chat/completions", {"model": "demo-teacher", "messages": [{"role": "system", "content": "Be brief."},
                                                             {"role": "user", "content": "Start at 4, add 5."}],
                                  "max_tokens": 16, "n": 2, "seed": 7, "stop": ["\n\n"]}),
            ("completions", {"model": "demo-teacher", "prompt": "Start at 7. Then add 2.", "max_tokens": 10, "logprobs": 2}),
        ]
        for path, body in bodies:
            for stream in (False, True):
                b = dict(body, stream=stream)
                if stream:
                    b["stream_options"] = {"include_usage": True}
                raw = json.dumps(b).encode()
                seed("openai_request", raw)
                req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/{path}", raw, {"Content-Type": "application/json"})
                out = urllib.request.urlopen(req, timeout=60).read()
                if stream:
                    for step in (1, 7, 16):
                        seed("sse", bytes([step - 1]) + out)
                    for line in out.split(b"\n"):  # a chunk's data is what the accumulator reads
                        if line.startswith(b"data: "):
                            seed("openai_response", line[6:])
                else:
                    seed("openai_response", out)
        bad = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", b'{"model": 1}',
                                     {"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(bad, timeout=10)
        except urllib.error.HTTPError as e:
            seed("openai_response", e.read())  # an error body
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def studio_seeds(distill, db):
    proc = subprocess.Popen([distill, "studio", "--db", db, "--port", "0", "--user", "corpus"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = ""
        while "open http" not in line:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise SystemExit("make_corpus: studio printed no URL")
        base, token = line.split("open ", 1)[1].split("/?token=")
        token = token.strip()
        hdr = {"X-Distill-Token": token, "Content-Type": "application/json"}

        def call(path, body=None):
            req = urllib.request.Request(base + path, None if body is None else json.dumps(body).encode(), hdr)
            return json.load(urllib.request.urlopen(req, timeout=30))
        queries = ["status=pending&sort=tokens&limit=50", "verdict=correct&split=train", "search=carry&limit=20",
                   "status=kept,rejected&min_tokens=10&max_tokens=200", "after=12:12&limit=100", "problem=3", ""]
        first = call("/api/samples?status=kept&limit=3")["samples"]
        review = {"ids": [first[0]["id"]], "decision": "reject", "reason": "too long",
                  "seen": {str(first[0]["id"]): first[0]["status_action"]}}
        done = call("/api/review", review)
        stamp = call("/api/count?status=kept&stamp=1")["stamp"]
        bulk = {"query": {"status": "kept", "search": None}, "decision": "reject", "reason": "bulk", "stamp": stamp}
        bulk_done = call("/api/bulk", bulk)
        undo = {"action_id": bulk_done["action_id"]}
        call("/api/undo", undo)
        for q, body in zip(queries, [review, bulk, undo, {"ids": [s["id"] for s in first], "decision": "keep"},
                                     {"action_id": done["action_id"]}, review, bulk]):
            seed("studio_request", q + "\n" + json.dumps(body))
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main():
    distill, build = sys.argv[1], sys.argv[2]
    if sys.argv[3:] == ["--only", "studio_request"]:
        shutil.rmtree(os.path.join(OUT, "studio_request"), ignore_errors=True)
        work = tempfile.mkdtemp(prefix="distill-corpus-")
        try:
            db = os.path.join(work, "s.db")
            run(distill, "data", "synth", "--db", db, "--task", "all", "--n", "30", "--difficulty", "1-3")
            run(distill, "generate", "--db", db, "--teacher", os.path.join(ROOT, "models", "demo-teacher"), "--samples", "1",
                "--limit", "12", "--max-tokens", "64")
            run(distill, "data", "review", "--db", db, "--all-pending", "--accept")
            studio_seeds(distill, db)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"make_corpus: studio_request: {len(os.listdir(os.path.join(OUT, 'studio_request')))} seeds")
        return
    fixtures = os.path.join(build, "fixtures", "hf")
    teacher = os.path.join(ROOT, "models", "demo-teacher")
    if not os.path.isdir(os.path.join(fixtures, "models")):
        raise SystemExit(f"make_corpus: no HF fixtures in {fixtures}: run `ctest -R hf_fixtures` first")
    shutil.rmtree(OUT, ignore_errors=True)
    work = tempfile.mkdtemp(prefix="distill-corpus-")
    try:
        db = os.path.join(work, "s.db")
        run(distill, "data", "synth", "--db", db, "--task", "all", "--n", "60", "--difficulty", "1-3")
        run(distill, "generate", "--db", db, "--teacher", teacher, "--samples", "1", "--limit", "12", "--max-tokens", "64",
            "--topk-logprobs", "4")
        run(distill, "data", "review", "--db", db, "--all-pending", "--accept")
        base = os.path.join(fixtures, "models", "llama")
        adapter = os.path.join(work, "adapter")
        run(distill, "train", "--db", db, "--student", base, "--tokenizer", base, "--lora-rank", "1", "--lora-targets",
            "q_proj,v_proj", "--steps", "1", "--max-seq-len", "128", "--batch-tokens", "256", "--out", adapter)
        seed("safetensors", open(os.path.join(adapter, "adapter_model.safetensors"), "rb").read())
        export = os.path.join(work, "export")
        run(distill, "export", "--model", teacher, "--format", "hf", "--out", export)
        seed("tokenizer_json", open(os.path.join(export, "tokenizer.json"), "rb").read())
        seed("chat_template", open(os.path.join(export, "chat_template.jinja"), "rb").read())
        for f in glob.glob(os.path.join(fixtures, "**", "tokenizer.json"), recursive=True):
            seed("tokenizer_json", open(f, "rb").read())
        for f in glob.glob(os.path.join(fixtures, "**", "*.jinja"), recursive=True):
            seed("chat_template", open(f, "rb").read())

        con = sqlite3.connect(db)
        for completion, answer in con.execute(
                "SELECT s.completion, p.answer FROM samples s JOIN problems p ON p.id = s.problem_id LIMIT 12"):
            seed("answer", completion.encode() + b"\0" + answer.encode())
        for prompt, answer, solution, source in con.execute(
                "SELECT prompt, answer, solution, source FROM problems ORDER BY id LIMIT 40"):
            if solution:
                seed("answer", solution.encode() + b"\0" + answer.encode())
            seed("jsonl_import", json.dumps({"prompt": prompt, "answer": answer, "solution": solution}) + "\n")
            seed("jsonl_import", json.dumps({"question": prompt, "answer": f"{solution or ''}\n#### {answer}"}) + "\n")
            seed("jsonl_import", json.dumps({"problem": prompt, "solution": solution or f"\\boxed{{{answer}}}",
                                             "level": "Level 2", "type": source}) + "\n")
        for k, blob in con.execute("SELECT k, blob FROM sample_logprobs LIMIT 8"):
            seed("topk", bytes([k]) + blob)
        keys = {"db", "split", "steps", "lr", "seed", "force"}
        for (cfg,) in con.execute("SELECT config_toml FROM runs"):
            kept = [line for line in cfg.splitlines() if line.split("=")[0].strip().replace("_", "-") in keys]
            seed("toml_config", "\n".join(kept) + "\n")
            seed("toml_config", cfg)  # an unknown key first: the refusal path
        con.close()
        serve_seeds(distill, teacher)
        studio_seeds(distill, db)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name in sorted(os.listdir(OUT)):
        print(f"make_corpus: {name}: {len(os.listdir(os.path.join(OUT, name)))} seeds")


if __name__ == "__main__":
    main()
