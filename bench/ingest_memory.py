"""Memory of a large data set's intake: does a 50 MB JSONL stay within a few hundred MB?

Generates a JSONL of --mb megabytes (distinct rows of about 1 kB), then measures two things
in child processes, sampling their resident memory every 50 ms:
1. the reading path alone (readers + llama-index chunking over the whole file), which must
   not grow with the file;
2. `openchat ingest` on the file for --seconds (embedding is the slow part on a CPU, so a
   50 MB file takes hours here), printing RSS and the committed chunks every --every seconds
   so the window shows steady state (several batches embedded, upserted, committed), then
   stopping it with SIGINT (it pauses after the current batch). Its memory is the libraries,
   one onnxruntime session and a batch's activations; Qdrant local mode also keeps every
   point (vectors, payload, sparse vector) in memory, about 10 kB a chunk measured, which
   grows with the index (docs/retrieval.md, Memory). ``--store edge`` runs the intake on Qdrant
   Edge instead (OPENCHAT_VECTOR_STORE=edge): mmap'ed segments, native sparse vectors, no
   sidecar; RSS is then printed with its anonymous part (file pages are page cache).

   ``--cgroup-mb N`` runs `openchat ingest` inside a cgroup v1 memory limit of N MiB (whole
   process) and prints memory.failcnt, max usage and OOM kills (bench/store_memory_cgroup.py).

    .venv/bin/python bench/ingest_memory.py [--mb 50] [--seconds 180] [--every 10] [--store local|edge] [--cgroup-mb 512]
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_memory_cgroup import cgroup_report, make_cgroup

WORDS = ["cell", "protein", "gene", "enzyme", "membrane", "signal", "pathway", "receptor", "tissue", "patient", "dose", "trial", "cohort", "variant", "binding", "expression", "kinase", "neuron", "cortex", "plasma", "lipid", "insulin", "glucose"]


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


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def committed(db: Path) -> tuple[int, int]:
    """(chunks stored, rows read) of the data set so far, as its committed batches say."""
    import sqlite3

    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute("SELECT chunks_stored, rows_done FROM contributions ORDER BY id DESC LIMIT 1").fetchone()
    except sqlite3.Error:
        return 0, 0
    return (int(row[0]), int(row[1])) if row else (0, 0)


def watch(cmd: list[str], env: dict[str, str], seconds: float | None, db: Path | None = None,
          every: float = 10.0, cgroup: Path | None = None) -> tuple[float, float, int]:
    """Run cmd, sampling its RSS every 50 ms; print RSS (and committed chunks) every ``every`` s.

    With ``cgroup`` the process is moved into it right after it starts (before its imports),
    so the cgroup's limit is on the whole process.
    """
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if cgroup is not None:
        (cgroup / "cgroup.procs").write_text(str(proc.pid))
    start, peak, last, window_peak, next_print = time.monotonic(), 0.0, 0.0, 0.0, every
    while proc.poll() is None:
        now = rss_mb(proc.pid)
        peak, window_peak = max(peak, now), max(window_peak, now)
        last = now or last
        elapsed = time.monotonic() - start
        if elapsed >= next_print:
            chunks = ""
            if db is not None and db.exists():
                stored, rows = committed(db)
                chunks = f", {stored} chunks / {rows} rows committed"
            print(f"  t={elapsed:5.0f} s  RSS {now:5.0f} MB (peak in last {every:.0f} s {window_peak:5.0f}, overall {peak:5.0f}; "
                  f"anonymous {rss_mb(proc.pid, 'RssAnon'):5.0f}, file {rss_mb(proc.pid, 'RssFile'):4.0f}){chunks}"
                  + (f", cgroup usage {int((cgroup / 'memory.usage_in_bytes').read_text()) / 2**20:.0f} MiB" if cgroup else ""),
                  flush=True)
            window_peak, next_print = 0.0, next_print + every
        if seconds is not None and elapsed > seconds:
            # `openchat ingest` pauses after the batch it is writing on SIGINT.
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=180)
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
e = load_embedder(s, serving=False)
chunker = Chunker(e.token_ids, s.chunk_size, s.chunk_overlap)
n = 0
with open(sys.argv[1], "rb") as f:
    for row in read_rows(f, "jsonl", limits=s.row_limits):
        if isinstance(row, Row):
            n += sum(1 for _ in chunker.chunk([row]))
print(n)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--every", type=float, default=10, help="print RSS every this many seconds")
    ap.add_argument("--skip-read", action="store_true", help="skip the reading-only measurement")
    ap.add_argument("--store", choices=["local", "edge"], default="local", help="OPENCHAT_VECTOR_STORE of the run")
    ap.add_argument("--cgroup-mb", type=int, help="run `openchat ingest` in a cgroup v1 memory limit of this many MiB "
                    "(whole process; needs root; see bench/store_memory_cgroup.py)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="openchat-mem-"))
    path = tmp / "big.jsonl"
    rows = make_file(path, args.mb)
    print(f"# {path.stat().st_size / 1e6:.1f} MB JSONL, {rows} rows")
    env = {**os.environ, "OPENCHAT_DATA_DIR": str(tmp / "data"), "PYTHONPATH": str(ROOT)}
    env.pop("OPENCHAT_DATABASE_URL", None)
    env.pop("OPENCHAT_QDRANT_URL", None)
    env["OPENCHAT_VECTOR_STORE"] = args.store
    print(f"# vector store: {args.store}")
    print(f"# load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f} at start")
    if not args.skip_read:
        peak, _, _ = watch([sys.executable, "-c", READ_ONLY, str(path)], env, None, every=args.every)
        print(f"reading + chunking the whole file: peak RSS {peak:.0f} MB")
    print(f"openchat ingest, RSS over time (stopped with SIGINT after {args.seconds:.0f} s):")
    cgroup = make_cgroup(f"openchat-ingestmem-{os.getpid()}", args.cgroup_mb) if args.cgroup_mb else None
    try:
        peak, last, code = watch([sys.executable, "-m", "assistant.cli", "ingest", str(path), "--quiet",
                                  "--contributor", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"], env, args.seconds,
                                 tmp / "data" / "openchat.sqlite3", args.every, cgroup)
        if cgroup is not None:
            r = cgroup_report(cgroup)
            print(f"cgroup limit {args.cgroup_mb} MiB: exit code {code}, failcnt {r['failcnt']}, "
                  f"max usage {r['max_usage_mib']:.0f} MiB, oom_kill {r['oom_kill']}")
    finally:
        if cgroup is not None:
            cgroup.rmdir()
    import sqlite3

    db = sqlite3.connect(tmp / "data" / "openchat.sqlite3")
    stored, done, total = db.execute("SELECT chunks_stored, bytes_done, bytes_total FROM contributions").fetchone()
    print(f"openchat ingest for {args.seconds:.0f} s: {stored} chunks stored, {done / 1e6:.1f} of {total / 1e6:.1f} MB read; "
          f"peak RSS {peak:.0f} MB, {last:.0f} MB when stopped")
    print(f"# load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f} at the end")


if __name__ == "__main__":
    main()
