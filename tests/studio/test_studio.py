#!/usr/bin/env python3
"""tests/studio/test_studio.py: `distill studio` in a real browser. Headless Chromium (Debian's, driven through
Selenium and Debian's /usr/bin/chromedriver, never a downloaded one) filters the sample table, opens a sample,
accepts it with the keyboard, undoes that, bulk-rejects a full-text query and undoes that, shows completions
holding markup as text, and gets a stale write refused; the store is checked with sqlite3 after each step.
Plain HTTP checks the token and Host rules. Screenshots of every view land in OUT/screens.

Usage: test_studio.py DISTILL_BIN OUT_DIR
"""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

BIN, OUT = sys.argv[1], sys.argv[2]
shutil.rmtree(OUT, ignore_errors=True)
os.makedirs(os.path.join(OUT, "screens"))
DB = os.path.join(OUT, "store.db")

XSS = {
    "script": "<script>window.__pwned = 1</script>",
    "img": '<img src=x onerror="window.__pwned = 2">',
    "link": '<a href="javascript:window.__pwned = 3">click me</a> and [md](javascript:window.__pwned=4)',
}


def record(i, problem, answer, completion, verdict):
    return {"problem": {"source": "test", "split": "train", "prompt": problem, "answer": answer, "difficulty": 1 + i % 3,
                        "meta": {}},
            "completion": completion, "extracted_answer": answer if verdict == "correct" else "0", "verdict": verdict,
            "extract_rule": "boxed", "verifier": "test", "n_tokens": 20 + i, "finish_reason": "eos", "sample_idx": i % 3,
            "seed": 1000 + i, "temperature": 0.6, "top_p": 0.95, "max_tokens": 256,
            "model": {"role": "teacher", "path": "/models/teacher", "arch": "DeepseekV3ForCausalLM", "n_params": 10,
                      "n_active_params": 5, "sha256": "a" * 64}}


def make_store():
    rows = []
    for i in range(30):
        p = i // 3
        correct = i % 4 != 3
        marker = " zebra" if i % 5 == 0 else ""
        comp = f"<think>\nStep for problem {p}, sample {i}{marker}.\n</think>\nThe answer is \\boxed{{{p if correct else 0}}}"
        rows.append(record(i, f"Problem {p}: what is {p}?", str(p), comp, "correct" if correct else "incorrect"))
    for j, (name, payload) in enumerate(XSS.items()):
        rows.append(record(30 + j, f"Markup problem {name}", "1", f"<think>\n{payload}\n</think>\n{payload} \\boxed{{1}}", "correct"))
    path = os.path.join(OUT, "samples.jsonl")
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    subprocess.run([BIN, "data", "import", "--db", DB, "--format", "jsonl", path], check=True, capture_output=True)
    # Eval answers for problem 1 (as `distill eval` writes them), for the problem view.
    db = sqlite3.connect(DB)
    db.execute("INSERT INTO runs(kind, config_toml, started_at, finished_at, status, host, version) "
               "VALUES ('eval', '', 't', 't', 'ok', 'h', 'v')")
    run = db.execute("SELECT max(id) FROM runs").fetchone()[0]
    db.execute("INSERT INTO models(role, path, arch, n_params, n_active_params, sha256) "
               "VALUES ('student', '/models/student', 'Qwen2ForCausalLM', 3, 3, 'b')")
    student = db.execute("SELECT id FROM models WHERE sha256 = 'b'").fetchone()[0]
    pid = db.execute("SELECT id FROM problems WHERE prompt LIKE 'Problem 1:%'").fetchone()[0]
    db.execute("INSERT INTO eval_results VALUES (?, ?, ?, 0, 'The student says \\boxed{1}', 'correct', 9, 1.0, 'test')",
               (run, student, pid))
    db.commit()
    db.close()


def q(sql, *args):
    db = sqlite3.connect(f"file:{DB}?mode=ro", uri=True)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def status_of(sid):
    return q("SELECT status FROM sample_status WHERE sample_id = ?", sid)[0][0]


