#!/usr/bin/env python3
"""bench/bench_studio.py: the studio's answer times on a large store, over HTTP as the page asks. Starts
`distill studio` on STORE (e.g. the 1,000,000-sample store `bench_curation --keep DIR` leaves in DIR/big.db) and
times each request the sample table makes: the first page, a filter change, a full-text search, the next page by
key, and the counts (asked separately: FTS counts are slow), plus one sample and the overview. Each figure is the
median of 5 (the first, cold, shown apart). Asserts nothing; the issue's budget for a page is 300 ms on 2 cores.

Usage: bench_studio.py DISTILL_BIN STORE
"""
import re
import statistics
import subprocess
import sys
import time
import urllib.request

BIN, DB = sys.argv[1], sys.argv[2]
server = subprocess.Popen([BIN, "studio", "--db", DB, "--port", "0"], stdout=subprocess.PIPE, text=True)
line = ""
while "open http" not in line:
    line = server.stdout.readline()
m = re.search(r"(http://[^/]+)/\?token=([0-9a-f]+)", line)
base, token = m.group(1), m.group(2)


def get(path):
    req = urllib.request.Request(base + path, headers={"X-Distill-Token": token})
    t = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        body = r.read()
    return time.perf_counter() - t, body


def row(what, path, budget=0.3):
    cold, body = get(path)
    warm = statistics.median(get(path)[0] for _ in range(5))
    flag = "" if not budget else ("   within 300 ms" if max(cold, warm) < budget else "   OVER 300 ms")
    print(f"{what:<52} cold {cold * 1e3:7.1f} ms   warm {warm * 1e3:7.1f} ms{flag}", flush=True)
    return body


try:
    print(f"studio bench on {DB}")
    import json
    first = json.loads(row("first page (50 rows, id order)", "/api/samples?limit=50"))
    row("filter change: status=rejected", "/api/samples?limit=50&status=rejected")
    row("filter change: verdict=incorrect", "/api/samples?limit=50&verdict=incorrect")
    row("filter change: status=pending, min_tokens=100", "/api/samples?limit=50&status=pending&min_tokens=100")
    row("filter change: split=train", "/api/samples?limit=50&split=train")
    row("filter change: split=eval (a tenth of the problems)", "/api/samples?limit=50&split=eval")
    row("full-text search: \"current total\"", "/api/samples?limit=50&search=%22current%20total%22")
    row("full-text search and status=rejected", "/api/samples?limit=50&status=rejected&search=%22current%20total%22")
    row("full-text search: rare word (zzz nothing matches)", "/api/samples?limit=50&search=zzzq")
    row("next page by key (after the first)", "/api/samples?limit=50&after=" + first["next"])
    row("sorted by length, longest first", "/api/samples?limit=50&sort=-tokens")
    row("count: all", "/api/count", 0)
    row("count: status=rejected", "/api/count?status=rejected", 0)
    row("count: full-text \"current total\"", "/api/count?search=%22current%20total%22", 0)
    row("count with a bulk action's stamp: status=rejected", "/api/count?stamp=1&status=rejected", 0)
    row("one sample with its problem's others", f"/api/sample/{first['samples'][0]['id']}")
    row("overview (stats over every sample)", "/api/overview", 0)
finally:
    server.terminate()
    server.wait()
