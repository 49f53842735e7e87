#!/usr/bin/env python3
"""tests/kill/test_kill9.py: kill -9 at a random moment in every command that writes, then check what it left.

For each command an uninterrupted reference run comes first (its time T and its final state). Then each trial starts
the same command on a fresh copy of its input, kills it with SIGKILL after a random delay in [0, 1.1 T], and checks:
  - the store passes PRAGMA integrity_check, and its full-text index agrees with the samples (FTS5 integrity-check);
  - nothing committed was lost: a reader polled the store while the command ran (the journal: rows, their largest
    id, curation actions), and every row it saw is still there; a command that printed its summary is complete;
  - an action that is one transaction (filter, dedup, decontaminate, review, a studio bulk action) is all or nothing:
    the store is as it was before, or as the reference left it;
  - no half-written file sits under a final name: an export's folder is absent or equal to the reference's, every
    checkpoint folder train left loads on --resume;
  - rerunning (or resuming) finishes with the same final store and files as the uninterrupted run.
Usage: test_kill9.py DISTILL SOURCE_DIR WORK_DIR [--trials N] [--seed S] [--only NAME,...] [--verbose]
  --trials: per command (default 5: 55 trials over 11 commands); the longer mode for notes is --trials 30."""
import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ENV = {**os.environ, "DISTILL_QUIET": "1", "OMP_NUM_THREADS": "1"}


def sh(distill, *args, check=True, **kw):
    r = subprocess.run([distill, *map(str, args)], capture_output=True, text=True, env=ENV, **kw)
    if check and r.returncode != 0:
        raise SystemExit(f"distill {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr[-2000:]}")
    return r


def query(db, sql, *params):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


FAILURES = []  # what check() saw fail, for the scripts that report checks one by one (concurrency, full disk)


def check(ok, what):
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        FAILURES.append(what)


