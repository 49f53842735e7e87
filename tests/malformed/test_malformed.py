#!/usr/bin/env python3
"""tests/malformed/test_malformed.py: runs every case of the bad-input corpus (tests/fixtures/malformed, written by
its gen_malformed.py) through the real binary. Each must exit 2 with a message that names the file and contains the
text expected.json gives for it (or each text of a list), and leave nothing written: no output directory, a store's rows and bytes as they
were, no -wal or -journal file beside a refused store.
Usage: test_malformed.py DISTILL SOURCE_DIR WORK_DIR [--show] [SUBSTRING...]   (--show prints every message)"""
import concurrent.futures
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys

# kind -> (the file name it takes inside its directory, or None for a file passed as it is; which base directory)
PLACED = {
    "safetensors": ("model.safetensors", "hf"), "safetensors_index": ("model.safetensors.index.json", "hf_sharded"),
    "hf_config": ("config.json", "hf"), "tokenizer_json": ("tokenizer.json", "hf"),
    "tokenizer_config": ("tokenizer_config.json", "hf_no_template"), "chat_template": ("chat_template.jinja", "hf"),
    "generation_config": ("generation_config.json", "hf"), "sentencepiece": ("tokenizer.model", "sp"),
    "adapter_config": ("adapter_config.json", "adapter"), "adapter_weights": ("adapter_model.safetensors", "adapter"),
}
IMPORT_FORMAT = {"import_jsonl": "jsonl", "import_gsm8k": "gsm8k", "import_math": "math",
                 "import_sharegpt": "sharegpt", "import_openai_chat": "openai-chat"}


def run(distill, args):
    return subprocess.run([distill, *args], capture_output=True, text=True, errors="replace",
                          env={**os.environ, "DISTILL_QUIET": "1"}, stdin=subprocess.DEVNULL, timeout=120)


