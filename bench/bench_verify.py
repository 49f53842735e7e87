"""bench/bench_verify.py: answer-verification speed of `distill data check-answers` against math-verify 0.9.0 (pinned in
scripts/setup) on the same corpus, side by side in one run; the figure is the ratio of wall times (math-verify's /
ours). Issue 20's targets: at least 20x on 2 cores, and a worst single case of ours under 50 ms.

The corpus is --n (gold, completion) pairs from tests/verify/gen_corpus.py, seeds 0, 1, 2, ... concatenated (729
pairs a seed; different seeds draw different numbers and wordings, a few fixed cases repeat) and cut at --n.
- ours: one `distill data check-answers --jsonl F --timing` process, which is single-threaded (one core, whatever
  --workers says). Its time is the process's wall time (start, reading and writing the JSON lines included); the
  worst and p99 per-case times come from --timing (steady_clock around each verify_completion call).
- math-verify: end to end with its defaults, exactly as tests/verify/score.py runs it: verify(parse("$" + gold + "$"),
  parse(completion)), the completion unchanged. It runs in --workers forked processes (math_verify imported before
  the fork, so no import counts), each case sent to whichever process is free, and its time is the wall time from
  the first case sent to the last answer in. The per-case hang guard is score.py's: math-verify keeps its own
  default timeouts (5 s, SIGALRM), and a process that gives no answer within --pair-timeout seconds is killed and
  replaced, its case counted as a reject and reported as a timeout. (multiprocessing.Pool cannot kill one hung
  case, hence these few lines of process handling.) Handing a case to a process costs a pipe round trip, measured
  here before the run and printed: tens of microseconds against milliseconds of math-verify's own work.
Agreement counts the cases where both accept or both reject (ours accepts on verdict "correct"); each side's
accuracy against the generator's labels is printed too.
Usage: .venv/bin/python bench/bench_verify.py [--distill build/bin/distill] [--n 100000] [--workers 2] [--out DIR]
                                              [--pair-timeout 10] [--json]"""
import argparse
import json
import logging
import math
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from multiprocessing.connection import wait

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "verify"))
import gen_corpus  # noqa: E402
import score  # noqa: E402

GOLD_WRAP = score.GOLD_WRAPS[score.DEFAULT_WRAP]  # "$" + gold + "$", as in make test


def build_corpus(n):
    rows, seed = [], 0
    while len(rows) < n:
        for r in gen_corpus.generate(seed):
            rows.append({**r, "id": f"s{seed}-{r['id']}"})
        seed += 1
    return rows[:n], seed


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no lscpu)"
    names = [line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")]
    return "; ".join(names) or "unknown"


def percentile(xs, q):
    s = sorted(xs)
    return s[max(math.ceil(q * len(s)), 1) - 1] if s else None  # nearest rank, as --timing's


# --------------------------------------------------------------------------- ours

def run_ours(distill, corpus_path, ours_path, rows):
    """Returns (wall seconds, timing dict or None, accepts). Tolerates a binary without --timing (timing None)."""
    def run(extra):
        with open(ours_path, "w") as f:
            t0 = time.perf_counter()
            r = subprocess.run([distill, "data", "check-answers", "--jsonl", corpus_path] + extra, stdout=f,
                               stderr=subprocess.PIPE, text=True)
            return time.perf_counter() - t0, r
    secs, r = run(["--timing"])
    if r.returncode != 0 and "--timing" in r.stderr:
        print("warning: this distill has no --timing; worst per-case time unknown", file=sys.stderr)
        secs, r = run([])
    if r.returncode != 0:
        sys.exit(f"error: distill data check-answers failed ({r.returncode}): {r.stderr.strip()}")
    timing = None
    for line in reversed(r.stderr.splitlines()):
        try:
            j = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(j, dict) and "worst_ms" in j:
            timing = j
            break
    accepts, _ = score.load_ours(ours_path, rows)
    return secs, timing, accepts


# --------------------------------------------------------------------------- math-verify

def _worker(conn):
    logging.disable(logging.CRITICAL)
    from math_verify import parse, verify
    conn.send("ready")
    while True:
        msg = conn.recv()
        if msg is None:
            return
        if msg == "ping":
            conn.send("pong")
            continue
        i, gold, completion = msg
        t0 = time.perf_counter()
        try:
            ok = bool(verify(parse(gold), parse(completion)))
        except Exception:  # the defaults have raise_on_error=False; belt and braces, as score.py
            ok = False
        conn.send((i, ok, time.perf_counter() - t0))


class Worker:
    ctx = mp.get_context("fork")

    def __init__(self):
        parent, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.conn, self.case, self.deadline = parent, None, None
        if not (parent.poll(120) and parent.recv() == "ready"):
            raise RuntimeError("math-verify worker did not start")

    def send(self, i, row, timeout):
        self.case, self.deadline = i, time.perf_counter() + timeout
        self.conn.send((i, GOLD_WRAP(row["gold"]), row["completion"]))

    def close(self, kill=False):
        try:
            if not kill:
                self.conn.send(None)
                self.proc.join(5)
        except OSError:
            pass
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)


