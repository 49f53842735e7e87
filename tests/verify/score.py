#!/usr/bin/env python3
"""Score math-answer verifiers against the labelled corpus from gen_corpus.py.

Usage::

    score.py --corpus FILE.jsonl [--ours OURS.jsonl]
             [--min-overall X] [--min-category X] [--max-false-accepts N]
             [--at-least-math-verify] [--markdown]
             [--dump-disagreements FILE] [--gold-wrap MODE] [--no-math-verify]
             [--compare-gold-wraps]

What is scored
--------------
* math-verify (the reference), run end to end with its defaults::

      from math_verify import parse, verify
      verify(parse(wrapped_gold), parse(completion))

  The gold is stored as bare LaTeX (e.g. ``\\frac{1}{3}``, ``C``, ``[2, 5)``).
  math-verify's default ``parse`` does not read most bare LaTeX answers: a bare
  ``C``, ``\\{1,2,3\\}`` or ``[2,5)`` extracts nothing, a bare pmatrix extracts
  the last entry, a bare ``-3, 2`` only ``2``, and a bare ``28\\%`` loses the
  percent sign.  So the gold is wrapped before parsing.  The wrapping was
  chosen empirically with --compare-gold-wraps on the seed-0 corpus (729
  pairs, 371 equivalent); math-verify's accuracy on the equivalent pairs /
  the non-equivalent pairs / all pairs was:

      $G$            92.5%  98.3%  95.3%
      \boxed{G}      92.5%  98.3%  95.3%
      $\boxed{G}$    92.5%  98.3%  95.3%
      G (bare)       41.0%  97.2%  68.6%

  The three wrappings tie (same verdict on every pair); the default is
  ``$...$`` (inline math), the least intrusive one (a plain math delimiter,
  no extra command).  Use --gold-wrap to pick another.
  The completion is passed unchanged, think block included.

  math-verify keeps its default ``parsing_timeout``/``timeout_seconds`` (5 s,
  implemented with SIGALRM, which would cancel any alarm of ours set in the
  same process).  So each pair runs in a worker process and the parent waits
  at most --pair-timeout seconds (default 10) for it; on expiry the worker is
  killed and restarted, the pair is counted as math-verify answering wrongly
  (an accept where the label is false, a reject where it is true) and it is
  reported as a timeout.

* ours (optional, --ours): a JSONL file with one line per corpus line, in the
  same order, ``{"id": ..., "verdict": "correct"|"incorrect"|"unparsable", ...}``.
  Verdict ``correct`` means accept; ``incorrect`` and ``unparsable`` mean reject.

A verdict is right when (accepted == label).  A false accept is an accept on a
pair whose label is false.

Targets (all about ours; exit status 1 with one message per failed target)
---------------------------------------------------------------------------
* --min-overall X       overall accuracy of ours must be >= X
* --min-category X      every category's accuracy of ours must be >= X
* --max-false-accepts N total false accepts of ours must be <= N
* --at-least-math-verify  in every category ours must be >= math-verify
Accuracies are in percent (95 means 95%); a value <= 1 is read as a fraction
(0.95 means 95%).  Exit status 0 when every given target holds, 2 on bad input.
"""

import argparse
import json
import multiprocessing as mp
import sys
import time
from collections import OrderedDict

GOLD_WRAPS = OrderedDict([
    ("dollar", lambda g: f"${g}$"),
    ("boxed", lambda g: f"\\boxed{{{g}}}"),
    ("dollar_boxed", lambda g: f"$\\boxed{{{g}}}$"),
    ("none", lambda g: g),
])
DEFAULT_WRAP = "dollar"


# ---------------------------------------------------------------------------
# math-verify, run in a worker process with a hard per-pair timeout
# ---------------------------------------------------------------------------

def _worker(conn):
    import logging
    logging.disable(logging.CRITICAL)
    from math_verify import parse, verify
    conn.send("ready")  # imports done: per-pair timing starts from here
    while True:
        msg = conn.recv()
        if msg is None:
            return
        gold_text, completion = msg
        t0 = time.perf_counter()
        err = None
        try:
            g = parse(gold_text)
            a = parse(completion)
            ok = bool(verify(g, a))
        except Exception as e:  # defaults have raise_on_error=False; belt and braces
            g, a, ok, err = [], [], False, f"{type(e).__name__}: {e}"
        dt = time.perf_counter() - t0
        conn.send((ok, dt, _short(g), _short(a), err))