def http(url, method="GET", body=None, headers=None):
    req = urllib.request.Request(url, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


make_store()
server = subprocess.Popen([BIN, "studio", "--db", DB, "--port", "0", "--user", "tester"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
line = ""
deadline = time.time() + 20
while "open http" not in line and time.time() < deadline:
    line = server.stdout.readline()
m = re.search(r"(http://[^/]+)/\?token=([0-9a-f]+)", line)
assert m, f"no URL printed: {line!r}"
BASE, TOKEN = m.group(1), m.group(2)
URL = f"{BASE}/?token={TOKEN}"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


try:
    # ---- the token and Host rules, over plain HTTP ----
    check(http(BASE + "/")[0] == 403, "the page without the token is refused")
    check(http(BASE + "/api/count")[0] == 403, "the API without the token is refused")
    check(http(BASE + "/api/count", headers={"X-Distill-Token": "0" * 48})[0] == 403, "a wrong token is refused")
    code, body = http(BASE + "/api/count", headers={"X-Distill-Token": TOKEN})
    check(code == 200 and json.loads(body)["count"] == 33, "the right token in the header reads the store")
    code, _ = http(f"{BASE}/api/review?token={TOKEN}", "POST", b'{"ids":[1],"decision":"keep"}',
                   {"Content-Type": "application/json"})
    check(code == 403 and status_of(1) == "pending", "a write with the token only in the URL (CSRF) is refused")
    check(http(BASE + "/api/count", headers={"X-Distill-Token": TOKEN, "Host": "evil.example:80"})[0] == 403,
          "a request naming another Host (DNS rebinding) is refused")
    # Hostile input: malformed and mutated bodies and query strings get a JSON 4xx, never a crash or a write.
    import random
    rnd = random.Random(5)
    hdr = {"X-Distill-Token": TOKEN, "Content-Type": "application/json"}
    actions_before = q("SELECT count(*) FROM curation_actions")[0][0]
    seeds = [("/api/review", '{"ids":[1],"decision":"keep","seen":{"1":null}}'),
             ("/api/bulk", '{"query":{"search":"zebra"},"decision":"reject","stamp":"6:1:0"}'),
             ("/api/undo", '{"action_id":999999}')]
    odd = ['"', '{', '}', '[', ']', ',', ':', '-1', '1e999', 'null', '\\u0000', '\xff', '9' * 30, 'true', '']
    statuses = set()
    for i in range(300):
        path, body = seeds[i % len(seeds)]
        b = list(body)
        for _ in range(rnd.randint(1, 3)):
            at = rnd.randrange(len(b) + 1)
            b[at:at + rnd.randint(0, 3)] = list(rnd.choice(odd))
        code, text = http(BASE + path, "POST", "".join(b).encode("utf-8", "surrogateescape"), hdr)
        statuses.add(code)
        if code >= 500 or not text.startswith("{"):
            check(False, f"POST {path} {''.join(b)!r} gave {code} {text[:80]!r}")
            break
    for qs in ["limit=-1", "limit=99999999999999999999", "after=x", "after=1:", "sort=zz", "min_tokens=1.5", "problem=%00",
               "search=%22", "search=AND", "status=kept,", "run=" + "9" * 40, "verdict=%FF", "split=" + "x" * 5000]:
        code, text = http(BASE + "/api/samples?" + qs, headers=hdr)
        statuses.add(code)
        if code >= 500 or not text.startswith("{"):
            check(False, f"GET /api/samples?{qs[:40]} gave {code} {text[:80]!r}")
    check(http(BASE + "/api/review", "POST", b"{" * (5 << 20), hdr)[0] == 413, "a 5 MB body is refused (413)")
    check(http(BASE + "/api/nothing", headers=hdr)[0] == 404 and http(BASE + "/api/sample/abc", headers=hdr)[0] == 404,
          "unknown routes are 404s")
    check(server.poll() is None and http(BASE + "/api/count", headers=hdr)[0] == 200, "the studio survives hostile input")
    check(statuses <= {200, 400, 409} and 400 in statuses, f"hostile requests get 200, 400 or 409 ({sorted(statuses)})")
    # Only well-formed keeps of sample 1 can have gone through; the store's log stays coherent.
    changed = q("SELECT count(*) FROM curation_actions")[0][0] - actions_before
    check(q("SELECT count(*) FROM curation_effects WHERE sample_id <> 1 AND action_id > ?", actions_before)[0][0] == 0,
          f"mutated requests decided on no other sample ({changed} actions)")
    for a in q("SELECT id FROM curation_actions WHERE id > ? AND kind <> 'undo' AND undone_by IS NULL ORDER BY id DESC", actions_before):
        subprocess.run([BIN, "data", "undo", "--db", DB, str(a[0])], capture_output=True, check=True)
    check(status_of(1) == "pending", "and their effects are undone for the rest of the test")

    # A read-only studio (--read-only, or a store this user cannot write) reads and refuses every change.
    ro = subprocess.Popen([BIN, "studio", "--db", DB, "--port", "0", "--read-only"], stdout=subprocess.PIPE, text=True)
    ro_line = ro.stdout.readline() + ro.stdout.readline()
    rm = re.search(r"(http://[^/]+)/\?token=([0-9a-f]+)", ro_line)
    hdr = {"X-Distill-Token": rm.group(2), "Content-Type": "application/json"}
    check("(read-only)" in ro_line and http(rm.group(1) + "/api/count", headers=hdr)[0] == 200, "a read-only studio reads")
    code, body = http(rm.group(1) + "/api/review", "POST", b'{"ids":[1],"decision":"keep"}', hdr)
    check(code == 403 and "read-only" in body and status_of(1) == "pending", "and refuses a change (403)")
    ro.send_signal(signal.SIGINT)
    ro.wait(timeout=15)
    code, body = http(BASE + "/api/samples?status=maybe", headers={"X-Distill-Token": TOKEN})
    check(code == 400 and "pending, kept or rejected" in body, "a bad filter is a 400 naming what is expected")

    # ---- the browser ----
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"]:
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    # The views re-render whole: an element read mid-render is stale, and is looked up again.
    wait = WebDriverWait(driver, 15, ignored_exceptions=[StaleElementReferenceException, NoSuchElementException])
    shot = lambda name: driver.save_screenshot(os.path.join(OUT, "screens", name + ".png"))
    count_text = lambda: driver.find_element(By.ID, "count").text

    driver.get(URL)
    wait.until(lambda d: "samples" in count_text() and "counting" not in count_text())
    check(count_text() == "33 samples", "the sample table counts every sample")
    check(len(driver.find_elements(By.CSS_SELECTOR, "#rows tr")) == 33, "the first page lists them")
    shot("samples")

    # Filter: incorrect verdicts only, as the store says.
    Select(driver.find_element(By.ID, "f-verdict")).select_by_value("incorrect")
    want = q("SELECT count(*) FROM samples WHERE verdict = 'incorrect'")[0][0]
    wait.until(lambda d: count_text() == f"{want} samples")
    verdicts = {e.text for e in driver.find_elements(By.CSS_SELECTOR, "#rows tr td:nth-child(5)")}
    check(verdicts == {"incorrect"}, f"the verdict filter shows {want} incorrect samples only")
    shot("samples-filtered")

    # Open the first, accept it by keyboard: logged as studio:tester, the next pending one loads at once.
    first = int(driver.find_element(By.CSS_SELECTOR, "#rows tr").get_attribute("data-id"))
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ENTER)
    wait.until(lambda d: d.find_element(By.ID, "sample-title").text == f"Sample #{first}")
    shot("sample")
    driver.find_element(By.TAG_NAME, "body").send_keys("a")
    wait.until(lambda d: d.current_url.split("#/sample/")[-1] != str(first) and "Sample #" in d.find_element(By.ID, "sample-title").text
               and d.find_element(By.ID, "sample-title").text != f"Sample #{first}")
    check(status_of(first) == "kept", "a accepts the sample in the store")
    check(q("SELECT actor FROM curation_actions ORDER BY id DESC LIMIT 1")[0][0] == "studio:tester", "logged as studio:tester")
    nxt = int(driver.find_element(By.ID, "sample-title").text.split("#")[1])
    check(status_of(nxt) == "pending" and q("SELECT verdict FROM samples WHERE id = ?", nxt)[0][0] == "incorrect",
          "the next pending sample of the filter is loaded")
    driver.find_element(By.TAG_NAME, "body").send_keys("u")
    wait.until(lambda d: "Undid action" in d.find_element(By.ID, "banner").text)
    check(status_of(first) == "pending", "u undoes the accept in the store")
    check(q("SELECT a.undone_by IS NOT NULL FROM curation_actions a JOIN curation_effects e ON e.action_id = a.id "
            "WHERE e.sample_id = ? AND a.actor = 'studio:tester' ORDER BY a.id DESC LIMIT 1", first)[0][0] == 1,
          "the accept is marked undone")

    # Reject with a reason picked in the dialog.
    driver.find_element(By.TAG_NAME, "body").send_keys("r")
    wait.until(EC.visibility_of_element_located((By.ID, "reason")))
    driver.find_element(By.ID, "reason").send_keys("wrong arithmetic" + Keys.ENTER)
    wait.until(lambda d: status_of(nxt) == "rejected" and d.find_element(By.ID, "sample-title").text != f"Sample #{nxt}")
    check(q("SELECT e.reason FROM curation_effects e JOIN curation_actions a ON a.id = e.action_id WHERE sample_id = ? "
            "ORDER BY a.id DESC LIMIT 1", nxt)[0][0] == "wrong arithmetic", "r rejects with the reason typed")

    # Bulk: reject every sample matching a full-text query, shown with its count first; one undo reverses it.
    driver.get(URL + "#/samples?search=zebra")
    zebras = [r[0] for r in q("SELECT rowid FROM samples_fts WHERE samples_fts MATCH 'zebra'")]
    wait.until(lambda d: count_text() == f"{len(zebras)} samples")
    driver.find_element(By.ID, "bulk-reject").click()
    wait.until(EC.visibility_of_element_located((By.ID, "bulk-dialog")))
    check(f"Reject {len(zebras)} samples matching search=zebra" in driver.find_element(By.ID, "bulk-dialog").text,
          "the bulk dialog shows the count first")
    shot("bulk-dialog")
    driver.find_element(By.ID, "bulk-reason").send_keys("mentions zebras")
    driver.find_element(By.ID, "bulk-confirm").click()
    wait.until(lambda d: "Rejected" in d.find_element(By.ID, "banner").text)
    check(all(status_of(z) == "rejected" for z in zebras), "the bulk reject applies to every match")
    acts = q("SELECT id, n_rejected FROM curation_actions WHERE reason = 'mentions zebras'")
    check(len(acts) == 1 and acts[0][1] == len(zebras), "as one logged action")
    driver.find_element(By.ID, "banner-undo").click()
    wait.until(lambda d: "Undid action" in d.find_element(By.ID, "banner").text)
    check(all(status_of(z) == "pending" for z in zebras), "one undo reverses the bulk action")
    # A bulk action whose count changed meanwhile is refused.
    # A bulk action whose matches changed after they were counted is refused, even when the count is the same:
    # sample C is rejected before the count; then A leaves the pending matches (kept) and C comes back (undo).
    pend = {"X-Distill-Token": TOKEN, "Content-Type": "application/json"}
    cli = lambda *a: subprocess.run([BIN, *a], check=True, capture_output=True)
    cli("data", "review", "--db", DB, str(zebras[2]), "--reject", "--reason", "c")
    c_action = q("SELECT max(id) FROM curation_actions")[0][0]
    counted = json.loads(http(BASE + "/api/count?stamp=1&status=pending&search=zebra", headers=pend)[1])
    cli("data", "review", "--db", DB, str(zebras[0]), "--accept")
    cli("data", "undo", "--db", DB, str(c_action))
    now = json.loads(http(BASE + "/api/count?stamp=1&status=pending&search=zebra", headers=pend)[1])
    check(now["count"] == counted["count"] and now["stamp"] != counted["stamp"], "same count, other samples")
    code, body = http(BASE + "/api/bulk", "POST", json.dumps({"query": {"status": "pending", "search": "zebra"}, "decision": "reject",
                                                               "stamp": counted["stamp"]}).encode(), pend)
    check(code == 409 and "other samples than the" in body and status_of(zebras[2]) == "pending",
          "a bulk action whose matches changed since they were counted is refused (409)")
    cli("data", "undo", "--db", DB, str(c_action + 1))  # A back to pending, as the rest of the test expects

    # Completions holding markup are shown as text and run nothing.
    for name, payload in XSS.items():
        sid = q("SELECT s.id FROM samples s JOIN problems p ON p.id = s.problem_id WHERE p.prompt = ?", f"Markup problem {name}")[0][0]
        driver.get(URL + f"#/sample/{sid}")
        wait.until(lambda d: d.find_element(By.ID, "sample-title").text == f"Sample #{sid}")
        check(driver.execute_script("return window.__pwned === undefined"), f"the {name} completion runs nothing")
        check(payload in driver.find_element(By.ID, "think").text, f"the {name} completion is shown as text")
        check(not driver.find_elements(By.CSS_SELECTOR, "#view img, #view script, #view a[href^='javascript']"),
              f"the {name} completion made no elements")
        if name == "img":
            shot("sample-markup")
    driver.get(URL + "#/samples?search=pwned")
    wait.until(lambda d: count_text() == "3 samples")
    check(driver.execute_script("return window.__pwned === undefined"), "search snippets with markup run nothing")

    # A stale write: the page shows sample 2 pending; a CLI review rejects it; the page's accept is refused.
    driver.get(URL + "#/sample/2")
    wait.until(lambda d: d.find_element(By.ID, "sample-title").text == "Sample #2")
    subprocess.run([BIN, "data", "review", "--db", DB, "2", "--reject", "--reason", "cli pass"], check=True, capture_output=True)
    driver.find_element(By.TAG_NAME, "body").send_keys("a")
    wait.until(lambda d: "Not applied" in d.find_element(By.ID, "banner").text)
    check("changed since it was shown" in driver.find_element(By.ID, "banner").text, "the refusal says the sample changed")
    check(status_of(2) == "rejected", "the other person's decision stands")
    shot("stale-write")

    # Overview, log and problem views render from the store.
    driver.get(URL + "#/overview")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".chart svg"))
    check(driver.find_element(By.ID, "count-rejected").text == str(q("SELECT count(*) FROM sample_status WHERE status = 'rejected'")[0][0]),
          "the overview counts statuses as the store does")
    check(len(driver.find_elements(By.CSS_SELECTOR, ".chart svg")) == 5, "the overview draws its five charts")
    shot("overview")
    driver.get(URL + "#/log")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#log tr[data-id]"))
    check(len(driver.find_elements(By.CSS_SELECTOR, "#log tr[data-id]")) == q("SELECT count(*) FROM curation_actions")[0][0],
          "the log lists every action")
    shot("log")
    pid = q("SELECT id FROM problems WHERE prompt LIKE 'Problem 1:%'")[0][0]
    driver.get(URL + f"#/problem/{pid}")
    wait.until(lambda d: d.find_elements(By.ID, "evals"))
    check("The student says" in driver.find_element(By.ID, "evals").text, "the problem view shows eval answers side by side")
    shot("problem")
    driver.get(URL + "#/compare")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#compare tr td"))
    check("student: student" in driver.find_element(By.ID, "compare").text and
          driver.find_element(By.CSS_SELECTOR, "#run-choice input").is_selected(), "the compare view reports the eval run ticked")
    shot("compare")
    driver.quit()
except Exception:
    if "driver" in globals():
        driver.save_screenshot(os.path.join(OUT, "screens", "failure.png"))
        print("at failure: url", driver.current_url, "banner:", driver.find_element(By.ID, "banner").text)
        print("count:", driver.find_elements(By.ID, "count") and driver.find_element(By.ID, "count").text)
    raise
finally:
    server.send_signal(signal.SIGINT)
    try:
        out, err = server.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        out, err = server.communicate()
    check(server.returncode == 0 and "stopped" in out, f"SIGINT stops the studio cleanly (exit {server.returncode}; {err.strip()[-200:]})")

print(f"{len(failures)} failed" if failures else "all passed")
sys.exit(1 if failures else 0)
