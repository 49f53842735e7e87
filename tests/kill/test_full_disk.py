#!/usr/bin/env python3
"""tests/kill/test_full_disk.py: generate, import, train's checkpoints and export run out of disk space on a small
tmpfs this test mounts. Each must exit 1 with a message that says the disk is full, leave the store and every
checkpoint valid (and nothing under a final name half written), and finish by rerunning or resuming once space is
freed, with the result of a run that had room. Needs root to mount; elsewhere it is skipped (exit 77) with a message.
Usage: test_full_disk.py DISTILL SOURCE_DIR WORK_DIR"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_kill9 import FAILURES, Harness, check, files_digest, integrity, query, sh, store_digest  # noqa: E402

class Disk:
    """A tmpfs at DIR, and a filler file that leaves a chosen number of bytes free on it."""

    def __init__(self, path, mib):
        self.path, self.filler = path, os.path.join(path, ".filler")
        os.makedirs(path, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", path], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"skipped: cannot mount a tmpfs at {path} ({r.stderr.strip() or r.returncode}; the test needs root)")
            sys.exit(77)

    def leave_free(self, n_bytes):
        self.free_all()
        st = os.statvfs(self.path)
        fill = st.f_bavail * st.f_frsize - n_bytes
        with open(self.filler, "wb") as f:
            os.posix_fallocate(f.fileno(), 0, max(fill, 1))

    def free_all(self):
        if os.path.exists(self.filler):
            os.remove(self.filler)

    def clear(self):
        self.free_all()
        for e in os.listdir(self.path):
            p = os.path.join(self.path, e)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)

    def close(self):
        subprocess.run(["umount", self.path], capture_output=True)


def full_then_rerun(h, disk, name, argv, free, reference, result, db=None, rerun=None):
    """Runs argv with `free` bytes left, expects the full-disk failure, frees the space, reruns, compares."""
    disk.leave_free(free)
    r = sh(h.distill, *argv, check=False)
    err = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
    check(r.returncode == 1 and "the disk is full" in err,
          f"{name}: with {free // 1024} KiB free it exits 1 saying the disk is full (exit {r.returncode}: {err[:220]})")
    if db:
        bad = integrity(db)
        check(bad is None, f"{name}: the store is intact after the failure ({bad})")
    disk.free_all()
    r = sh(h.distill, *(rerun or argv), check=False)
    check(r.returncode == 0, f"{name}: with the space freed, the rerun finishes (exit {r.returncode}: {r.stderr.strip()[-200:]})")
    check(result() == reference, f"{name}: and ends as a run that had room")


def main():
    distill, src, work = sys.argv[1:4]
    subprocess.run(["umount", os.path.join(work, "disk")], capture_output=True)  # left mounted by a run that crashed
    h = Harness(distill, src, work)
    disk = Disk(os.path.join(work, "disk"), 48)
    try:
        gen = ["--teacher", h.teacher, "--samples", "4", "--max-tokens", "64", "--batch", "8", "--commit-every", "4",
               "--seed", "3"]
        ref = h.path("gen-ref.db")
        shutil.copy(h.small_db, ref)
        sh(distill, "generate", "--db", ref, *gen)
        db = os.path.join(disk.path, "gen.db")
        shutil.copy(h.small_db, db)
        full_then_rerun(h, disk, "generate", ["generate", "--db", db, *gen], 160 << 10, store_digest(ref),
                        lambda: store_digest(db), db=db)
        n, distinct, problems = query(db, "SELECT count(*), count(DISTINCT problem_id || ':' || sample_idx), "
                                          "(SELECT count(*) FROM problems) FROM samples")[0]
        check(n == distinct == 4 * problems, f"generate: every sample stored once after the rerun ({n} for {problems} problems)")

        disk.clear()
        db = os.path.join(disk.path, "import.db")
        shutil.copy(h.base_db, db)
        full_then_rerun(h, disk, "import", ["data", "import", "--db", db, "--format", "sharegpt", h.samples_jsonl],
                        2 << 20, store_digest(h.samples_db), lambda: store_digest(db), db=db)

        disk.clear()
        train = ["train", "--db", h.kept_db, "--tokenizer", h.teacher, "--steps", "12", "--save-every", "4",
                 "--max-seq-len", "128", "--batch-tokens", "512", "--eval-every", "0", "--warmup", "2", "--seed", "1",
                 "--threads", "1", "--log-every", "0"]
        ref_out = h.path("train-ref")
        sh(distill, *train, "--out", ref_out)
        ckpt = sum(os.path.getsize(os.path.join(ref_out, "checkpoint-4", f)) for f in os.listdir(os.path.join(ref_out, "checkpoint-4")))
        out = os.path.join(disk.path, "student")
        # room for the first checkpoint and not the second: the first must survive intact, the run resume from it
        full_then_rerun(h, disk, "train", [*train, "--out", out], int(ckpt * 1.5), files_digest(ref_out)["model.safetensors"],
                        lambda: (files_digest(out) or {}).get("model.safetensors"), rerun=[*train, "--out", out, "--resume"])
        check(not any(e.endswith(".tmp") for e in os.listdir(out)), f"train: no temporary checkpoint left ({sorted(os.listdir(out))})")

        disk.clear()
        export = ["export", "--model", h.teacher, "--format", "hf", "--out"]
        ref_out = h.path("export-ref")
        sh(distill, *export, ref_out)
        out = os.path.join(disk.path, "exported")
        full_then_rerun(h, disk, "export", [*export, out], 2 << 20, files_digest(ref_out), lambda: files_digest(out))
        check(sorted(os.listdir(disk.path)) == ["exported"], f"export: nothing else left on the disk ({os.listdir(disk.path)})")
    finally:
        h.close()
        disk.close()
    print(f"{len(FAILURES)} failures")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
