#!/usr/bin/env python3
"""docs/images/shoot_studio.py: remakes the README's studio screenshots from a demo store: the demo's final
review is undone (so its samples are pending again), a curator rejects one sample with a reason and accepts the
next by keyboard, and the views are captured with headless Chromium.

Usage: shoot_studio.py DISTILL_BIN DEMO_STORE OUT_DIR   (DEMO_STORE: `distill demo`'s WORKDIR/store.db; copied)
"""
import os
import re
import shutil
import subprocess
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

BIN, SRC, OUT = sys.argv[1:4]
os.makedirs(OUT, exist_ok=True)
db = os.path.join(OUT, "studio-demo.db")
shutil.copy(SRC, db)
last = subprocess.run([BIN, "data", "log", "--db", db, "--limit", "1", "--json"], capture_output=True, text=True, check=True)
action = re.search(r'"action_id": (\d+)', last.stdout).group(1)
subprocess.run([BIN, "data", "undo", "--db", db, action], check=True, capture_output=True)
server = subprocess.Popen([BIN, "studio", "--db", db, "--port", "0", "--user", "alice"], stdout=subprocess.PIPE, text=True)
line = ""
while "open http" not in line:
    line = server.stdout.readline()
url = re.search(r"(http://\S+)", line).group(1)
opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ["--headless=new", "--no-sandbox", "--window-size=1360,900"]:
    opts.add_argument(a)
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
wait = WebDriverWait(d, 20)
try:
    d.get(url + "#/samples?status=pending&sort=-tokens")
    wait.until(lambda x: "counting" not in x.find_element(By.ID, "count").text)
    d.save_screenshot(os.path.join(OUT, "studio-samples.png"))
    d.find_element(By.TAG_NAME, "body").send_keys(Keys.ENTER)
    wait.until(EC.presence_of_element_located((By.ID, "sample-title")))
    d.find_element(By.TAG_NAME, "body").send_keys("r")
    wait.until(EC.visibility_of_element_located((By.ID, "reason")))
    d.find_element(By.ID, "reason").send_keys("longest trace: repeats a step" + Keys.ENTER)
    time.sleep(1)
    d.find_element(By.TAG_NAME, "body").send_keys("k")  # back to the rejected one: its history shows the decision
    time.sleep(1)
    d.save_screenshot(os.path.join(OUT, "studio-sample.png"))
    d.get(url + "#/overview")
    wait.until(lambda x: x.find_elements(By.CSS_SELECTOR, ".chart svg"))
    d.save_screenshot(os.path.join(OUT, "studio-overview.png"))
finally:
    d.quit()
    server.terminate()
    server.wait()
    os.remove(db)
