"""tests/remote/test_remote_teacher.py: `distill generate --teacher http://127.0.0.1:PORT/v1` against the fake
OpenAI-compatible servers of fake_openai.py: every fault ends in a retry or a clear error with no sample lost or
doubled (count and key check after each), failures are recorded and drawn again by the next run, the API key
never reaches the store, the config row or the output, Ctrl-C and the token budget stop cleanly and resume, and
each server's response shape is stored as the local engine would store it.

Usage: test_remote_teacher.py DISTILL_BINARY WORKDIR [TEACHER_DIR]   (prints the fault table; exit 1 on failure)
"""
import struct
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_openai import FakeServer, Teacher, R1_INSTRUCTION  # noqa: E402

DISTILL, WORK = sys.argv[1], sys.argv[2]
TEACHER_DIR = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.path.dirname(__file__), "../../models/demo-teacher")
N_PROBLEMS, K = 6, 2
PLANNED = N_PROBLEMS * K
FAST = ["--backoff-base", "0.05", "--request-timeout", "1"]


def run(args, env=None, check=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([DISTILL] + args, capture_output=True, text=True, env=e)
    if check is not None and p.returncode != check:
        raise AssertionError(f"exit {p.returncode}, expected {check}: {' '.join(args)}\n{p.stdout}\n{p.stderr}")
    return p


def fresh_store(name):
    base = os.path.join(WORK, "base.db")
    if not os.path.exists(base):
        run(["data", "synth", "--db", base, "--n", str(N_PROBLEMS)], check=0)
    path = os.path.join(WORK, name + ".db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    shutil.copy(base, path)
    return path


def answers_of(db):
    with sqlite3.connect(db) as c:
        return dict(c.execute("SELECT prompt, answer FROM problems"))


def generate(db, server, *extra, env=None, check=0, model="teacher"):
    defaults = [x for flag, value in (("--concurrency", "3"), ("--samples", str(K))) if flag not in extra
                for x in (flag, value)]
    return run(["generate", "--db", db, "--teacher", server.url(), "--teacher-model", model, *defaults, *FAST,
                *extra], env=env, check=check)


def q(db, sql, *args):
    with sqlite3.connect(db) as c:
        return c.execute(sql, args).fetchall()


def check_keys(db, expect):
    """No sample lost or doubled: `expect` samples, each key once, each with one ok request record."""
    n = q(db, "SELECT COUNT(*) FROM samples")[0][0]
    keys = q(db, "SELECT COUNT(DISTINCT problem_id || '/' || sample_idx || '/' || seed) FROM samples")[0][0]
    assert n == expect and keys == expect, f"{n} samples, {keys} distinct keys, expected {expect}"
    ok = q(db, "SELECT COUNT(*) FROM remote_requests WHERE status = 'ok'")[0][0]
    assert ok == expect, f"{ok} ok request records for {expect} samples"
    orphans = q(db, "SELECT COUNT(*) FROM samples s WHERE NOT EXISTS (SELECT 1 FROM remote_requests r WHERE "
                    "r.status = 'ok' AND r.problem_id = s.problem_id AND r.sample_idx = s.sample_idx AND r.seed = s.seed)")
    assert orphans[0][0] == 0, "a sample without its request record"
    return n


TABLE = []


def test_streamed_request_answered_whole():
    """A server that ignores `stream` and answers application/json: read as a whole answer, not retried."""
    db = fresh_store("json_for_stream")
    with FakeServer(Teacher("vllm", answers_of(db)), faults={i: "json_for_stream" for i in range(1, 100)}) as srv:
        generate(db, srv)
        check_keys(db, PLANNED)
        assert q(db, "SELECT MAX(attempts) FROM remote_requests")[0][0] == 1


def test_faults():
    """Each fault on the first request of a run: retried, and the run ends with every sample stored once."""
    cases = [("500", []), ("429", []), ("truncated", []), ("truncated", ["--no-stream"]), ("stall", []),
             ("reset", []), ("content_type", []), ("content_type", ["--no-stream"]), ("drop", [])]
    for fault, extra in cases:
        db = fresh_store("fault_" + fault + "".join(extra))
        with FakeServer(Teacher("vllm", answers_of(db)), faults={1: fault}, stall=2.5) as srv:
            p = generate(db, srv, *extra)
            n = check_keys(db, PLANNED)
            attempts = q(db, "SELECT SUM(attempts), MAX(attempts) FROM remote_requests")[0]
            assert attempts == (PLANNED + 1, 2), f"{fault}: attempts {attempts}"
            log = srv.completions_log()
            if fault == "429":  # Retry-After: 1 is honoured (the backoff alone would wait ~0.05 s)
                first = log[0]
                retry = [e for e in log[1:] if e["body"]["seed"] == first["body"]["seed"]][0]
                assert retry["t"] - first["t"] >= 0.95, f"retried after {retry['t'] - first['t']:.2f} s"
        what = {"500": "retried after backoff", "429": "retried after Retry-After (1 s)",
                "truncated": "malformed answer, retried", "stall": "read timeout (1 s), retried",
                "reset": "connection reset mid-stream, retried", "content_type": "wrong Content-Type, retried",
                "drop": "connection closed without an answer, retried"}[fault]
        TABLE.append((fault + (" (whole answers)" if extra else " (SSE)" if fault in ("truncated", "content_type") else ""),
                      what, f"{n}/{PLANNED}", 0, 0))


def test_failure_recorded_and_retried_next_run():
    db = fresh_store("fail400")
    with FakeServer(Teacher("vllm", answers_of(db)), faults={1: "400"}) as srv:
        p = generate(db, srv, check=1)
        assert "1 requests failed" in p.stderr and "run the same command again" in p.stderr, p.stderr
        assert q(db, "SELECT COUNT(*) FROM samples")[0][0] == PLANNED - 1
        failed = q(db, "SELECT attempts, http_status, error FROM remote_requests WHERE status = 'failed'")
        assert len(failed) == 1 and failed[0][0] == 1 and failed[0][1] == 400, failed  # a 400 is not retried
        assert "maximum context length" in failed[0][2], failed
        assert q(db, "SELECT status FROM runs WHERE kind = 'generate'") == [("failed",)]
        p = generate(db, srv)
        assert "1 new samples (11 of 12 already stored)" in p.stdout, p.stdout
        check_keys(db, PLANNED)
        assert q(db, "SELECT status FROM runs WHERE kind = 'generate' ORDER BY id") == [("failed",), ("ok",)]
    TABLE.append(("400 (not retryable)", "recorded as failed, exit 1; the next run drew it", f"{PLANNED}/{PLANNED}", 0, 0))


def test_max_failures_stops_the_run():
    db = fresh_store("maxfail")
    with FakeServer(Teacher("vllm", answers_of(db)), faults={i: "500" for i in range(1, 100)}) as srv:
        p = generate(db, srv, "--retries", "1", "--max-failures", "2", "--concurrency", "1", check=1)
        assert "--max-failures" in p.stderr, p.stderr
        assert len(srv.completions_log()) == 4, len(srv.completions_log())  # 2 samples x (1 try + 1 retry)
        assert q(db, "SELECT COUNT(*) FROM remote_requests WHERE status = 'failed'")[0][0] == 2
    # A key refused mid-run (or DeepSeek's 402, an empty balance) fails every request alike: the run stops at once.
    for fault in ("401", "402"):
        db = fresh_store("fatal" + fault)
        with FakeServer(Teacher("deepseek", answers_of(db)), faults={3: fault}) as srv:
            p = generate(db, srv, "--concurrency", "1", check=1)
            assert f"the server answered HTTP {fault}" in p.stderr, p.stderr
            assert len(srv.completions_log()) == 3, len(srv.completions_log())
            check_keys(db, 2)


def test_key_never_leaks():
    key, password = "sk-test-SECRET123", "pw-SECRET456"
    db = fresh_store("key")
    with FakeServer(Teacher("deepseek", answers_of(db)), key=key) as srv:
        url = srv.url(userinfo=f"alice:{password}@")
        base = ["generate", "--db", db, "--teacher", url, "--teacher-model", "teacher", "--samples", str(K), *FAST,
                "--api-key-env", "MY_KEY"]
        bad = run(base, env={"MY_KEY": "sk-wrong-SECRET789"}, check=2)
        assert "refused the key" in bad.stderr and "$MY_KEY" in bad.stderr, bad.stderr
        good = run(base, env={"MY_KEY": key}, check=0)
        check_keys(db, PLANNED)
        assert all(e["auth"] == "Bearer " + key for e in srv.log if e["path"] != "/v1/models")
        outputs = bad.stdout + bad.stderr + good.stdout + good.stderr
        blobs = b""
        for suffix in ("", "-wal"):
            if os.path.exists(db + suffix):
                blobs += open(db + suffix, "rb").read()
        for secret in (key, password, "sk-wrong-SECRET789"):
            assert secret not in outputs, f"{secret} in the output"
            assert secret.encode() not in blobs, f"{secret} in the store file"
        configs = " ".join(c for (c,) in q(db, "SELECT config_toml FROM runs"))
        assert "SECRET" not in configs and "alice" not in configs, configs
        assert q(db, "SELECT path FROM models") == [(srv.url(),)]


def test_interrupt_stores_what_finished_and_resumes():
    db = fresh_store("sigint")
    with FakeServer(Teacher("vllm", answers_of(db)), delay=0.4) as srv:
        args = ["generate", "--db", db, "--teacher", srv.url(), "--teacher-model", "teacher", "--samples", str(K),
                "--concurrency", "2", "--commit-every", "1", *FAST]
        proc = subprocess.Popen([DISTILL] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # once some samples are stored (the commit batch is 1 below)
            try:
                if q(db, "SELECT COUNT(*) FROM samples")[0][0] >= 2:
                    break
            except sqlite3.OperationalError:
                pass
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, (proc.returncode, err)
        n = q(db, "SELECT COUNT(*) FROM samples")[0][0]
        assert 0 < n < PLANNED, n
        check_keys(db, n)
        p = generate(db, srv)
        assert f"{PLANNED - n} new samples ({n} of {PLANNED} already stored)" in p.stdout, p.stdout
        check_keys(db, PLANNED)
    TABLE.append(("SIGINT mid-run", f"stopped with {n} stored, exit 130; the rerun drew the rest",
                  f"{PLANNED}/{PLANNED}", 0, 0))


def test_token_budget_stops_cleanly_and_resumes():
    db = fresh_store("budget")
    with FakeServer(Teacher("vllm", answers_of(db))) as srv:
        p = generate(db, srv, "--max-total-tokens", "300", "--max-tokens", "40", "--concurrency", "2")
        assert "stopped at --max-total-tokens 300" in p.stdout, p.stdout
        n = q(db, "SELECT COUNT(*) FROM samples")[0][0]
        billed = q(db, "SELECT SUM(prompt_tokens + completion_tokens) FROM remote_requests")[0][0]
        assert 0 < n < PLANNED and billed <= 300 + 31 + 40, (n, billed)
        check_keys(db, n)
        generate(db, srv, "--max-tokens", "40")
        check_keys(db, PLANNED)


def test_rate_limit():
    db = fresh_store("rate")
    with FakeServer(Teacher("vllm", answers_of(db))) as srv:
        generate(db, srv, "--max-requests-per-minute", "300", "--concurrency", "4")
        t = sorted(e["t"] for e in srv.completions_log())
        assert t[-1] - t[0] >= (len(t) - 1) * 0.2 * 0.9, f"{len(t)} requests in {t[-1] - t[0]:.2f} s"


def test_shapes():
    # DeepSeek's API: reasoning_content, whole answers, usage with reasoning_tokens, a fingerprint.
    db = fresh_store("deepseek")
    with FakeServer(Teacher("deepseek", answers_of(db))) as srv:
        generate(db, srv, "--no-stream")
        check_keys(db, PLANNED)
        rows = q(db, "SELECT completion, finish_reason, n_tokens FROM samples")
        assert all(c.startswith("<think>\nThe problem is") and "\n</think>\n\nThe answer is \\boxed{" in c
                   for c, _, _ in rows), rows[0]
        assert {f for _, f, _ in rows} == {"eos"}
        assert q(db, "SELECT DISTINCT system_fingerprint, server_model FROM remote_requests") == [("fp_fake_deepseek", "teacher")]
        verdicts = dict(q(db, "SELECT verdict, COUNT(*) FROM samples GROUP BY verdict"))
        seeds = [s for (s,) in q(db, "SELECT seed FROM samples")]
        assert verdicts.get("correct", 0) == sum(1 for s in seeds if s % 2 == 0), verdicts

    # vLLM with token ids: the top-k stored as the local engine stores it, one row per generated token.
    db = fresh_store("vllm_ids")
    with FakeServer(Teacher("vllm", answers_of(db))) as srv:
        generate(db, srv, "--topk-logprobs", "3")
        check_keys(db, PLANNED)
        for k, blob, n in q(db, "SELECT l.k, l.blob, s.n_tokens FROM sample_logprobs l JOIN samples s ON s.id = l.sample_id"):
            # dataset/topk.h version 1: "DTK\x01", k, positions, then (id, logprob) records
            assert k == 3 and blob[:4] == b"DTK\x01" and struct.unpack_from("<II", blob, 4) == (3, n), (k, blob[:12], n)
            assert len(blob) == 12 + n * 3 * 8, (k, len(blob), n)
        assert q(db, "SELECT COUNT(*) FROM sample_logprobs")[0][0] == PLANNED
        body = srv.completions_log()[0]["body"]
        assert body["return_tokens_as_token_ids"] is True and body["top_logprobs"] == 3 and body["logprobs"] is True

    # Token texts only (OpenAI's shape): without the teacher's tokenizer nothing is guessed; with it, each text
    # maps to its one id.
    db = fresh_store("text_lp")
    sp = os.path.join(TEACHER_DIR, "tokenizer.model")
    with FakeServer(Teacher("openai", answers_of(db), sp_model=sp)) as srv:
        p = generate(db, srv, "--topk-logprobs", "2", "--no-token-ids")
        assert f"{PLANNED} samples stored without logprobs" in p.stdout, p.stdout
        assert q(db, "SELECT COUNT(*) FROM sample_logprobs")[0][0] == 0
    db = fresh_store("text_lp_tok")
    teacher = Teacher("openai", answers_of(db), sp_model=sp)
    with FakeServer(teacher) as srv:
        generate(db, srv, "--topk-logprobs", "2", "--no-token-ids", "--teacher-tokenizer", TEACHER_DIR)
        rows = q(db, "SELECT s.completion, l.blob FROM sample_logprobs l JOIN samples s ON s.id = l.sample_id")
        assert len(rows) == PLANNED
        for completion, blob in rows:
            ids = [struct.unpack_from("<i", blob, 12 + 8 * 2 * j)[0] for j in range((len(blob) - 12) // 16)]
            assert completion.startswith("<think>\n") and ids == teacher.sp.encode(completion), \
                (ids[:8], teacher.sp.encode(completion)[:8])

    # llama.cpp's server: the think block inline, closed but not opened (the template opened it).
    db = fresh_store("llamacpp")
    with FakeServer(Teacher("llamacpp", answers_of(db))) as srv:
        generate(db, srv)
        c = q(db, "SELECT completion FROM samples LIMIT 1")[0][0]
        assert c.startswith("<think>\nThe problem is") and c.count("<think>") == 1 and "</think>" in c, c

    # /v1/completions: distill's own R1 prompt goes out, and the stored completion opens the think block.
    db = fresh_store("completions")
    with FakeServer(Teacher("vllm", answers_of(db))) as srv:
        generate(db, srv, "--endpoint", "completions")
        check_keys(db, PLANNED)
        prompts = {e["body"]["prompt"] for e in srv.completions_log()}
        want = {f"User: {p}\n{R1_INSTRUCTION}\nAssistant: <think>\n" for p in answers_of(db)}
        assert prompts == want, (sorted(prompts)[:1], sorted(want)[:1])
        c = q(db, "SELECT completion FROM samples LIMIT 1")[0][0]
        assert c.startswith("<think>\nThe problem is"), c

    # vLLM's stop_reason and SGLang's matched_stop tell a stop string from EOS; older vLLM and SGLang name the
    # reasoning reasoning_content, newer vLLM reasoning.
    # A stop string that never appears: vLLM's and SGLang's null says EOS; OpenAI's shape cannot tell (stored
    # as "stop", OpenAI's own meaning).
    for style, want in (("vllm", "eos"), ("sglang", "eos"), ("openai", "stop")):
        db = fresh_store("nostop_" + style)
        with FakeServer(Teacher(style, answers_of(db))) as srv:
            generate(db, srv, "--stop", "NEVER-SEEN")
            assert q(db, "SELECT DISTINCT finish_reason FROM samples") == [(want,)], style
    for style in ("vllm", "vllm-0.10", "sglang"):
        db = fresh_store("stop_" + style)
        with FakeServer(Teacher(style, answers_of(db))) as srv:
            generate(db, srv, "--stop", "boxed")
            assert q(db, "SELECT DISTINCT finish_reason FROM samples") == [("stop",)], style
            rows = [c for (c,) in q(db, "SELECT completion FROM samples")]
            assert all("boxed" not in c and c.startswith("<think>\nThe problem is") for c in rows), (style, rows[0])


def test_resume_sends_nothing_and_bad_input():
    db = fresh_store("resume")
    with FakeServer(Teacher("vllm", answers_of(db)), models=("teacher", "other")) as srv:
        generate(db, srv)
        before = len(srv.log)
        p = generate(db, srv)
        assert "0 new samples (12 of 12 already stored)" in p.stdout and len(srv.log) == before, p.stdout
        p = run(["generate", "--db", db, "--teacher", srv.url(), "--samples", "3"], check=2)
        assert "--teacher-model is required" in p.stderr, p.stderr
        p = generate(db, srv, "--samples", "3", model="missing", check=2)
        assert "--teacher-model 'missing'" in p.stderr and "teacher, other" in p.stderr, p.stderr
        p = run(["generate", "--db", db, "--teacher", srv.url() + "?key=abc", "--teacher-model", "teacher"], check=2)
        assert "a query or fragment is not taken" in p.stderr, p.stderr
        check_keys(db, PLANNED)
    port = srv.port  # closed now: nothing listens
    p = run(["generate", "--db", db, "--teacher", f"http://127.0.0.1:{port}/v1", "--teacher-model", "teacher",
             "--samples", "3"], check=1)
    assert "could not connect" in p.stderr, p.stderr


def test_https_verifies_the_server_certificate():
    """HTTPS (DeepSeek's API is only that): the server's certificate is checked against the system's CAs, which
    SSL_CERT_FILE may name; an unknown certificate is a clear error, with nothing written."""
    cert, key = os.path.join(WORK, "cert.pem"), os.path.join(WORK, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    db = fresh_store("tls")
    with FakeServer(Teacher("deepseek", answers_of(db)), tls=(cert, key)) as srv:
        assert srv.url().startswith("https://")
        p = generate(db, srv, check=1)
        assert "TLS certificate did not verify" in p.stderr and "SSL_CERT_FILE" in p.stderr, p.stderr
        assert q(db, "SELECT COUNT(*) FROM runs WHERE kind = 'generate'")[0][0] == 0
        generate(db, srv, env={"SSL_CERT_FILE": cert})
        check_keys(db, PLANNED)


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_")]
    failed = 0
    for t in tests:
        t0 = time.time()
        try:
            t()
            print(f"ok    {t.__name__} ({time.time() - t0:.1f} s)", flush=True)
        except Exception as e:  # report every test, then fail
            failed += 1
            import traceback
            traceback.print_exc()
            print(f"FAIL  {t.__name__}: {e}", flush=True)
    print("\n| fault | what happened | samples stored | lost | doubled |\n|---|---|---|---:|---:|")
    for row in TABLE:
        print("| " + " | ".join(str(x) for x in row) + " |")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
