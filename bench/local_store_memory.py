"""Qdrant local mode's memory per stored chunk, with and without the sparse (BM25) vectors.

Local mode keeps every point in Python objects, so in the embedded default the vector store,
not the intake, decides how much RAM a large knowledge base needs. Each variant runs in its own
process: insert N chunk-shaped points (384-d unit vector, the chunk's BM25 term vector, the
payload ChunkIndex writes with ~800 characters of text) through ``ChunkIndex.upsert`` 128 at a
time, then reopen the collection; prints RSS per point for both (median of ``--repeats``).

    .venv/bin/python bench/local_store_memory.py [--points 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def child(points: int, sparse: bool, path: str) -> None:
    sys.path.insert(0, str(REPO))
    import numpy as np
    from qdrant_client import QdrantClient

    from retrieval.heap import release_freed_memory
    from retrieval.lexical import analyse
    from retrieval.store import ChunkIndex, IndexedChunk

    rng = random.Random(7)
    words = [f"w{i}" for i in range(30_000)]
    client = QdrantClient(path=path)
    index = ChunkIndex(client, "chunks", 384, sidecar=None, sparse=sparse)
    index.ensure_collection()
    before = rss_mib()
    for start in range(0, points, 128):
        batch = []
        for cid in range(start + 1, min(points, start + 128) + 1):
            text = " ".join(rng.choice(words) for _ in range(120))[:800]
            vec = np.random.default_rng(cid).standard_normal(384).astype(np.float32)
            batch.append(IndexedChunk(chunk_id=cid, vector=vec / np.linalg.norm(vec), terms=analyse(text),
                                      contributor="0x" + "ab" * 20, contribution_id=1, content_hash=f"{cid:064x}",
                                      text=text, title="A title", source_id=f"src-{cid}"))
        index.upsert(batch)
    inserted = rss_mib() - before
    client.close()
    base = rss_mib()
    client = QdrantClient(path=path)
    reopened = rss_mib() - base
    release_freed_memory()  # what open_knowledge_base does after opening local mode
    trimmed = rss_mib() - base
    client.close()
    print(json.dumps({"inserted_kib": inserted * 1024 / points, "reopened_kib": reopened * 1024 / points,
                      "trimmed_kib": trimmed * 1024 / points}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", choices=["sparse", "dense"])
    ap.add_argument("--path")
    args = ap.parse_args()
    if args.child:
        child(args.points, args.child == "sparse", args.path)
        return
    runs: dict[str, list[dict[str, float]]] = {"sparse": [], "dense": []}
    for _ in range(args.repeats):
        for variant in ("sparse", "dense"):  # alternating, so both see the same machine load
            with tempfile.TemporaryDirectory() as tmp:
                out = subprocess.run([sys.executable, __file__, "--child", variant, "--points", str(args.points),
                                      "--path", tmp], check=True, capture_output=True, text=True).stdout
            runs[variant].append(json.loads(out.strip().splitlines()[-1]))
    for variant, label in (("sparse", "with sparse vectors (before; lexical_index=qdrant)"),
                           ("dense", "dense + payload only (beside tantivy, the default now)")):
        ins = statistics.median(r["inserted_kib"] for r in runs[variant])
        rep = statistics.median(r["reopened_kib"] for r in runs[variant])
        trim = statistics.median(r["trimmed_kib"] for r in runs[variant])
        print(f"{label:55s} inserted {ins:5.1f} KiB/point, reopened {rep:5.1f} KiB/point, "
              f"{trim:5.1f} after trimming the heap "
              f"({args.points} points, median of {args.repeats})")
    ratio = statistics.median(r["inserted_kib"] for r in runs["dense"]) / statistics.median(
        r["inserted_kib"] for r in runs["sparse"])
    print(f"ratio inserted dense-only / with sparse: {ratio:.2f}")


if __name__ == "__main__":
    main()
