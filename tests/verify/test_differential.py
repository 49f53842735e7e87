"""tests/verify/test_differential.py: the differential test of answer verification, run by `make test`.
Builds the labelled corpus (gen_corpus.py), runs our verifier over it (`distill data check-answers`) and scores
ours and math-verify (pinned in scripts/setup) against the generator's labels (score.py), failing on the targets
below: >= 98% overall, >= 90% in every category, zero false accepts, and at least math-verify's score in every
category (score.py's table prints both).
Usage: test_differential.py DISTILL WORKDIR"""
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
distill, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
corpus, ours = os.path.join(work, "corpus.jsonl"), os.path.join(work, "ours.jsonl")
subprocess.run([sys.executable, os.path.join(here, "gen_corpus.py"), "--out", corpus], check=True)
with open(ours, "w") as f:
    subprocess.run([distill, "data", "check-answers", "--jsonl", corpus], check=True, stdout=f)
r = subprocess.run([sys.executable, os.path.join(here, "score.py"), "--corpus", corpus, "--ours", ours,
                    "--min-overall", "98", "--min-category", "90", "--max-false-accepts", "0", "--at-least-math-verify", "--markdown",
                    "--dump-disagreements", os.path.join(work, "disagreements.jsonl")])
sys.exit(r.returncode)
