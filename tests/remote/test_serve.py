"""tests/remote/test_serve.py: `distill serve` judged by the official `openai` Python client (pinned in
scripts/setup) and by distill's own remote teacher: chat, completions, streaming, logprobs, n, stop, seeds;
OpenAI-style errors for bad requests; a bearer key; 503 past the queue; a clean SIGTERM; `generate --teacher URL`
through serve drawing the samples local generation draws; and a load test (64 concurrent clients against 1),
whose figures it prints.

Usage: test_serve.py DISTILL_BINARY WORKDIR MODEL_DIR   (exit 1 on failure)
"""
import json
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import openai

DISTILL, WORK, MODEL = sys.argv[1], sys.argv[2], sys.argv[3]
NAME = "demo-teacher"
PROBLEM = "Start with 3. Add 4, then subtract 2, keeping only the last digit. What is the result?"
INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


class Serve:
    """A `distill serve` process on a free port, stopped with SIGTERM."""

    def __init__(self, *extra, env=None):
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen([DISTILL, "serve", "--model", MODEL, "--port", "0", "--served-model-name", NAME,
                                      *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
        line = self.proc.stdout.readline()
        assert "listening on" in line, (line, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.url = line.split("listening on ")[1].split()[0]

    def client(self, key="unused", **kw):
        return openai.OpenAI(base_url=self.url, api_key=key, max_retries=0, **kw)

    def stop(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            code, _, err = self.stop()
            assert code == 0, (code, err)


def post(url, body, headers=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def user_turn(problem=PROBLEM):
    return [{"role": "user", "content": problem + "\n" + INSTRUCTION}]


def test_openai_client():
    with Serve() as s:
        c = s.client()
        assert [m.id for m in c.models.list().data] == [NAME]
        # Chat, whole: a reasoning trace that closes its think block and boxes an answer; usage adds up.
        r = c.chat.completions.create(model=NAME, messages=user_turn(), max_tokens=96, seed=7, temperature=0.6)
        text = r.choices[0].message.content
        assert "</think>" in text and "\\boxed{" in text, text
        assert r.choices[0].finish_reason == "stop" and r.usage.completion_tokens > 0
        # The same seed draws the same completion, streamed or not; the stream's deltas add up to it.
        again = c.chat.completions.create(model=NAME, messages=user_turn(), max_tokens=96, seed=7, temperature=0.6)
        assert again.choices[0].message.content == text
        pieces, finish, usage = [], None, None
        for chunk in c.chat.completions.create(model=NAME, messages=user_turn(), max_tokens=96, seed=7,
                                               temperature=0.6, stream=True, stream_options={"include_usage": True}):
            if chunk.usage:
                usage = chunk.usage
            for ch in chunk.choices:
                pieces.append(ch.delta.content or "")
                finish = ch.finish_reason or finish
        assert "".join(pieces) == text and finish == "stop" and usage.completion_tokens == r.usage.completion_tokens
        # Chat logprobs: one entry per token, top_logprobs of the asked size, most likely first.
        r = c.chat.completions.create(model=NAME, messages=user_turn(), max_tokens=40, seed=3, logprobs=True,
                                      top_logprobs=3)
        lp = r.choices[0].logprobs.content
        assert len(lp) == r.usage.completion_tokens and all(len(t.top_logprobs) == 3 for t in lp)
        assert all(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob for t in lp)
        # Completions with the legacy logprobs, n choices that differ by seed, a stop string, a length cap.
        prompt = f"User: {PROBLEM}\n{INSTRUCTION}\nAssistant: <think>\n"
        r = c.completions.create(model=NAME, prompt="5 5 5 5", max_tokens=64, logprobs=2, n=3, seed=11, temperature=1.0)
        assert len(r.choices) == 3 and all(len(ch.logprobs.tokens) == len(ch.logprobs.top_logprobs) for ch in r.choices)
        for i, ch in enumerate(r.choices):  # choice i draws with seed + i
            one = c.completions.create(model=NAME, prompt="5 5 5 5", max_tokens=64, seed=11 + i, temperature=1.0)
            assert one.choices[0].text == ch.text, (i, one.choices[0].text, ch.text)
        assert len({ch.text for ch in r.choices}) >= 2, [ch.text for ch in r.choices]
        r = c.completions.create(model=NAME, prompt=prompt, max_tokens=64, stop=["="], seed=11)
        assert "=" not in r.choices[0].text and r.choices[0].finish_reason == "stop"
        r = c.completions.create(model=NAME, prompt=prompt, max_tokens=3, seed=11)
        assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3
        streamed = "".join(ch.choices[0].text for ch in c.completions.create(
            model=NAME, prompt=prompt, max_tokens=64, seed=5, stream=True) if ch.choices)
        whole = c.completions.create(model=NAME, prompt=prompt, max_tokens=64, seed=5).choices[0].text
        assert streamed == whole, (streamed, whole)
        # /health
        with urllib.request.urlopen(s.url.replace("/v1", "/health")) as h:
            assert json.loads(h.read())["status"] == "ok"


def test_errors_are_openai_shaped():
    with Serve("--max-body-bytes", "4096") as s:
        c = s.client()
        try:
            c.chat.completions.create(model="gpt-4", messages=user_turn(), max_tokens=8)
            raise AssertionError("unknown model accepted")
        except openai.NotFoundError as e:
            assert "gpt-4" in str(e)
        for body, param in [({"model": NAME, "messages": user_turn(), "max_tokens": -1}, "max_tokens"),
                            ({"model": NAME, "messages": user_turn(), "temperature": 5}, "temperature"),
                            ({"model": NAME, "messages": []}, "messages"),
                            ({"model": NAME, "messages": user_turn(PROBLEM * 40), "max_tokens": 2000}, None)]:
            try:
                c.chat.completions.create(**body)
                raise AssertionError(f"accepted {body}")
            except openai.BadRequestError as e:
                assert e.status_code == 400 and (param is None or e.body.get("param") == param), e.body
        status, text = post(s.url + "/chat/completions", b"{not json")
        assert status == 400 and "error" in json.loads(text), text
        status, text = post(s.url + "/chat/completions", {"model": NAME, "messages": user_turn("x" * 8000)})
        assert status == 413 and "larger than" in json.loads(text)["error"]["message"], (status, text)
        status, text = post(s.url + "/nowhere", {})
        assert status == 404 and "error" in json.loads(text)


def test_api_key_and_loopback():
    with Serve("--api-key-env", "SERVE_KEY", env={"SERVE_KEY": "sk-serve-1"}) as s:
        assert s.url.startswith("http://127.0.0.1:")
        try:
            s.client(key="sk-wrong").models.list()
            raise AssertionError("a wrong key was accepted")
        except openai.AuthenticationError:
            pass
        assert [m.id for m in s.client(key="sk-serve-1").models.list().data] == [NAME]


def test_full_queue_answers_503_and_sigterm_finishes_in_flight():
    # One slot and room for 4 waiting sequences. A streamed request of 4 choices (each ~100 tokens, one after
    # another) is running once its first chunk arrives; 3 of its choices then wait, so a second request of 4
    # does not fit: 503, OpenAI-shaped.
    s = Serve("--batch", "1", "--max-queue", "4")
    body = {"model": NAME, "prompt": "5 5 5 5 5 5 5 5", "max_tokens": 400, "temperature": 1.0, "seed": 3, "n": 4}
    req = urllib.request.Request(s.url + "/completions", data=json.dumps(dict(body, stream=True)).encode(),
                                 headers={"Content-Type": "application/json"})
    stream = urllib.request.urlopen(req, timeout=60)
    first = stream.readline()
    assert first.startswith(b"data: {"), first
    status, text = post(s.url + "/completions", body)
    assert status == 503 and "capacity" in json.loads(text)["error"]["message"], (status, text)
    # SIGTERM while it runs: the stream is finished whole, every choice to its end, and the server exits 0.
    s.proc.send_signal(signal.SIGTERM)
    rest = stream.read().decode()
    stream.close()
    out, err = s.proc.communicate(timeout=60)
    assert s.proc.returncode == 0 and "stopped" in out, (s.proc.returncode, out, err)
    events = [json.loads(line[6:]) for line in (first.decode() + rest).split("\n")
              if line.startswith("data: {")]
    finished = {c["index"] for e in events for c in e["choices"] if c.get("finish_reason")}
    assert finished == {0, 1, 2, 3} and rest.rstrip().endswith("data: [DONE]"), (finished, rest[-200:])


def test_generate_through_serve_draws_the_local_samples():
    os.makedirs(WORK, exist_ok=True)
    base = os.path.join(WORK, "base.db")
    subprocess.run([DISTILL, "data", "synth", "--db", base, "--n", "6"], check=True, capture_output=True)
    dbs = {k: os.path.join(WORK, k + ".db") for k in ("local", "chat", "completions")}
    for p in dbs.values():
        shutil.copy(base, p)
    common = ["--samples", "2", "--topk-logprobs", "3", "--max-tokens", "96", "--seed", "5"]
    subprocess.run([DISTILL, "generate", "--db", dbs["local"], "--teacher", MODEL, *common], check=True, capture_output=True)
    with Serve() as s:
        for ep in ("chat", "completions"):
            subprocess.run([DISTILL, "generate", "--db", dbs[ep], "--teacher", s.url, "--teacher-model", NAME,
                            "--endpoint", ep, *common], check=True, capture_output=True)
    q = "SELECT problem_id, sample_idx, seed, completion, n_tokens, finish_reason, verdict, l.k, l.blob FROM samples s " \
        "JOIN sample_logprobs l ON l.sample_id = s.id ORDER BY problem_id, sample_idx"
    local = sqlite3.connect(dbs["local"]).execute(q).fetchall()
    assert len(local) == 12
    for ep in ("chat", "completions"):
        remote = sqlite3.connect(dbs[ep]).execute(q).fetchall()
        assert [r[:8] for r in remote] == [r[:8] for r in local], ep
        for a, b in zip(local, remote):  # same ids; values to float rounding (batches differ in shape)
            assert a[8][:12] == b[8][:12]  # dataset/topk.h's header: magic, version, k, positions
            ua = [struct.unpack_from("<if", a[8], 12 + 8 * i) for i in range((len(a[8]) - 12) // 8)]
            ub = [struct.unpack_from("<if", b[8], 12 + 8 * i) for i in range((len(b[8]) - 12) // 8)]
            assert [i for i, _ in ua] == [i for i, _ in ub]
            assert max(abs(x - y) for (_, x), (_, y) in zip(ua, ub)) < 1e-3


def load(url, clients, per_client, max_tokens=48):
    """`clients` threads, each sending `per_client` chat requests in turn, odd ones streamed: (seconds, latencies,
    tokens, finish reasons)."""
    lat, tokens, statuses, lock = [], [0], [], threading.Lock()

    def worker(w):
        c = openai.OpenAI(base_url=url, api_key="x", max_retries=0, timeout=300)
        for i in range(per_client):
            t0 = time.monotonic()
            args = dict(model=NAME, messages=user_turn(f"Start with {w % 10}. Add {i % 10}."), max_tokens=max_tokens,
                        seed=w * 1000 + i, temperature=0.6)
            if w % 2:  # half the clients hold a streaming connection
                finish, used = None, 0
                for chunk in c.chat.completions.create(**args, stream=True, stream_options={"include_usage": True}):
                    used = chunk.usage.completion_tokens if chunk.usage else used
                    finish = next((ch.finish_reason for ch in chunk.choices if ch.finish_reason), finish)
            else:
                r = c.chat.completions.create(**args)
                finish, used = r.choices[0].finish_reason, r.usage.completion_tokens
            with lock:
                lat.append(time.monotonic() - t0)
                tokens[0] += used
                statuses.append(finish)
    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - t0, sorted(lat), tokens[0], statuses


def test_load_64_clients():
    with Serve("--batch", "64") as s:
        load(s.url, 1, 2)  # warm up
        rows = []
        for clients, per in ((1, 16), (64, 2)):
            secs, lat, toks, statuses = load(s.url, clients, per)
            assert len(statuses) == clients * per and set(statuses) <= {"stop", "length"}, statuses  # all answered
            rows.append((clients, clients * per, secs, len(lat) / secs, toks / secs, lat[len(lat) // 2],
                         lat[min(len(lat) - 1, int(len(lat) * 0.99))]))
    print("\n| clients | requests | seconds | requests/s | tokens/s | p50 latency s | p99 latency s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[3]:.2f} | {r[4]:.0f} | {r[5]:.2f} | {r[6]:.2f} |")


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    failed = 0
    for name, t in [(k, v) for k, v in globals().items() if k.startswith("test_")]:
        t0 = time.time()
        try:
            t()
            print(f"ok    {name} ({time.time() - t0:.1f} s)", flush=True)
        except Exception as e:
            failed += 1
            import traceback
            traceback.print_exc()
            print(f"FAIL  {name}: {e}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