def store_state(db):
    """A digest of every table's rows: what a refused command must leave as it found."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    dump = hashlib.sha256("\n".join(con.iterdump()).encode()).hexdigest()
    con.close()
    return dump


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


class Bases:
    def __init__(self, distill, src, work):
        self.distill, self.work = distill, work
        teacher = os.path.join(src, "models", "demo-teacher")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        self.dirs = {"sp": teacher, "hf": os.path.join(work, "base_hf")}
        r = run(distill, ["export", "--model", teacher, "--format", "hf", "--out", self.dirs["hf"]])
        assert r.returncode == 0, r.stderr
        # the same weights as one shard behind an index, and a copy whose template lives in tokenizer_config.json
        sharded = self.dirs["hf_sharded"] = os.path.join(work, "base_hf_sharded")
        shutil.copytree(self.dirs["hf"], sharded)
        os.rename(os.path.join(sharded, "model.safetensors"), os.path.join(sharded, "model-00001-of-00001.safetensors"))
        no_template = self.dirs["hf_no_template"] = os.path.join(work, "base_hf_no_template")
        shutil.copytree(self.dirs["hf"], no_template)
        os.remove(os.path.join(no_template, "chat_template.jinja"))
        adapter = self.dirs["adapter"] = os.path.join(work, "base_adapter")
        os.makedirs(adapter)
        valid = os.path.join(src, "tests", "fixtures", "malformed", "valid")
        text = open(os.path.join(valid, "adapter_config.json")).read().replace("@BASE@", teacher)
        open(os.path.join(adapter, "adapter_config.json"), "w").write(text)
        shutil.copy(os.path.join(valid, "adapter_model.safetensors"), adapter)
        # each base must itself be accepted, or a case could pass for the wrong reason
        for name in ("hf", "hf_no_template", "sp"):
            out = os.path.join(work, "check_" + name)
            r = run(distill, ["export", "--model", self.dirs[name], "--format", "hf", "--out", out])
            assert r.returncode == 0, f"base {name}: {r.stderr}"
        r = run(distill, ["export", "--model", adapter, "--merge-lora", "--format", "hf", "--out",
                          os.path.join(work, "check_adapter")])
        assert r.returncode == 0, f"base adapter: {r.stderr}"
        self.store = os.path.join(work, "store.db")
        for split, seed in (("train", 1), ("eval", 2)):
            r = run(distill, ["data", "synth", "--db", self.store, "--task", "chain", "--split", split, "--n", "4",
                              "--seed", str(seed)])
            assert r.returncode == 0, r.stderr


def attempt(b, corpus, key, expect):
    """Runs one case; returns (key, list of failures, the message)."""
    kind, name = key.split("/", 1)
    path = os.path.join(corpus, key)
    scratch = os.path.join(b.work, "case", key.replace("/", "__"))
    os.makedirs(scratch)
    out = os.path.join(scratch, "out")
    named = name
    after = []  # checks of what is left behind, each returning a failure or None

    if kind in PLACED:
        placed, base = PLACED[kind]
        model = os.path.join(scratch, "model")
        shutil.copytree(b.dirs[base], model)
        shutil.copy(path, os.path.join(model, placed))
        if base == "adapter" and placed.endswith(".json"):  # the base model's path, as the valid adapter has it
            with open(os.path.join(model, placed), "rb") as f:
                text = f.read().replace(b"@BASE@", b.dirs["sp"].encode())
            with open(os.path.join(model, placed), "wb") as f:
                f.write(text)
        named = placed
        args = ["export", "--model", model, "--format", "hf", "--out", out]
        if base == "adapter":
            args.insert(3, "--merge-lora")
        runs = [args]
    elif kind == "store":
        db = os.path.join(scratch, name)
        shutil.copy(path, db)
        before = sha(db)
        runs = [["data", "stats", "--db", db], ["data", "synth", "--db", db, "--task", "chain", "--n", "1"]]
        after.append(lambda: None if sha(db) == before else "the store's bytes changed")
        after.append(lambda: next((f"{s} left beside the store" for s in ("-wal", "-shm", "-journal")
                                   if os.path.exists(db + s)), None))
    elif kind == "config_toml":
        db = os.path.join(scratch, "new.db")
        runs = [["data", "synth", "--config", path, "--db", db, "--split", "train"]]
        after.append(lambda: "a store was created" if os.path.exists(db) else None)
    else:
        db = os.path.join(scratch, "store.db")
        shutil.copy(b.store, db)
        before = store_state(db)
        if kind in IMPORT_FORMAT:
            runs = [["data", "import", "--db", db, "--format", IMPORT_FORMAT[kind], path]]
        elif kind == "benchmark":
            runs = [["data", "decontaminate", "--db", db, "--benchmark", path, "--format", "jsonl"]]
        elif kind == "check_answers":
            runs = [["data", "check-answers", "--jsonl", path]]
        else:
            raise SystemExit(f"{key}: no runner for kind {kind}")
        after.append(lambda: None if store_state(db) == before else "the store's rows changed")
    after.append(lambda: "the output directory was written" if os.path.exists(out) else None)
    # nor anything else: a temporary file or folder left beside the output, or the model's folder, is a partial write
    inputs = set(os.listdir(scratch))
    after.append(lambda: next((f"{f} left behind" for f in sorted(set(os.listdir(scratch)) - inputs)), None))
    if kind in PLACED:
        listing = sorted(os.listdir(model))
        after.append(lambda: None if sorted(os.listdir(model)) == listing else "the model's folder changed")

    failures, message = [], ""
    for args in runs:
        r = run(b.distill, args)
        message = next((l for l in r.stderr.splitlines() if "error:" in l), r.stderr.strip()[-400:])
        if r.returncode != 2:
            failures.append(f"`distill {args[0]} {args[1]}` exited {r.returncode}, expected 2")
        if named not in message:
            failures.append(f"the message does not name the file {named}")
        for part in [expect] if isinstance(expect, str) else expect:
            if part not in message:
                failures.append(f"the message lacks {part!r}")
    failures += [f for f in (check() for check in after) if f]
    shutil.rmtree(scratch, ignore_errors=True)
    return key, failures, message


def main():
    argv = [a for a in sys.argv[1:] if a != "--show"]
    show = "--show" in sys.argv
    distill, src, work = argv[:3]
    only = argv[3:]
    corpus = os.path.join(src, "tests", "fixtures", "malformed")
    expected = json.load(open(os.path.join(corpus, "expected.json")))
    on_disk = {os.path.relpath(os.path.join(d, f), corpus) for d, _, fs in os.walk(corpus) for f in fs
               if os.path.relpath(d, corpus) not in (".", "valid")}
    assert on_disk == set(expected), f"files without an expected message, or the reverse: {on_disk ^ set(expected)}"
    assert len(expected) >= 100, len(expected)
    b = Bases(distill, src, work)
    keys = [k for k in sorted(expected) if not only or any(s in k for s in only)]
    bad = 0
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for key, failures, message in pool.map(lambda k: attempt(b, corpus, k, expected[k]), keys):
            if show or failures:
                print(f"{'FAIL' if failures else 'ok  '} {key}: {message}")
            for f in failures:
                print(f"       {f}")
            bad += bool(failures)
    kinds = len({k.split('/')[0] for k in keys})
    print(f"{len(keys) - bad}/{len(keys)} malformed inputs refused as expected ({kinds} kinds)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
