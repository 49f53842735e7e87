#!/usr/bin/env python3
"""tests/kill/test_hostile_clients.py: `distill serve` and `distill studio` under hostile clients. Each hostile request
is answered or refused, and the server keeps answering a well-behaved client meanwhile (a probe, timed):
  - a body over the cap (413), and one that claims more than it sends (slow body);
  - slow headers (a byte at a time, then silence);
  - 1,000 idle connections held open at once;
  - path traversal, plain and percent-encoded, on the studio's pages and assets;
  - a wrong token or key (the comparison's time does not depend on where it differs: the code uses same_secret);
  - malformed JSON at every depth: every prefix of a valid body, and the body nested 10,000 deep;
  - an SSE client that disconnects mid-stream (the server goes on, and the slot is free again).
Prints a table (attack, server, answers, probe latency). Usage: test_hostile_clients.py DISTILL SOURCE_DIR WORK_DIR"""
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ENV = {**os.environ, "DISTILL_QUIET": "1", "OMP_NUM_THREADS": "1", "DISTILL_TEST_KEY": "k" * 40}
FAILURES, TABLE = [], []
T0 = time.perf_counter()


def check(ok, what):
    print(f"{'ok  ' if ok else 'FAIL'} {what} [{time.perf_counter() - T0:.1f} s]", flush=True)
    if not ok:
        FAILURES.append(what)