def _short(parsed, limit=200):
    try:
        s = str([str(x) for x in parsed])
    except Exception:
        s = "<unprintable>"
    return s if len(s) <= limit else s[:limit] + "..."


class MathVerifyRunner:
    def __init__(self, pair_timeout):
        self.pair_timeout = pair_timeout
        self.ctx = mp.get_context("fork")
        self.proc = None
        self.conn = None
        self._start()

    def _start(self):
        parent, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent
        # wait for the imports (sympy, antlr) so they never count against a pair
        if not (parent.poll(120) and parent.recv() == "ready"):
            raise RuntimeError("math-verify worker did not start")

    def _restart(self):
        try:
            self.proc.kill()
            self.proc.join(5)
        except Exception:
            pass
        self._start()

    def check(self, gold_text, completion):
        """Returns dict(accept, seconds, timeout, gold_parsed, answer_parsed, error)."""
        t0 = time.perf_counter()
        self.conn.send((gold_text, completion))
        if self.conn.poll(self.pair_timeout):
            ok, dt, g, a, err = self.conn.recv()
            return {"accept": ok, "seconds": dt, "timeout": False,
                    "gold_parsed": g, "answer_parsed": a, "error": err}
        waited = time.perf_counter() - t0
        self._restart()
        return {"accept": None, "seconds": waited, "timeout": True,
                "gold_parsed": "", "answer_parsed": "", "error": "timeout"}

    def close(self):
        try:
            self.conn.send(None)
            self.proc.join(5)
        except Exception:
            pass
        if self.proc.is_alive():
            self.proc.kill()


def run_math_verify(rows, wrap, pair_timeout, progress=True):
    runner = MathVerifyRunner(pair_timeout)
    results = []
    t0 = time.perf_counter()
    try:
        for i, row in enumerate(rows):
            r = runner.check(GOLD_WRAPS[wrap](row["gold"]), row["completion"])
            if r["timeout"]:
                # a hang counts as a wrong answer whatever the label
                r["accept"] = not row["label"]
            results.append(r)
            if progress and (i + 1) % 100 == 0:
                print(f"  math-verify: {i + 1}/{len(rows)} pairs "
                      f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    finally:
        runner.close()
    return results, time.perf_counter() - t0


# ---------------------------------------------------------------------------
# scoring
# ---------------------------------------------------------------------------

def load_jsonl(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"error: {path}:{n}: bad JSON: {e}")
    return rows


def load_ours(path, corpus):
    ours = load_jsonl(path)
    if len(ours) != len(corpus):
        print(f"error: {path} has {len(ours)} lines, corpus has {len(corpus)}", file=sys.stderr)
        sys.exit(2)
    accepts, verdicts = [], []
    for n, (o, c) in enumerate(zip(ours, corpus), 1):
        if o.get("id") != c["id"]:
            print(f"error: {path}:{n}: id {o.get('id')!r} does not match corpus id {c['id']!r}",
                  file=sys.stderr)
            sys.exit(2)
        v = o.get("verdict")
        if v not in ("correct", "incorrect", "unparsable"):
            print(f"error: {path}:{n}: bad verdict {v!r}", file=sys.stderr)
            sys.exit(2)
        verdicts.append(v)
        accepts.append(v == "correct")
    return accepts, verdicts


def tally(rows, accepts):
    """Per category (and overall): [pairs, right, false_accepts]."""
    cats = OrderedDict()
    for row, acc in zip(rows, accepts):
        for key in (row["category"], None):
            t = cats.setdefault(key, [0, 0, 0])
            t[0] += 1
            t[1] += int(acc == row["label"])
            t[2] += int(acc and not row["label"])
    overall = cats.pop(None)
    return cats, overall


def pct(t):
    return 100.0 * t[1] / t[0] if t[0] else 0.0


def as_percent(x):
    return x * 100.0 if x <= 1.0 else x


def print_table(rows, ours_t, mv_t, markdown):
    cats = list(OrderedDict.fromkeys(r["category"] for r in rows))
    header = ["category", "pairs", "ours %", "ours FA", "math-verify %", "math-verify FA"]
    lines = []

    def cells(name, key):
        o = (ours_t[0][key] if key else ours_t[1]) if ours_t else None
        m = (mv_t[0][key] if key else mv_t[1]) if mv_t else None
        n = (o or m)[0]
        return [name, str(n),
                f"{pct(o):.1f}" if o else "-", str(o[2]) if o else "-",
                f"{pct(m):.1f}" if m else "-", str(m[2]) if m else "-"]

    body = [cells(c, c) for c in cats]
    total = cells("overall", None)
    if markdown:
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * 5) + "|")
        for b in body:
            lines.append("| " + " | ".join(b) + " |")
        lines.append("| " + " | ".join(f"**{x}**" for x in total) + " |")
    else:
        w = [max(len(h), 16 if i == 0 else 0) for i, h in enumerate(header)]
        for b in body + [total]:
            w = [max(wi, len(x)) for wi, x in zip(w, b)]
        fmt = lambda r: "  ".join(x.ljust(w[0]) if i == 0 else x.rjust(w[i]) for i, x in enumerate(r))
        lines.append(fmt(header))
        lines.append("  ".join("-" * x for x in w))
        for b in body:
            lines.append(fmt(b))
        lines.append("  ".join("-" * x for x in w))
        lines.append(fmt(total))
    print("\n".join(lines))