def digest_rows(rows):
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps(r, ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def store_digest(db):
    """What a run's result means, free of ids, times and run rows: problems, samples with their statuses, and the
    curation actions that decided something."""
    problems = query(db, "SELECT content_hash, split, answer FROM problems ORDER BY content_hash")
    samples = query(db, """SELECT p.content_hash, s.sample_idx, s.seed, s.completion, s.verdict, s.n_tokens,
                                  coalesce(st.status, 'pending')
                           FROM samples s JOIN problems p ON p.id = s.problem_id
                           LEFT JOIN sample_states st ON st.sample_id = s.id
                           ORDER BY p.content_hash, s.sample_idx, s.seed, s.completion""")
    actions = query(db, """SELECT a.kind, count(e.sample_id) FROM curation_actions a
                           JOIN curation_effects e ON e.action_id = a.id GROUP BY a.id ORDER BY a.id""")
    return digest_rows(problems) + "/" + digest_rows(samples) + "/" + digest_rows(actions)


def statuses_digest(db):
    return digest_rows(query(db, "SELECT s.id, coalesce(st.status, 'pending') FROM samples s "
                                 "LEFT JOIN sample_states st ON st.sample_id = s.id ORDER BY s.id"))


def integrity(db):
    """integrity_check and the FTS index, on a copy in another folder (the check writes to the FTS table, and the
    store's own disk may be full)."""
    if not os.path.exists(db):
        return None
    copy = os.path.join(tempfile.gettempdir(), f"distill-check-{os.getpid()}-{threading.get_ident()}.db")
    for suffix in ("", "-wal"):
        if os.path.exists(db + suffix):
            shutil.copy(db + suffix, copy + suffix)
    con = sqlite3.connect(copy)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchall()
        if ok != [("ok",)]:
            return f"integrity_check: {ok[:3]}"
        try:
            con.execute("INSERT INTO samples_fts(samples_fts) VALUES('integrity-check')")
        except sqlite3.DatabaseError as e:
            return f"the full-text index disagrees with the samples: {e}"
    finally:
        con.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(copy + suffix):
                os.remove(copy + suffix)
    return None


def files_digest(folder):
    if not os.path.isdir(folder):
        return None
    out = {}
    for d, _, fs in os.walk(folder):
        for f in fs:
            p = os.path.join(d, f)
            out[os.path.relpath(p, folder)] = hashlib.sha256(open(p, "rb").read()).hexdigest()[:16]
    return out


class Journal(threading.Thread):
    """A reader beside the command: what the store showed as committed, polled until stopped."""

    def __init__(self, db):
        super().__init__(daemon=True)
        self.db, self.stop_flag, self.seen = db, threading.Event(), None

    def run(self):
        while not self.stop_flag.is_set():
            try:
                row = query(self.db, "SELECT (SELECT count(*) FROM samples), (SELECT coalesce(max(id), 0) FROM samples),"
                                     " (SELECT count(*) FROM problems), (SELECT count(*) FROM curation_actions)")[0]
                self.seen = row
            except sqlite3.Error:
                pass  # not created yet, or the schema is being written
            self.stop_flag.wait(0.02)

    def check(self):
        if self.seen is None or not os.path.exists(self.db):
            return []
        n, max_id, problems, actions = self.seen
        now = query(self.db, "SELECT (SELECT count(*) FROM samples WHERE id <= ?), (SELECT count(*) FROM problems),"
                             " (SELECT count(*) FROM curation_actions)", max_id)[0]
        fails = []
        if now[0] != n:
            fails.append(f"samples seen committed: {n} up to id {max_id}; after the kill {now[0]}")
        if now[1] < problems:
            fails.append(f"problems seen committed: {problems}; after the kill {now[1]}")
        if now[2] < actions:
            fails.append(f"curation actions seen committed: {actions}; after the kill {now[2]}")
        return fails


# ---- the commands ------------------------------------------------------------------------------------------


class Command:
    """One command under test. prepare() makes the trial's inputs in `d`; start() launches it (a Popen); finish()
    reruns or resumes it to the end; result() is the final state compared with the reference's."""
    atomic = False  # one transaction: after a kill, the store is as before or as the reference left it
    db_name = "s.db"

    def __init__(self, h):
        self.h = h

    def db(self, d):
        return os.path.join(d, self.db_name)

    def prepare(self, d):
        shutil.copy(self.h.samples_db, self.db(d))

    def argv(self, d):
        raise NotImplementedError

    def start(self, d):
        return subprocess.Popen([self.h.distill, *map(str, self.argv(d))], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=ENV)

    def finish(self, d):
        r = sh(self.h.distill, *self.argv(d), check=False)
        return None if r.returncode == 0 else f"the rerun exited {r.returncode}: {r.stderr[-300:]}"

    def result(self, d):
        return store_digest(self.db(d))

    def after_kill(self, d, out):
        """Checks of files, and of a printed summary; a list of failures."""
        return []


class Import(Command):
    def prepare(self, d):
        shutil.copy(self.h.base_db, self.db(d))

    def argv(self, d):
        return ["data", "import", "--db", self.db(d), "--format", "sharegpt", "--gold-field", "answer", self.h.samples_jsonl]


class Curation(Command):
    atomic = True

    def __init__(self, h, *args):
        super().__init__(h)
        self.args = args

    def argv(self, d):
        return [*self.args[:2], "--db", self.db(d), *self.args[2:]]


class Merge(Command):
    def prepare(self, d):
        pass  # merged into a new store

    def argv(self, d):
        return ["data", "merge", "--db", self.db(d), *self.h.shards]


class Generate(Command):
    def prepare(self, d):
        shutil.copy(self.h.small_db, self.db(d))

    def teacher(self):
        return self.h.teacher

    def argv(self, d):
        return ["generate", "--db", self.db(d), "--teacher", self.teacher(), "--samples", "2", "--max-tokens", "48",
                "--batch", "8", "--commit-every", "4", "--seed", "3", "--temperature", "0.8"]

    def after_kill(self, d, out):
        m = re.search(r"generate: (\d+) new samples", out)
        if m and query(self.db(d), "SELECT count(*) FROM samples")[0][0] < int(m.group(1)):
            return [f"generate printed {m.group(1)} new samples, fewer are stored"]
        return []


class GenerateRemote(Generate):
    def teacher(self):
        return self.h.serve_url()

    def argv(self, d):
        return [*super().argv(d), "--teacher-model", "demo-teacher", "--concurrency", "4"]


class Train(Command):
    def prepare(self, d):
        shutil.copy(self.h.kept_db, self.db(d))

    def argv(self, d):
        return ["train", "--db", self.db(d), "--out", os.path.join(d, "student"), "--tokenizer", self.h.teacher,
                "--steps", "24", "--save-every", "4", "--max-seq-len", "128", "--batch-tokens", "512", "--eval-every", "0",
                "--warmup", "2", "--seed", "1", "--threads", "1", "--log-every", "0"]

    def finish(self, d):
        # --resume continues from the newest checkpoint; with none written yet, the run starts over
        has_ckpt = any(f.startswith("checkpoint-") for f in os.listdir(d))
        args = self.argv(d) + (["--resume"] if has_ckpt or os.path.isdir(os.path.join(d, "student")) else [])
        r = sh(self.h.distill, *args, check=False)
        return None if r.returncode == 0 else f"the resume exited {r.returncode}: {r.stderr[-400:]}"

    def result(self, d):
        return files_digest(os.path.join(d, "student")).get("model.safetensors")

    def after_kill(self, d, out):
        final = files_digest(os.path.join(d, "student"))
        if final is not None and final.get("model.safetensors") not in (None, self.h.reference[self.name]):
            return ["a model.safetensors under the final name differs from the reference's"]
        return []


class Export(Command):
    def prepare(self, d):
        pass

    def argv(self, d):
        return ["export", "--model", self.h.teacher, "--format", "hf", "--dtype", "bf16", "--out", os.path.join(d, "out")]

    def finish(self, d):
        if os.path.isdir(os.path.join(d, "out")):
            return None  # it finished before the kill (checked in after_kill)
        return super().finish(d)

    def result(self, d):
        return files_digest(os.path.join(d, "out"))

    def after_kill(self, d, out):
        got = files_digest(os.path.join(d, "out"))
        if got is not None and got != self.h.reference[self.name]:
            return ["a partial export sits under the final name"]
        return []


PENDING = ("SELECT count(*) FROM samples s LEFT JOIN sample_states st ON st.sample_id = s.id "
           "WHERE coalesce(st.status, 'pending') = 'pending'")


class StudioBulk(Command):
    """A bulk reject in `distill studio`, the studio killed while it answers."""
    atomic = True

    def argv(self, d):
        return ["studio", "--db", self.db(d), "--port", "0", "--user", "kill9"]

    def start(self, d):
        p = subprocess.Popen([self.h.distill, *self.argv(d)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=ENV)
        line, deadline = "", time.time() + 30
        while "open http" not in line and time.time() < deadline and p.poll() is None:
            line = p.stdout.readline()
        m = re.search(r"(http://[^/]+)/\?token=([0-9a-f]+)", line)
        if not m:
            p.kill()
            raise SystemExit(f"studio printed no URL: {line!r}")
        base, token = m.group(1), m.group(2)
        hdr = {"X-Distill-Token": token, "Content-Type": "application/json"}
        stamp = json.load(urllib.request.urlopen(urllib.request.Request(
            base + "/api/count?status=pending&stamp=1", headers=hdr)))["stamp"]
        body = json.dumps({"query": {"status": "pending"}, "decision": "reject", "reason": "kill -9", "stamp": stamp})

        def post():
            try:
                urllib.request.urlopen(urllib.request.Request(base + "/api/bulk", body.encode(), hdr), timeout=60).read()
            except Exception:
                pass  # the server was killed under it
        threading.Thread(target=post, daemon=True).start()
        return p

    def finish(self, d):
        p = self.start(d)
        deadline = time.time() + 60
        while time.time() < deadline and query(self.db(d), PENDING)[0][0]:
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        return None

    def run_reference(self, d):
        return self.finish(d)


# ---- the harness ---------------------------------------------------------------------------------------------


class Harness:
    def __init__(self, distill, src, work):
        self.distill, self.work = distill, work
        self.teacher = os.path.join(src, "models", "demo-teacher")
        self.reference, self._serve, self.verbose = {}, None, False
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        self.make_inputs()

    def path(self, name):
        return os.path.join(self.work, name)

    def make_inputs(self):
        """Problems; 20,000 imported samples with exact and near duplicates, wrong answers and code blocks (enough that
        the curation commands take a while); four shards of them; a store with kept samples to train on."""
        self.base_db = self.path("base.db")
        sh(self.distill, "data", "synth", "--db", self.base_db, "--task", "chain", "--split", "train", "--n", "400", "--seed", "1")
        sh(self.distill, "data", "synth", "--db", self.base_db, "--task", "chain", "--split", "eval", "--n", "40", "--seed", "2")
        problems = query(self.base_db, "SELECT prompt, answer FROM problems WHERE split = 'train' ORDER BY id")
        rnd = random.Random(7)
        words = "first then carry add subtract so the result is we get check again".split()
        lines = []
        for i in range(20000):
            prompt, answer = problems[i % len(problems)]
            steps = " ".join(rnd.choice(words) for _ in range(rnd.randint(20, 120)))
            if i >= len(problems) and i % 7 in (0, 3):  # the same problem's earlier sample: exact, or one word changed
                earlier = lines[i - len(problems)]["conversations"][1]["value"]
                steps = earlier.split("</think>")[0][len("<think>\n"):]
                if i % 7 == 3:
                    steps = steps.replace(" the ", " a ", 1)
            if i % 13 == 0:
                steps += "\n```\nprint(1)\n```"
            final = answer if i % 4 else str(int(answer) + 1) if answer.lstrip("-").isdigit() else answer + "0"
            lines.append({"conversations": [{"from": "human", "value": prompt},
                                            {"from": "gpt", "value": f"<think>\n{steps}\n</think>\n\\boxed{{{final}}}"}],
                          "answer": answer})
        self.samples_jsonl = self.path("samples.jsonl")
        with open(self.samples_jsonl, "w") as f:
            for l in lines:
                f.write(json.dumps(l) + "\n")
        self.samples_db = self.path("samples.db")
        shutil.copy(self.base_db, self.samples_db)
        sh(self.distill, "data", "import", "--db", self.samples_db, "--format", "sharegpt", self.samples_jsonl)
        self.shards = []
        for k in range(4):
            part = self.path(f"shard{k}.jsonl")
            with open(part, "w") as f:
                for l in lines[k::4]:
                    f.write(json.dumps(l) + "\n")
            shard = self.path(f"shard{k}.db")
            shutil.copy(self.base_db, shard)
            sh(self.distill, "data", "import", "--db", shard, "--format", "sharegpt", part)
            self.shards.append(shard)
        self.small_db = self.path("small.db")
        sh(self.distill, "data", "synth", "--db", self.small_db, "--task", "chain", "--split", "train", "--n", "48", "--seed", "4")
        self.kept_db = self.path("kept.db")
        shutil.copy(self.samples_db, self.kept_db)
        sh(self.distill, "data", "review", "--db", self.kept_db, "--all-pending", "--accept", "--reason", "train on all")

    def serve_url(self):
        if self._serve is None:
            p = subprocess.Popen([self.distill, "serve", "--model", self.teacher, "--port", "0", "--batch", "8"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
            line = p.stdout.readline()
            m = re.search(r"listening on (http://\S+)", line)
            if not m:
                p.kill()
                raise SystemExit(f"serve printed no URL: {line!r} {p.stderr.read()[-500:]}")
            url = m.group(1).rstrip("/")
            self._serve = (p, url if url.endswith("/v1") else url + "/v1")
        return self._serve[1]

    def close(self):
        if self._serve:
            self._serve[0].terminate()
            self._serve[0].wait(30)

    def fresh(self, name):
        d = self.path(name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        return d

    def reference_run(self, cmd):
        d = self.fresh(f"{cmd.name}-reference")
        cmd.prepare(d)
        t0 = time.perf_counter()
        if isinstance(cmd, StudioBulk):
            cmd.run_reference(d)
        else:
            err = cmd.finish(d)
            if err:
                raise SystemExit(f"{cmd.name}: the reference run failed: {err}")
        seconds = time.perf_counter() - t0
        self.reference[cmd.name] = cmd.result(d)
        return seconds, d

    def trial(self, cmd, k, delay, before):
        d = self.fresh(f"{cmd.name}-{k}")
        cmd.prepare(d)
        journal = Journal(cmd.db(d))
        journal.start()
        p = cmd.start(d)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate()
        self.landed = p.returncode == -signal.SIGKILL  # else it had ended by itself: the trial tested the rerun only
        journal.stop_flag.set()
        journal.join()
        fails = []
        bad = integrity(cmd.db(d))
        if bad:
            fails.append(bad)
        else:
            fails += journal.check() if os.path.exists(cmd.db(d)) else []
            if cmd.atomic and statuses_digest(cmd.db(d)) not in before:
                fails.append("the action is half applied: the statuses are neither the original nor the final ones")
        fails += cmd.after_kill(d, out or "")
        err = cmd.finish(d)
        if err:
            fails.append(err)
        elif cmd.result(d) != self.reference[cmd.name]:
            fails.append("the rerun's final state differs from the uninterrupted run's")
        bad = integrity(cmd.db(d))
        if bad:
            fails.append("after the rerun: " + bad)
        # what the killed run left beside its outputs (temporary names) and the rerun did not clear
        self.leftovers = sorted(set(os.listdir(d)) - set(os.listdir(self.path(f"{cmd.name}-reference"))))
        if self.verbose:
            print(f"    trial {k}: killed at {delay:.2f} s ({'while running' if self.landed else 'after the end'}), "
                  f"journal {journal.seen}, left {self.leftovers}", flush=True)
        shutil.rmtree(d, ignore_errors=True)
        return fails


def commands(h):
    spec = [
        ("import", Import(h)), ("filter", Curation(h, "data", "filter", "--r1", "--apply")),
        ("dedup", Curation(h, "data", "dedup", "--apply")),
        ("decontaminate", Curation(h, "data", "decontaminate", "--apply", "--ngram", "4")),
        ("review", Curation(h, "data", "review", "--all-pending", "--reject", "--reason", "kill")),
        ("merge", Merge(h)), ("generate", Generate(h)), ("generate-remote", GenerateRemote(h)), ("train", Train(h)),
        ("export", Export(h)), ("studio-bulk", StudioBulk(h)),
    ]
    for name, c in spec:
        c.name = name
    return [c for _, c in spec]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("distill")
    ap.add_argument("src")
    ap.add_argument("work")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    ap.add_argument("--only", default="")
    ap.add_argument("--verbose", action="store_true", help="a line per trial: when it was killed, what the journal saw")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    print(f"kill -9 harness: seed {a.seed} (rerun with --seed {a.seed}), {a.trials} trials per command", flush=True)
    h = Harness(a.distill, a.src, a.work)
    h.verbose = a.verbose
    table, failed = [], 0
    try:
        for cmd in commands(h):
            if a.only and cmd.name not in a.only.split(","):
                continue
            seconds, ref_dir = h.reference_run(cmd)
            # an action of one transaction leaves the statuses as they were, or as the reference run left them
            before = {statuses_digest(h.samples_db), statuses_digest(cmd.db(ref_dir))} if cmd.atomic else set()
            assert not cmd.atomic or len(before) == 2, f"{cmd.name}: the reference run changed no status"
            lost = corrupt = identical = landed = 0
            for k in range(a.trials):
                delay = rnd.uniform(0, 1.1 * seconds)
                fails = h.trial(cmd, k, delay, before)
                landed += h.landed
                lost += any("seen committed" in f or "printed" in f or "half applied" in f for f in fails)
                corrupt += any("integrity" in f or "full-text" in f or "partial" in f or "final name" in f for f in fails)
                identical += not any("rerun" in f or "resume" in f for f in fails)
                for f in fails:
                    print(f"  FAIL {cmd.name} trial {k} (killed at {delay:.2f} s of {seconds:.2f}): {f}", flush=True)
                failed += bool(fails)
            table.append((cmd.name, a.trials, landed, seconds, lost, corrupt, identical))
            print(f"{cmd.name:16s} {a.trials:3d} trials ({landed} killed while running), reference {seconds:6.2f} s: "
                  f"lost {lost}, corrupt {corrupt}, reruns identical {identical}/{a.trials}", flush=True)
    finally:
        h.close()
    print("| command | trials | killed while running | reference run | rows lost | corrupt files | reruns identical |")
    print("|---|---|---|---|---|---|---|")
    for name, n, landed, s, lost, corrupt, ident in table:
        print(f"| {name} | {n} | {landed} | {s:.2f} s | {lost} | {corrupt} | {ident}/{n} |")
    print(f"{sum(r[1] for r in table)} trials, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