def http(url, method="GET", body=None, headers=None, timeout=30):
    req = urllib.request.Request(url, body, headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


class Server:
    def __init__(self, name, argv, pattern, probe):
        self.name = name
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        line, deadline = "", time.time() + 60
        while not re.search(pattern, line) and time.time() < deadline and self.p.poll() is None:
            line = self.p.stdout.readline()
        m = re.search(pattern, line)
        assert m, f"{name} printed no URL: {line!r}"
        self.m = m
        self.host, self.port = re.search(r"http://([^:/]+):(\d+)", line).groups()
        self.port = int(self.port)
        self.probe_path, self.probe_headers = probe(m)

    def probe(self):
        """A well-behaved request: its status and seconds."""
        t0 = time.perf_counter()
        code, _ = http(f"http://{self.host}:{self.port}{self.probe_path}", headers=self.probe_headers, timeout=60)
        return code, time.perf_counter() - t0

    def sock(self):
        s = socket.create_connection((self.host, self.port), timeout=30)
        return s

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(60)
        except subprocess.TimeoutExpired:
            self.p.kill()


def row(attack, server, answers, latency):
    TABLE.append((attack, server.name, answers, latency))


def probe_ok(server, attack, limit=5.0):
    code, sec = server.probe()
    check(code == 200 and sec < limit, f"{server.name}, {attack}: the probe is answered ({code}) in {sec:.2f} s (< {limit} s)")
    return sec


def oversized_body(s, path, headers):
    s_ = s.sock()
    body = b"{" + b" " * (9 << 20) + b"}"
    head = f"POST {path} HTTP/1.1\r\nHost: {s.host}:{s.port}\r\nContent-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += f"Content-Length: {len(body)}\r\n\r\n"
    try:
        s_.sendall(head.encode())
        s_.sendall(body)
    except OSError:
        pass  # the server may close as soon as it sees the length
    try:
        reply = s_.recv(4096).decode("latin-1")
    except OSError:
        reply = ""
    s_.close()
    code = reply.split(" ")[1] if reply.startswith("HTTP/") else "closed"
    check(code in ("413", "closed"), f"{s.name}: a 9 MiB body is refused ({code})")
    row("body over the cap (9 MiB)", s, code, probe_ok(s, "after a 9 MiB body"))


def slow_clients(s, path, headers):
    slow = []
    for i in range(20):  # headers a byte at a time, then silence
        c = s.sock()
        c.sendall(f"POST {path} HTTP/1.1\r\nHo".encode())
        slow.append(c)
    for i in range(20):  # a body that claims 1,000 bytes and sends 10
        c = s.sock()
        head = f"POST {path} HTTP/1.1\r\nHost: {s.host}:{s.port}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        c.sendall(head.encode() + b'{"model": ')
        slow.append(c)
    row("40 slow clients (headers, bodies)", s, "held", probe_ok(s, "beside 40 slow clients"))
    for c in slow:
        c.close()


def idle_connections(s, n=1000):
    idle = []
    try:
        for _ in range(n):
            idle.append(s.sock())
    except OSError as e:
        check(False, f"{s.name}: could open only {len(idle)} connections ({e})")
    sec = probe_ok(s, f"beside {len(idle)} idle connections")
    row(f"{len(idle)} idle connections", s, "held", sec)
    for c in idle:
        c.close()
    check(s.alive(), f"{s.name}: alive after the idle connections")


def traversal(s, headers):
    bad = ["/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/assets/..%2f..%2f..%2fetc%2fpasswd",
           "/api/../../../etc/passwd", "/..%5c..%5cetc%5cpasswd", "//etc/passwd", "/static/%00/etc/passwd"]
    codes = []
    for p in bad:
        c = s.sock()
        c.sendall(f"GET {p} HTTP/1.1\r\nHost: {s.host}:{s.port}\r\n".encode() +
                  "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"Connection: close\r\n\r\n")
        data = b""
        while True:
            try:
                chunk = c.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        c.close()
        text = data.decode("latin-1")
        codes.append(text.split(" ")[1] if text.startswith("HTTP/") else "closed")
        check("root:" not in text, f"{s.name}: {p} does not give a file of the system ({codes[-1]})")
    check(all(c in ("400", "403", "404", "closed") for c in codes), f"{s.name}: traversals are refused ({codes})")
    row("path traversal (7 forms)", s, "/".join(sorted(set(codes))), probe_ok(s, "after traversals"))


def wrong_secret(s, path, make_headers, right):
    codes = []
    for wrong in ["", "0" * len(right), right[:-1] + ("0" if right[-1] != "0" else "1"), right + "0", "x"]:
        codes.append(http(f"http://{s.host}:{s.port}{path}", headers=make_headers(wrong))[0])
    check(all(c in (401, 403) for c in codes), f"{s.name}: wrong secrets are refused ({codes})")
    row("wrong token or key (5 kinds)", s, "/".join(map(str, sorted(set(codes)))), probe_ok(s, "after wrong secrets"))


def malformed_json(s, path, body, headers):
    codes = set()
    for i in range(len(body)):  # every prefix: the parser stops at every depth
        codes.add(http(f"http://{s.host}:{s.port}{path}", "POST", body[:i].encode(), headers)[0])
    deep = ('{"a": ' * 10000 + "1" + "}" * 10000).encode()
    codes.add(http(f"http://{s.host}:{s.port}{path}", "POST", deep, headers)[0])
    deep = ("[" * 100000).encode()
    codes.add(http(f"http://{s.host}:{s.port}{path}", "POST", deep, headers)[0])
    check(codes <= {400, 409, 422} and s.alive(), f"{s.name}: {len(body) + 2} malformed bodies answered {sorted(codes)}")
    row(f"malformed JSON ({len(body) + 2} bodies)", s, "/".join(map(str, sorted(codes))), probe_ok(s, "after malformed JSON"))


def sse_disconnect(s, headers):
    body = json.dumps({"model": "demo-teacher", "messages": [{"role": "user", "content": "What is 3 + 4?"}],
                       "max_tokens": 400, "stream": True, "temperature": 1.0}).encode()
    for _ in range(8):  # more than the server's slots would hold if each stayed taken
        c = s.sock()
        head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {s.host}:{s.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n")
        c.sendall(head.encode() + body)
        got = c.recv(4096)
        check(b"200" in got.split(b"\r\n")[0], f"{s.name}: a stream starts ({got[:40]!r})")
        c.close()  # mid-stream
    # the slots are free again: a whole completion is answered
    t0 = time.perf_counter()
    code, text = http(f"http://{s.host}:{s.port}/v1/chat/completions", "POST",
                      json.dumps({"model": "demo-teacher", "messages": [{"role": "user", "content": "2 + 2?"}],
                                  "max_tokens": 8}).encode(), {**headers, "Content-Type": "application/json"}, timeout=60)
    check(code == 200 and s.alive(), f"{s.name}: after 8 streams dropped mid-way, a completion is answered ({code})")
    row("8 SSE clients gone mid-stream", s, "200 then closed", time.perf_counter() - t0)


def main():
    distill, src, work = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))  # the servers inherit it
    teacher = os.path.join(src, "models", "demo-teacher")
    db = os.path.join(work, "s.db")
    subprocess.run([distill, "data", "synth", "--db", db, "--task", "chain", "--n", "20"], check=True, capture_output=True)
    key = ENV["DISTILL_TEST_KEY"]
    serve = Server("serve", [distill, "serve", "--model", teacher, "--port", "0", "--batch", "4", "--api-key-env",
                             "DISTILL_TEST_KEY"], r"listening on (http://\S+)",
                   lambda m: ("/v1/models", {"Authorization": "Bearer " + key}))
    studio = Server("studio", [distill, "studio", "--db", db, "--port", "0"], r"open (http://[^/]+)/\?token=([0-9a-f]+)",
                    lambda m: ("/api/count", {"X-Distill-Token": m.group(2)}))
    token = studio.m.group(2)
    try:
        auth_serve = {"Authorization": "Bearer " + key}
        auth_studio = {"X-Distill-Token": token}
        chat = json.dumps({"model": "demo-teacher", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
        review = json.dumps({"ids": [1], "decision": "keep", "reason": "", "seen": {"1": None}})
        for s, path, hdr, body in ((serve, "/v1/chat/completions", auth_serve, chat), (studio, "/api/review", auth_studio, review)):
            oversized_body(s, path, hdr)
            slow_clients(s, path, hdr)
            idle_connections(s)
            traversal(s, hdr)
            malformed_json(s, path, body, {**hdr, "Content-Type": "application/json"})
        wrong_secret(serve, "/v1/models", lambda k: {"Authorization": "Bearer " + k}, key)
        wrong_secret(studio, "/api/count", lambda t: {"X-Distill-Token": t}, token)
        sse_disconnect(serve, auth_serve)
        check(serve.alive() and studio.alive(), "both servers are still running")
    finally:
        serve.stop()
        studio.stop()
    print("| attack | server | answers | a well-behaved request meanwhile |")
    print("|---|---|---|---|")
    for attack, name, answers, sec in TABLE:
        print(f"| {attack} | {name} | {answers} | {sec:.2f} s |")
    print(f"{len(FAILURES)} failures")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