def round_trip_us(worker, n=2000):
    t0 = time.perf_counter()
    for _ in range(n):
        worker.conn.send("ping")
        worker.conn.recv()
    return 1e6 * (time.perf_counter() - t0) / n


def run_math_verify(rows, workers, pair_timeout):
    """Returns (wall seconds, accepts, per-case seconds, timed-out case indices, round trip us)."""
    pool = [Worker() for _ in range(workers)]
    rtt = round_trip_us(pool[0])
    accepts, secs, timeouts = [False] * len(rows), [0.0] * len(rows), []
    todo, done, t0 = iter(range(len(rows))), 0, time.perf_counter()

    def feed(w):
        i = next(todo, None)
        if i is None:
            w.case = None
        else:
            w.send(i, rows[i], pair_timeout)
    for w in pool:
        feed(w)
    try:
        while done < len(rows):
            busy = [w for w in pool if w.case is not None]
            left = max(0.0, min(w.deadline for w in busy) - time.perf_counter())
            ready = set(wait([w.conn for w in busy], timeout=left))
            for k, w in enumerate(pool):
                if w.case is None:
                    continue
                if w.conn in ready:
                    i, ok, dt = w.conn.recv()
                    accepts[i], secs[i] = ok, dt
                elif time.perf_counter() >= w.deadline:  # hung: counted as a reject, the process replaced
                    i = w.case
                    timeouts.append(i)
                    secs[i] = pair_timeout
                    w.close(kill=True)
                    pool[k] = w = Worker()
                else:
                    continue
                done += 1
                if done % 5000 == 0:
                    print(f"  math-verify: {done}/{len(rows)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
                feed(w)
        wall = time.perf_counter() - t0
    finally:
        for w in pool:
            w.close()
    return wall, accepts, secs, timeouts, rtt


# --------------------------------------------------------------------------- report

def fmt_ms(x):
    return "unknown" if x is None else f"{x:.2f} ms"


def print_report(r):
    o, m = r["ours"], r["math_verify"]
    print(f"CPU: {r['cpu']} ({r['cpus_available']} available to this process)")
    print(f"cases: {r['cases']} ({r['distinct_cases']} distinct; gen_corpus seeds 0-{r['seeds'] - 1})")
    print(f"ours: {o['seconds']:.2f} s wall, one process, single-threaded ({o['cases_per_s']:.0f} cases/s); "
          f"in verify_completion {fmt_ms(o['verify_ms'])}; worst case {fmt_ms(o['worst_ms'])}"
          + (f" (line {o['worst_line']})" if o["worst_line"] is not None else "")
          + f", p99 {fmt_ms(o['p99_ms'])}; accuracy {o['accuracy']:.2f}%")
    print(f"math-verify {m['version']}: {m['seconds']:.2f} s wall, {m['workers']} processes "
          f"({m['cases_per_s']:.0f} cases/s); {m['busy_s']:.1f} s in parse+verify, worst case "
          f"{m['worst_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms; {m['timeouts']} timeouts (> {m['pair_timeout_s']:g} s, "
          f"counted reject); dispatch round trip {m['round_trip_us']:.0f} us/case; accuracy {m['accuracy']:.2f}%")
    print(f"ratio (math-verify wall / ours wall): {r['ratio']:.1f}x (target >= 20x: "
          f"{'met' if r['ratio'] >= 20 else 'NOT met'})")
    w = o["worst_ms"]
    print(f"worst case of ours: {fmt_ms(w)} (goal <= 50 ms: "
          f"{'unknown' if w is None else 'met' if w <= 50 else 'NOT met'})")
    print(f"agreement: {r['agree']}/{r['cases']} ({100 * r['agree'] / r['cases']:.2f}%): "
          f"both accept {r['both_accept']}, only ours {r['only_ours']}, only math-verify {r['only_math_verify']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--distill", default=os.path.join(HERE, "..", "build", "bin", "distill"))
    ap.add_argument("--n", type=int, default=100000, help="cases (default 100000)")
    ap.add_argument("--workers", type=int, default=2, help="math-verify processes (default 2)")
    ap.add_argument("--out", help="directory for corpus.jsonl, ours.jsonl, math_verify.jsonl, result.json "
                                  "(default: a temporary one, removed)")
    ap.add_argument("--pair-timeout", type=float, default=10.0, help="seconds before a math-verify case counts as "
                                                                     "hung (default 10, as score.py)")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    a = ap.parse_args()
    import math_verify  # fail early, and before the fork: no worker pays for the import

    tmp = None if a.out else tempfile.TemporaryDirectory(prefix="bench_verify-")
    out = a.out or tmp.name
    os.makedirs(out, exist_ok=True)
    rows, seeds = build_corpus(a.n)
    corpus_path = os.path.join(out, "corpus.jsonl")
    write_jsonl(corpus_path, rows)
    print(f"ours: {len(rows)} cases ...", file=sys.stderr)
    o_secs, timing, o_acc = run_ours(a.distill, corpus_path, os.path.join(out, "ours.jsonl"), rows)
    print(f"math-verify: {len(rows)} cases on {a.workers} processes ...", file=sys.stderr)
    m_secs, m_acc, m_case, m_timeouts, rtt = run_math_verify(rows, a.workers, a.pair_timeout)
    hung = set(m_timeouts)
    write_jsonl(os.path.join(out, "math_verify.jsonl"),
                [{"id": r["id"], "accept": acc, "seconds": s, "timeout": i in hung}
                 for i, (r, acc, s) in enumerate(zip(rows, m_acc, m_case))])

    n = len(rows)
    t = timing or {}
    res = {
        "cpu": cpu_model(), "cpus_available": len(os.sched_getaffinity(0)), "cases": n, "seeds": seeds,
        "distinct_cases": len({(r["gold"], r["completion"]) for r in rows}),
        "ours": {"seconds": o_secs, "cases_per_s": n / o_secs, "threads": 1, "verify_ms": t.get("total_ms"),
                 "worst_ms": t.get("worst_ms"), "worst_line": t.get("worst_line"), "p99_ms": t.get("p99_ms"),
                 "accuracy": 100 * sum(x == r["label"] for x, r in zip(o_acc, rows)) / n},
        "math_verify": {"version": version("math-verify"), "seconds": m_secs,
                        "cases_per_s": n / m_secs, "workers": a.workers, "busy_s": sum(m_case),
                        "worst_ms": 1000 * max(m_case), "p99_ms": 1000 * percentile(m_case, 0.99),
                        "timeouts": len(m_timeouts), "pair_timeout_s": a.pair_timeout, "round_trip_us": rtt,
                        "accuracy": 100 * sum(x == r["label"] for x, r in zip(m_acc, rows)) / n},
        "ratio": m_secs / o_secs,
        "agree": sum(x == y for x, y in zip(o_acc, m_acc)),
        "both_accept": sum(x and y for x, y in zip(o_acc, m_acc)),
        "only_ours": sum(x and not y for x, y in zip(o_acc, m_acc)),
        "only_math_verify": sum(y and not x for x, y in zip(o_acc, m_acc)),
    }
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(res, f, indent=1)
    if a.json:
        print(json.dumps(res))
    else:
        print_report(res)
        if a.out:
            print(f"files: {out}")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
