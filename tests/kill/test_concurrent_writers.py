#!/usr/bin/env python3
"""tests/kill/test_concurrent_writers.py: writers that meet on one store. Each case either serialises safely (the
store's busy timeout and IMMEDIATE transactions) or refuses with a clear message; nothing is lost or doubled.
  1. two `generate` runs with the same settings on one store: the samples of one run, once each; and with
     different seeds: both runs' samples;
  2. `data dedup --apply` while the studio reviews sample after sample: every review the studio answered 200 is in
     the log with its effect, a review of a sample that dedup decided meanwhile gets 409 (stale), never a 5xx, and
     every status equals the decision of the sample's latest action;
  3. `data merge` into a store that readers keep reading (`data stats`, `data list`, a direct SQLite reader), and
     two merges of the same shards at once: the readers never fail, every sample lands once.
Usage: test_concurrent_writers.py DISTILL SOURCE_DIR WORK_DIR"""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_kill9 import ENV, FAILURES, Harness, check, query, sh, store_digest  # noqa: E402  (the same inputs as the kill harness)

def start(distill, *args):
    return subprocess.Popen([distill, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def two_generates(h):
    gen = ["--teacher", h.teacher, "--samples", "2", "--max-tokens", "48", "--batch", "8", "--commit-every", "4",
           "--temperature", "0.8"]
    ref = h.path("gen-ref.db")
    shutil.copy(h.small_db, ref)
    sh(h.distill, "generate", "--db", ref, *gen, "--seed", "3")
    for seeds in ((3, 3), (3, 5)):
        db = h.path(f"gen-{seeds[1]}.db")
        shutil.copy(h.small_db, db)
        procs = [start(h.distill, "generate", "--db", db, *gen, "--seed", s) for s in seeds]
        outs = [p.communicate() + (p.returncode,) for p in procs]
        codes = [o[2] for o in outs]
        check(all(c == 0 for c in codes), f"two generate runs (seeds {seeds}) on one store both finish "
                                          f"(exit {codes}; {[o[1].strip()[-200:] for o in outs if o[2]]})")
        n, distinct = query(db, "SELECT count(*), count(DISTINCT problem_id || ':' || sample_idx || ':' || seed) FROM samples")[0]
        problems = query(db, "SELECT count(*) FROM problems WHERE split = 'train'")[0][0]
        want = problems * 2 * len(set(seeds))
        check(n == distinct == want, f"seeds {seeds}: {n} samples, {distinct} distinct, {want} expected: none lost or doubled")
        if seeds[0] == seeds[1]:
            check(store_digest(db) == store_digest(ref), "the same settings twice at once leave what one run leaves")


def dedup_while_reviewing(h):
    db = h.path("review.db")
    shutil.copy(h.samples_db, db)
    studio = start(h.distill, "studio", "--db", db, "--port", "0", "--user", "reviewer")
    line, deadline = "", time.time() + 30
    while "open http" not in line and time.time() < deadline:
        line = studio.stdout.readline()
    m = re.search(r"(http://[^/]+)/\?token=([0-9a-f]+)", line)
    assert m, line
    base, hdr = m.group(1), {"X-Distill-Token": m.group(2), "Content-Type": "application/json"}
    answers, stop = [], threading.Event()

    def reviewer():
        # the samples dedup will reject (the harness made sample i + 1 repeat an earlier one where i % 7 is 0 or 3)
        for sid in [i + 1 for i in range(400, 20000) if i % 7 in (0, 3)][::2]:
            if stop.is_set():
                break
            body = json.dumps({"ids": [sid], "decision": "keep", "reason": "looks right", "seen": {str(sid): None}})
            try:
                with urllib.request.urlopen(urllib.request.Request(base + "/api/review", body.encode(), hdr), timeout=60) as r:
                    answers.append((sid, r.status, json.load(r)))
            except urllib.error.HTTPError as e:
                answers.append((sid, e.code, json.loads(e.read() or b"{}")))
    t = threading.Thread(target=reviewer)
    t.start()
    time.sleep(0.3)
    dedups = [sh(h.distill, "data", "dedup", "--db", db, "--apply", check=False) for _ in range(2)]
    stop.set()
    t.join()
    studio.terminate()
    studio.wait(30)
    check(all(d.returncode == 0 for d in dedups), f"dedup --apply beside the studio finishes ({[d.returncode for d in dedups]}: "
                                                   f"{[d.stderr.strip()[-200:] for d in dedups if d.returncode]})")
    codes = sorted({c for _, c, _ in answers})
    check(set(codes) <= {200, 409} and 200 in codes, f"the studio answers every review 200 or 409 (stale), never 5xx: {codes}")
    stale = [a for a in answers if a[1] == 409]
    check(all("error" in a[2] for a in stale), f"a 409 says why ({len(stale)} stale reviews)")
    kept = [a for a in answers if a[1] == 200 and a[2].get("action_id")]
    logged = {r[0] for r in query(db, "SELECT a.id FROM curation_actions a WHERE a.actor = 'studio:reviewer'")}
    check(all(a[2]["action_id"] in logged for a in kept), f"each of the {len(kept)} reviews answered 200 is in the log")
    # every status is the decision of the sample's latest effect (the log and sample_states agree)
    mismatch = query(db, """WITH last AS (SELECT e.sample_id, max(e.action_id) AS a FROM curation_effects e
                                          JOIN curation_actions ca ON ca.id = e.action_id
                                          WHERE ca.undone_by IS NULL AND ca.kind <> 'undo' GROUP BY e.sample_id)
                            SELECT count(*) FROM samples s
                            LEFT JOIN sample_states st ON st.sample_id = s.id
                            LEFT JOIN last ON last.sample_id = s.id
                            LEFT JOIN curation_effects e ON e.sample_id = s.id AND e.action_id = last.a
                            WHERE coalesce(st.status, 'pending') <>
                                  CASE e.decision WHEN 'keep' THEN 'kept' WHEN 'reject' THEN 'rejected' ELSE 'pending' END""")[0][0]
    check(mismatch == 0, f"every status equals the decision of the sample's latest action ({mismatch} differ)")


def merge_while_reading(h):
    db = h.path("merged.db")
    shutil.copy(h.base_db, db)
    errors, reads, stop = [], [0], threading.Event()

    def cli_reader():
        while not stop.is_set():
            for args in (["data", "stats", "--db", db, "--json"], ["data", "list", "--db", db, "--limit", "5", "--json"]):
                r = sh(h.distill, *args, check=False)
                reads[0] += 1
                if r.returncode != 0:
                    errors.append(f"{args[1]}: exit {r.returncode}: {r.stderr.strip()[-200:]}")

    def sql_reader():
        while not stop.is_set():
            try:
                query(db, "SELECT count(*) FROM samples s JOIN problems p ON p.id = s.problem_id")
                reads[0] += 1
            except sqlite3.Error as e:
                errors.append(f"sqlite reader: {e}")
            time.sleep(0.01)
    readers = [threading.Thread(target=f) for f in (cli_reader, sql_reader)]
    for r in readers:
        r.start()
    merges = [start(h.distill, "data", "merge", "--db", db, *h.shards) for _ in range(2)]
    outs = [p.communicate() + (p.returncode,) for p in merges]
    stop.set()
    for r in readers:
        r.join()
    check(all(o[2] == 0 for o in outs), f"two merges of the same shards at once both finish ({[o[2] for o in outs]}: "
                                        f"{[o[1].strip()[-200:] for o in outs if o[2]]})")
    check(not errors, f"{reads[0]} reads beside the merges, none failed ({errors[:2]})")
    n, distinct = query(db, "SELECT count(*), count(DISTINCT problem_id || ':' || completion) FROM samples")[0]
    want = query(h.samples_db, "SELECT count(*) FROM samples")[0][0]
    check(n == want, f"{n} samples merged, {want} in the shards: none lost or doubled ({distinct} distinct texts)")
    check(store_digest(db) == store_digest(h.samples_db), "the merged store holds what one import of them all holds")


def main():
    distill, src, work = sys.argv[1:4]
    h = Harness(distill, src, work)
    try:
        two_generates(h)
        dedup_while_reviewing(h)
        merge_while_reading(h)
    finally:
        h.close()
    print(f"{len(FAILURES)} failures")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
