"""The embedded vector store under a kernel memory limit: does a 60,000-chunk insert, reopen and
search finish inside a cgroup (v1 memory controller), or is it OOM-killed?

RSS arithmetic cannot tell page cache (which the kernel reclaims under a limit) from anonymous
memory (which it cannot, short of killing the process). A cgroup can: each variant runs in its
own child process, which imports everything, then the parent moves it into a fresh cgroup
``/sys/fs/cgroup/memory/openchat-storemem-<pid>-<variant>`` with ``memory.limit_in_bytes`` =
``--limit-mb``. Pages already resident at the move stay charged where they were (v1 does not
move charges by default), so the limit is headroom over the process's baseline (Python,
numpy, qdrant-client, Edge: ~100 MB). The child then inserts ``--points`` chunk-shaped points
(384-d unit vector, BM25 term vector, ChunkIndex's payload with ~800 characters of text)
through ``ChunkIndex.upsert`` 128 at a time like the intake, closes the store, reopens it and
runs a hybrid search (dense on local mode, whose lexical side is tantivy). Printed per variant: completed or killed, memory.failcnt (times the
limit was hit, i.e. reclaim ran), memory.max_usage_in_bytes, the OOM kill count
(memory.oom_control), and the child's RssAnon/RssFile while inserting and at the end.
Needs root and a writable cgroup v1 memory hierarchy; the cgroups are removed afterwards.

    .venv/bin/python bench/store_memory_cgroup.py [--points 60000] [--limit-mb 256] [--variants edge,local]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_store_memory import REPO, chunk_batch, rss_mib

CGROUP_ROOT = Path("/sys/fs/cgroup/memory")
LABELS = {"edge": "Qdrant Edge, on-disk config + maintenance (flush + optimize every 4,096 points)",
          "edge-nomaintain": "Qdrant Edge, on-disk config, no maintenance",
          "local": "Qdrant local mode, dense + payload (beside tantivy, the default)"}


def child(points: int, variant: str, path: str) -> None:
    sys.path.insert(0, str(REPO))
    import numpy as np
    from qdrant_client import QdrantClient

    from retrieval.edge_store import EdgeClient
    from retrieval.heap import release_freed_memory
    from retrieval.lexical import analyse
    from retrieval.settings import EDGE_MAINTAIN_EVERY
    from retrieval.store import ChunkIndex

    def open_index() -> ChunkIndex:
        if variant == "local":
            return ChunkIndex(QdrantClient(path=path), "chunks", 384, sidecar=None, sparse=False)
        client = EdgeClient(Path(path), maintain_every=0 if variant == "edge-nomaintain" else EDGE_MAINTAIN_EVERY)
        return ChunkIndex(client, "chunks", 384, sidecar=None, sparse=True)

    def report(stage: str, **extra: float) -> None:
        print(json.dumps({"stage": stage, "anon_mib": rss_mib("RssAnon"), "file_mib": rss_mib("RssFile"),
                          "t": time.perf_counter() - t0, **extra}), flush=True)

    t0 = time.perf_counter()
    print(json.dumps({"stage": "ready", "anon_mib": rss_mib("RssAnon"), "file_mib": rss_mib("RssFile")}), flush=True)
    sys.stdin.readline()  # the parent has moved this process into the cgroup
    rng = random.Random(7)
    words = [f"w{i}" for i in range(30_000)]
    index = open_index()
    index.ensure_collection()
    report("start")
    for start in range(0, points, 128):
        index.upsert(chunk_batch(rng, words, start + 1, min(points, start + 128)))
        if (start // 128) % 64 == 63:
            report("insert", points=start + 128)
    report("inserted", points=points)
    index.client.close()
    release_freed_memory()
    index = open_index()
    count = index.count()
    release_freed_memory()  # what open_knowledge_base does after opening local mode
    report("reopened", points=count)
    vec = np.random.default_rng(1).standard_normal(384).astype(np.float32)
    terms = analyse(" ".join(words[:5]))
    times = []
    for _ in range(21):
        t = time.perf_counter()
        # Local mode beside tantivy holds no sparse vectors: its part of a hybrid query is dense.
        hits = index.search(vec / np.linalg.norm(vec), terms, 10, mode="dense" if variant == "local" else "hybrid")
        times.append((time.perf_counter() - t) * 1000)
    report("searched", hits=len(hits), search_ms_median=sorted(times)[10])
    index.client.close()
    report("done")


def read(cg: Path, name: str) -> str:
    return (cg / name).read_text().strip()


def make_cgroup(name: str, limit_mb: int) -> Path:
    """A fresh v1 memory cgroup with a hard limit and no swap (anonymous memory must fit)."""
    cg = CGROUP_ROOT / name
    cg.mkdir()
    (cg / "memory.limit_in_bytes").write_text(str(limit_mb * 1024 * 1024))
    (cg / "memory.swappiness").write_text("0")
    return cg


def cgroup_report(cg: Path) -> dict[str, float]:
    """Times the limit was hit (reclaim ran), the peak charge and the OOM kills in the cgroup."""
    oom = dict(line.split() for line in read(cg, "memory.oom_control").splitlines())
    return {"failcnt": int(read(cg, "memory.failcnt")), "max_usage_mib": int(read(cg, "memory.max_usage_in_bytes")) / 2**20,
            "oom_kill": int(oom.get("oom_kill", 0))}


def run(variant: str, points: int, limit_mb: int) -> dict[str, object]:
    cg = make_cgroup(f"openchat-storemem-{os.getpid()}-{variant}", limit_mb)
    try:
        with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
            proc = subprocess.Popen([sys.executable, __file__, "--child", variant, "--points", str(points),
                                     "--path", tmp], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert proc.stdin is not None and proc.stdout is not None
            ready = json.loads(proc.stdout.readline())
            (cg / "cgroup.procs").write_text(str(proc.pid))
            proc.stdin.write("go\n")
            proc.stdin.flush()
            stages = [ready]
            for line in proc.stdout:
                stages.append(json.loads(line))
                s = stages[-1]
                print(f"  {variant}: {s['stage']:9s} {s.get('points', ''):>6} points  anon {s['anon_mib']:6.0f} MiB  "
                      f"file {s['file_mib']:5.0f} MiB  cgroup usage {int(read(cg, 'memory.usage_in_bytes')) / 2**20:5.0f} MiB"
                      f"  {s.get('t', 0):5.0f} s", flush=True)
            code = proc.wait()
            return {"variant": variant, "returncode": code, "completed": stages[-1]["stage"] == "done",
                    **cgroup_report(cg), "ready": ready, "stages": stages[1:]}
    finally:
        cg.rmdir()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=60_000)
    ap.add_argument("--limit-mb", type=int, default=256)
    ap.add_argument("--variants", default="edge,local")
    ap.add_argument("--child", choices=list(LABELS))
    ap.add_argument("--path")
    args = ap.parse_args()
    if args.child:
        child(args.points, args.child, args.path)
        return
    results = []
    for variant in args.variants.split(","):
        print(f"{LABELS[variant]}: {args.points} points, limit {args.limit_mb} MiB over the baseline", flush=True)
        results.append(run(variant, args.points, args.limit_mb))
    for r in results:
        stages = r["stages"]
        assert isinstance(stages, list)
        last, ready = stages[-1], r["ready"]
        assert isinstance(ready, dict)
        inserted = [s for s in stages if s["stage"] == "inserted"]
        growth = ((inserted[0]["anon_mib"] - stages[0]["anon_mib"]) * 1024 / inserted[0]["points"]) if inserted else float("nan")
        status = "completed" if r["completed"] else f"FAILED (rc {r['returncode']})"
        print(f"{r['variant']:16s} {status:18s} "
              f"failcnt {r['failcnt']:6d}  max usage {r['max_usage_mib']:5.0f} MiB  oom_kill {r['oom_kill']}  "
              f"last stage {last['stage']} anon {last['anon_mib']:.0f} MiB file {last['file_mib']:.0f} MiB "
              f"(baseline anon {ready['anon_mib']:.0f} file {ready['file_mib']:.0f}); "
              f"anon growth while inserting {growth:.2f} KiB/point")
        searched = [s for s in stages if s["stage"] == "searched"]
        if searched:
            print(f"{'':16s} search median {searched[0]['search_ms_median']:.1f} ms, anon after reopen+search "
                  f"{searched[0]['anon_mib'] - ready['anon_mib']:.0f} MiB over the baseline")


if __name__ == "__main__":
    main()
