"""bench/bench_remote_generate.py: `generate` through `distill serve` (the remote-teacher path over HTTP on
127.0.0.1) against local `generate`, on the same problems, teacher and seeds, in the same run: samples/s,
tokens/s and the ratio. Both draw the same samples (tests/remote/test_serve.py checks that), so the ratio is the
cost of the HTTP path and of serve's batching against generate's one big queue.

Usage: bench_remote_generate.py DISTILL_BINARY TEACHER_DIR [N_PROBLEMS] [SAMPLES] [CONCURRENCY]
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

DISTILL, TEACHER = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 200
K = int(sys.argv[4]) if len(sys.argv) > 4 else 4
CONC = int(sys.argv[5]) if len(sys.argv) > 5 else 64


def run_generate(db, teacher, extra):
    t0 = time.monotonic()
    p = subprocess.run([DISTILL, "generate", "--db", db, "--teacher", teacher, "--samples", str(K), "--max-tokens",
                        "128", *extra], capture_output=True, text=True, check=True)
    secs = time.monotonic() - t0
    m = re.search(r"generate: (\d+) new samples.*mean ([\d.]+) tokens", p.stdout)
    samples, mean = int(m.group(1)), float(m.group(2))
    return secs, samples, samples * mean


def main():
    work = tempfile.mkdtemp(prefix="bench_remote_")
    try:
        base = os.path.join(work, "base.db")
        subprocess.run([DISTILL, "data", "synth", "--db", base, "--n", str(N), "--difficulty", "1-4"], check=True,
                       capture_output=True)
        local_db, remote_db = os.path.join(work, "local.db"), os.path.join(work, "remote.db")
        shutil.copy(base, local_db)
        shutil.copy(base, remote_db)
        local = run_generate(local_db, TEACHER, ["--batch", "64"])
        serve = subprocess.Popen([DISTILL, "serve", "--model", TEACHER, "--port", "0", "--batch", "64",
                                  "--served-model-name", "teacher"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        url = serve.stdout.readline().split("listening on ")[1].split()[0]
        try:
            remote = run_generate(remote_db, url, ["--teacher-model", "teacher", "--concurrency", str(CONC)])
        finally:
            serve.terminate()
            serve.wait(timeout=60)
        cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = re.search(r"Model name:\s*(.*)", cpu)
        print(f"CPU: {model.group(1) if model else 'unknown'}, {os.cpu_count()} cores; {N} problems x {K} samples, "
              f"max 128 tokens, batch 64, concurrency {CONC}")
        print("| path | seconds | samples/s | tokens/s |\n|---|---:|---:|---:|")
        for name, (secs, samples, toks) in (("local generate", local), ("generate through serve", remote)):
            print(f"| {name} | {secs:.1f} | {samples / secs:.1f} | {toks / secs:.0f} |")
        print(f"ratio (through serve / local, tokens/s): {(remote[2] / remote[0]) / (local[2] / local[0]):.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
