"""The embedded vector store's memory per stored chunk: Qdrant local mode (with and without
the sparse (BM25) vectors) against Qdrant Edge (with them, its lexical index).

Local mode keeps every point in Python objects, so in the embedded default the vector store,
not the intake, decides how much RAM a large knowledge base needs. Each variant runs in its own
process: insert N chunk-shaped points (384-d unit vector, the chunk's BM25 term vector, the
payload ChunkIndex writes with ~800 characters of text) through ``ChunkIndex.upsert`` 128 at a
time, then reopen the collection (and run one hybrid query, so Edge maps what a search
touches); prints RSS per point for both (median of ``--repeats``). Edge's segments are mmap'ed
files: their resident pages count in RSS but are page cache the kernel can drop, so the
anonymous part (RssAnon) is printed too.

    .venv/bin/python bench/local_store_memory.py [--points 20000] [--repeats 3] [--variants sparse,dense,edge]
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
LABELS = {"sparse": "local mode with sparse vectors (lexical_index=qdrant)",
          "dense": "local mode, dense + payload (beside tantivy, default)",
          "edge": "Qdrant Edge with sparse vectors (its lexical index)"}


def rss_mib(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def chunk_batch(rng: random.Random, words: list[str], first: int, last: int) -> list:
    """Chunk-shaped points ``first``..``last``: a 384-d unit vector, ~800 characters of text and
    its BM25 terms, ChunkIndex's payload fields (REPO must be on sys.path)."""
    import numpy as np

    from retrieval.lexical import analyse
    from retrieval.store import IndexedChunk

    batch = []
    for cid in range(first, last + 1):
        text = " ".join(rng.choice(words) for _ in range(120))[:800]
        vec = np.random.default_rng(cid).standard_normal(384).astype(np.float32)
        batch.append(IndexedChunk(chunk_id=cid, vector=vec / np.linalg.norm(vec), terms=analyse(text),
                                  contributor="0x" + "ab" * 20, contribution_id=1, content_hash=f"{cid:064x}",
                                  text=text, title="A title", source_id=f"src-{cid}"))
    return batch


def child(points: int, variant: str, path: str) -> None:
    sys.path.insert(0, str(REPO))
    import numpy as np
    from qdrant_client import QdrantClient

    from retrieval.edge_store import EdgeClient
    from retrieval.heap import release_freed_memory
    from retrieval.lexical import analyse
    from retrieval.store import ChunkIndex

    def open_client() -> QdrantClient | EdgeClient:
        return EdgeClient(Path(path)) if variant == "edge" else QdrantClient(path=path)

    rng = random.Random(7)
    words = [f"w{i}" for i in range(30_000)]
    client = open_client()
    index = ChunkIndex(client, "chunks", 384, sidecar=None, sparse=variant != "dense")
    index.ensure_collection()
    before = rss_mib()
    for start in range(0, points, 128):
        index.upsert(chunk_batch(rng, words, start + 1, min(points, start + 128)))
    inserted = rss_mib() - before
    client.close()
    release_freed_memory()
    base, base_anon = rss_mib(), rss_mib("RssAnon")
    client = open_client()
    index = ChunkIndex(client, "chunks", 384, sidecar=None, sparse=variant != "dense")
    index.count()  # opens the store (Edge loads its shard on first use)
    reopened = rss_mib() - base
    release_freed_memory()  # what open_knowledge_base does after opening local mode
    trimmed = rss_mib() - base
    if variant != "dense":  # one search, so what a query maps is resident (Edge) or built (local)
        vec = np.random.default_rng(1).standard_normal(384).astype(np.float32)
        index.search(vec / np.linalg.norm(vec), analyse(" ".join(words[:5])), 10)
    searched, anon = rss_mib() - base, rss_mib("RssAnon") - base_anon
    client.close()
    print(json.dumps({"inserted_kib": inserted * 1024 / points, "reopened_kib": reopened * 1024 / points,
                      "trimmed_kib": trimmed * 1024 / points, "searched_kib": searched * 1024 / points,
                      "anon_kib": anon * 1024 / points, "reopened_mib": searched}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", default="sparse,dense,edge")
    ap.add_argument("--child", choices=list(LABELS))
    ap.add_argument("--path")
    args = ap.parse_args()
    if args.child:
        child(args.points, args.child, args.path)
        return
    variants = args.variants.split(",")
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    for _ in range(args.repeats):
        for variant in variants:  # alternating, so all see the same machine load
            with tempfile.TemporaryDirectory() as tmp:
                out = subprocess.run([sys.executable, __file__, "--child", variant, "--points", str(args.points),
                                      "--path", tmp], check=True, capture_output=True, text=True).stdout
            runs[variant].append(json.loads(out.strip().splitlines()[-1]))
    for variant in variants:
        med = {key: statistics.median(r[key] for r in runs[variant]) for key in runs[variant][0]}
        print(f"{LABELS[variant]:55s} inserted {med['inserted_kib']:5.1f} KiB/point, reopened {med['reopened_kib']:5.1f} "
              f"KiB/point, {med['trimmed_kib']:5.1f} after trimming the heap, {med['searched_kib']:5.1f} after a search "
              f"({med['reopened_mib']:.0f} MiB; anonymous {med['anon_kib']:5.1f} KiB/point) "
              f"({args.points} points, median of {args.repeats})")
    if "dense" in runs:
        base = statistics.median(r["searched_kib"] for r in runs["dense"])
        for variant in variants:
            ratio = statistics.median(r["searched_kib"] for r in runs[variant]) / base
            print(f"ratio reopened+searched {variant} / dense (local mode beside tantivy): {ratio:.2f}")


if __name__ == "__main__":
    main()
