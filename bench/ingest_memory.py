"""Memory of a large data set's intake: does a 50 MB JSONL stay within a few hundred MB?

Generates a JSONL of --mb megabytes (distinct rows of about 1 kB), then measures two things
in child processes, sampling their resident memory every 50 ms:
1. the reading path alone (readers + llama-index chunking over the whole file), which must
   not grow with the file;
2. `openchat ingest` on the file for --seconds (embedding is the slow part on a CPU, so a
   50 MB file takes hours here): peak memory, which
   is mostly the model and its activations; Qdrant local mode also keeps the index's vectors
   and payloads in memory (about 1.5 kB a chunk plus its text), which grows with the index.

    .venv/bin/python bench/ingest_memory.py [--mb 50] [--seconds 180]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("cell protein gene enzyme membrane signal pathway receptor tissue patient dose trial "
         "cohort variant binding expression kinase neuron cortex plasma lipid insulin glucose").split()


def make_file(path: Path, mb: int) -> int:
    rng = random.Random(1)
    rows = 0
    with path.open("w") as f:
        while f.tell() < mb * 1024 * 1024:
            sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))).capitalize() + f" {rows}-{i}."
                         for i in range(8)]
            f.write(json.dumps({"id": f"row-{rows}", "title": f"Record {rows}", "text": " ".join(sentences)}) + "\n")
            rows += 1
    return rows


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def watch(cmd: list[str], env: dict[str, str], seconds: float | None) -> tuple[float, float, int]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    start, peak, last = time.monotonic(), 0.0, 0.0
    while proc.poll() is None:
        now = rss_mb(proc.pid)
        peak = max(peak, now)
        last = now or last
        if seconds is not None and time.monotonic() - start > seconds:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            break
        time.sleep(0.05)
    return peak, last, proc.returncode or 0


READ_ONLY = """
import sys
from retrieval.chunking import Chunker
from retrieval.embedder import load_embedder
from retrieval.readers import Row, read_rows
from retrieval.settings import RetrievalSettings
s = RetrievalSettings()
e = load_embedder(s)
chunker = Chunker(e.token_ids, s.chunk_size, s.chunk_overlap)
n = 0
with open(sys.argv[1], "rb") as f:
    for row in read_rows(f, "jsonl", max_row_chars=s.max_row_chars):
        if isinstance(row, Row):
            n += sum(1 for _ in chunker.chunk([row]))
print(n)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=180)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="openchat-mem-"))
    path = tmp / "big.jsonl"
    rows = make_file(path, args.mb)
    print(f"# {path.stat().st_size / 1e6:.1f} MB JSONL, {rows} rows")
    env = {**os.environ, "OPENCHAT_DATA_DIR": str(tmp / "data"), "PYTHONPATH": str(ROOT)}
    env.pop("OPENCHAT_DATABASE_URL", None)
    env.pop("OPENCHAT_QDRANT_URL", None)
    peak, _, _ = watch([sys.executable, "-c", READ_ONLY, str(path)], env, None)
    print(f"reading + chunking the whole file: peak RSS {peak:.0f} MB")
    peak, last, _ = watch([sys.executable, "-m", "assistant.cli", "ingest", str(path), "--quiet",
                            "--contributor", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"], env, args.seconds)
    import sqlite3

    db = sqlite3.connect(tmp / "data" / "openchat.sqlite3")
    stored, done, total = db.execute("SELECT chunks_stored, bytes_done, bytes_total FROM contributions").fetchone()
    print(f"openchat ingest for {args.seconds:.0f} s: {stored} chunks stored, {done / 1e6:.1f} of {total / 1e6:.1f} MB read; "
          f"peak RSS {peak:.0f} MB, {last:.0f} MB when stopped")


if __name__ == "__main__":
    main()