def compare_gold_wraps(rows, pair_timeout):
    print("math-verify accuracy by gold wrapping (equivalent pairs / non-equivalent / all):")
    for wrap in GOLD_WRAPS:
        res, secs = run_math_verify(rows, wrap, pair_timeout, progress=False)
        acc = [r["accept"] for r in res]
        eq = [a == r["label"] for a, r in zip(acc, rows) if r["label"]]
        ne = [a == r["label"] for a, r in zip(acc, rows) if not r["label"]]
        al = eq + ne
        print(f"  {wrap:13s} {GOLD_WRAPS[wrap]('G'):14s} "
              f"{100 * sum(eq) / len(eq):5.1f}%  {100 * sum(ne) / len(ne):5.1f}%  "
              f"{100 * sum(al) / len(al):5.1f}%   ({secs:.1f} s, "
              f"{sum(r['timeout'] for r in res)} timeouts)")


def main():
    ap = argparse.ArgumentParser(description="Score math-answer verifiers against corpus labels.")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--ours", help="JSONL verdicts of our verifier, one per corpus line")
    ap.add_argument("--min-overall", type=float)
    ap.add_argument("--min-category", type=float)
    ap.add_argument("--max-false-accepts", type=int)
    ap.add_argument("--at-least-math-verify", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--dump-disagreements", metavar="FILE",
                    help="write JSONL of the pairs where ours or math-verify is wrong")
    ap.add_argument("--gold-wrap", choices=list(GOLD_WRAPS), default=DEFAULT_WRAP,
                    help=f"how the bare gold is presented to math-verify's parse (default {DEFAULT_WRAP})")
    ap.add_argument("--pair-timeout", type=float, default=10.0,
                    help="seconds per pair before math-verify is deemed hung (default 10)")
    ap.add_argument("--no-math-verify", action="store_true", help="score only --ours")
    ap.add_argument("--compare-gold-wraps", action="store_true",
                    help="run math-verify with every gold wrapping, print a summary and exit")
    args = ap.parse_args()

    rows = load_jsonl(args.corpus)
    if not rows:
        print("error: empty corpus", file=sys.stderr)
        return 2
    if args.compare_gold_wraps:
        compare_gold_wraps(rows, args.pair_timeout)
        return 0

    ours_targets = [args.min_overall is not None, args.min_category is not None,
                    args.max_false_accepts is not None, args.at_least_math_verify]
    if any(ours_targets) and not args.ours:
        print("error: targets need --ours", file=sys.stderr)
        return 2
    if args.at_least_math_verify and args.no_math_verify:
        print("error: --at-least-math-verify needs math-verify (drop --no-math-verify)", file=sys.stderr)
        return 2
    if not args.ours and args.no_math_verify:
        print("error: nothing to score", file=sys.stderr)
        return 2

    ours_acc = ours_verdicts = None
    if args.ours:
        ours_acc, ours_verdicts = load_ours(args.ours, rows)

    mv_res = None
    if not args.no_math_verify:
        try:
            import math_verify  # noqa: F401  (fail early, in this process)
        except ImportError:
            print("error: math-verify is not installed (pip install math-verify==0.9.0)",
                  file=sys.stderr)
            return 2
        mv_res, mv_secs = run_math_verify(rows, args.gold_wrap, args.pair_timeout)

    ours_t = tally(rows, ours_acc) if ours_acc else None
    mv_t = tally(rows, [r["accept"] for r in mv_res]) if mv_res else None

    print_table(rows, ours_t, mv_t, args.markdown)
    print()
    print(f"pairs: {len(rows)} ({sum(r['label'] for r in rows)} equivalent)")
    if mv_res:
        timeouts = [row["id"] for row, r in zip(rows, mv_res) if r["timeout"]]
        errors = [row["id"] for row, r in zip(rows, mv_res) if r["error"] and not r["timeout"]]
        busy = sum(r["seconds"] for r in mv_res)
        print(f"math-verify {getattr(__import__('math_verify'), '__version__', '')}".rstrip()
              + f": gold wrapped as {GOLD_WRAPS[args.gold_wrap]('G')!r}; "
              f"{mv_secs:.1f} s wall ({busy:.1f} s in parse+verify, "
              f"{1000 * busy / len(rows):.1f} ms/pair); "
              f"{len(timeouts)} timeouts (> {args.pair_timeout:g} s, counted wrong)"
              + (f": {', '.join(timeouts)}" if timeouts else "")
              + (f"; {len(errors)} errors: {', '.join(errors)}" if errors else ""))
    if ours_verdicts:
        unp = sum(v == "unparsable" for v in ours_verdicts)
        print(f"ours: {unp} unparsable verdicts (counted as reject)")

    if args.dump_disagreements:
        n = 0
        with open(args.dump_disagreements, "w", encoding="utf-8") as f:
            for i, row in enumerate(rows):
                o_wrong = ours_acc is not None and ours_acc[i] != row["label"]
                m_wrong = mv_res is not None and mv_res[i]["accept"] != row["label"]
                if not (o_wrong or m_wrong):
                    continue
                rec = OrderedDict([
                    ("id", row["id"]), ("category", row["category"]), ("gold", row["gold"]),
                    ("answer_tail", row["completion"][-160:]), ("label", row["label"]),
                    ("ours", ours_verdicts[i] if ours_verdicts else None),
                    ("ours_wrong", o_wrong),
                    ("math_verify", None if mv_res is None else
                     ("timeout" if mv_res[i]["timeout"] else
                      ("accept" if mv_res[i]["accept"] else "reject"))),
                    ("math_verify_wrong", m_wrong),
                ])
                if mv_res is not None:
                    rec["mv_gold_parsed"] = mv_res[i]["gold_parsed"]
                    rec["mv_answer_parsed"] = mv_res[i]["answer_parsed"]
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n += 1
        print(f"wrote {n} disagreements to {args.dump_disagreements}")

    failures = []
    if ours_t:
        cats, overall = ours_t
        if args.min_overall is not None and pct(overall) < as_percent(args.min_overall):
            failures.append(f"overall accuracy {pct(overall):.1f}% < --min-overall "
                            f"{as_percent(args.min_overall):g}%")
        if args.min_category is not None:
            for c, t in cats.items():
                if pct(t) < as_percent(args.min_category):
                    failures.append(f"category {c}: accuracy {pct(t):.1f}% < --min-category "
                                    f"{as_percent(args.min_category):g}%")
        if args.max_false_accepts is not None and overall[2] > args.max_false_accepts:
            failures.append(f"false accepts {overall[2]} > --max-false-accepts {args.max_false_accepts}")
        if args.at_least_math_verify and mv_t:
            for c, t in cats.items():
                m = mv_t[0][c]
                if pct(t) < pct(m):
                    failures.append(f"category {c}: ours {pct(t):.1f}% < math-verify {pct(m):.1f}%")
    if failures:
        print()
        for msg in failures:
            print(f"FAIL: {msg}")
        return 1
    if any(ours_targets):
        print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
