#!/usr/bin/env python3
"""scripts/trace-summary.py: where a profiled training step spends its GPU time, from a Kineto trace (the
mfu_trace.json that `DISTILL_PROFILE=... bench_mfu` writes, or any torch.profiler chrome trace).

Two tables: device time by kind of kernel (GEMM, attention, optimizer, casts and copies, elementwise, ...), and
the time of every kernel outside GEMM and attention charged to the operator that launched it, under the
backward node it ran in ("bwd:MulBackward0") or "fwd/opt" otherwise. The second table names the fusion targets:
a decomposed RMSNorm shows up as pow/mean/mul and their backward nodes, autocast as ToCopyBackward0.
Usage: scripts/trace-summary.py TRACE.json [--top N]
"""
import argparse
import bisect
import collections
import json
import sys


def kind(name):
    n = name.lower()
    if name.startswith("nvjet") or "gemm" in n or "cutlass" in n:
        return "gemm"
    if "sdpa" in n or "fmha" in n or "flash" in n or "cudnn" in n:
        return "attention"
    if "fusedopti" in n or "adam" in n:
        return "optimizer"
    if "multi_tensor_apply" in n:
        return "foreach (grad norm, clip)"
    if "memcpy" in n or "memset" in n or "copy" in n:
        return "casts and copies"
    if "reduce_kernel" in n:
        return "reductions"
    if "elementwise" in n:
        return "elementwise"
    return "other"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("--top", type=int, default=30)
    a = ap.parse_args()
    try:
        with open(a.trace, encoding="utf-8") as f:
            events = json.load(f)["traceEvents"]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"trace-summary: {a.trace}: not a chrome trace with traceEvents ({e})")
    gpu = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset") and "dur" in e]
    if not gpu:
        sys.exit(f"trace-summary: {a.trace}: no GPU kernels (a CPU-only trace?)")
    total = sum(e["dur"] for e in gpu)
    by_kind, n_kind = collections.Counter(), collections.Counter()
    for e in gpu:
        by_kind[kind(e["name"])] += e["dur"]
        n_kind[kind(e["name"])] += 1
    print(f"{a.trace}: {total / 1e3:.1f} ms of device time in {len(gpu)} kernels and copies")
    print(f"  {'kind':28s} {'ms':>9s} {'share':>6s} {'calls':>6s}")
    for k, us in by_kind.most_common():
        print(f"  {k:28s} {us / 1e3:9.2f} {100 * us / total:5.1f}% {n_kind[k]:6d}")

    # The launching operator: a kernel's "External id" is the innermost CPU op's; the backward node around it is
    # found by time nesting on that op's thread.
    ops = [e for e in events if e.get("cat") == "cpu_op" and "dur" in e]
    by_id = {}
    for o in ops:
        ext = o.get("args", {}).get("External id")
        if ext is not None:
            by_id.setdefault(ext, o)
    nodes = collections.defaultdict(list)  # thread -> backward nodes sorted by start
    for o in ops:
        if o["name"].startswith("autograd::engine::evaluate_function: "):
            nodes[o["tid"]].append(o)
    starts = {}
    for tid, lst in nodes.items():
        lst.sort(key=lambda o: o["ts"])
        starts[tid] = [o["ts"] for o in lst]

    def node_of(op):
        lst = nodes.get(op["tid"], [])
        i = bisect.bisect_right(starts.get(op["tid"], []), op["ts"]) - 1
        while i >= 0:  # the innermost node that still covers the op (nodes do not nest in practice)
            n = lst[i]
            if n["ts"] + n["dur"] >= op["ts"] + op["dur"]:
                return "bwd:" + n["name"].split(": ", 1)[1]
            i -= 1
        return "fwd/opt"

    by_op, n_op = collections.Counter(), collections.Counter()
    for e in gpu:
        if kind(e["name"]) in ("gemm", "attention"):
            continue
        ext = e.get("args", {}).get("External id")
        op = by_id.get(ext) if ext is not None else None
        key = (node_of(op), op["name"]) if op else ("?", e["name"][:60])
        by_op[key] += e["dur"]
        n_op[key] += 1
    rest = sum(by_op.values())
    print(f"\noutside GEMM and attention: {rest / 1e3:.1f} ms ({100 * rest / total:.1f}%), by launching operator")
    print(f"  {'ms':>8s} {'calls':>6s}  node / operator")
    for (node, name), us in by_op.most_common(a.top):
        print(f"  {us / 1e3:8.2f} {n_op[(node, name)]:6d}  {node} / {name}")


if __name__ == "__main__":
    main()
