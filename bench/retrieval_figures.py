"""Retrieval benchmark on SciFact: quality, latency and ingestion speed of the knowledge base.

Ingests ../shared/data/scifact through the same intake as POST /v1/datasets (Qdrant local
mode + the tantivy sidecar, the embedded default), then prints nDCG@10 and Recall@100 on a
split for dense-only, sparse-only and hybrid search, on every lexical back end (tantivy,
the older FTS5 sidecar when the data dir has one, and Qdrant's own sparse vectors with the
IDF modifier, which a server uses), the same points copied into Qdrant Edge (native sparse
vectors + RRF in one query, and Edge beside tantivy), the search latency p50/p99 of the variants, measured
interleaved query by query in one process so they share the machine's load (median of
repeats, ratios to the previous default), and ingestion chunks/s beside the embedder's raw
chunks/s measured in the same process.

    .venv/bin/python bench/retrieval_figures.py [--split test] [--data-dir DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from assistant.db import make_engine, migrate
from retrieval.edge_store import EdgeClient, copy_points
from retrieval.embedder import load_embedder
from retrieval.intake import _embedding_text
from retrieval.knowledge import open_knowledge_base
from retrieval.lexical import (
    FtsIndex,
    analyse,
)
from retrieval.models import Chunk
from retrieval.search import Searcher
from retrieval.settings import RetrievalSettings
from retrieval.store import ChunkIndex

CONTRIBUTOR = "0x000000000000000000000000000000000005c1Fa"


def load_beir(root: Path, split: str) -> tuple[list[dict], dict[str, str], dict[str, dict[str, int]]]:
    corpus = [json.loads(line) for line in (root / "corpus.jsonl").open()]
    queries = {q["_id"]: q["text"] for q in map(json.loads, (root / "queries.jsonl").open())}
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with (root / "qrels" / f"{split}.tsv").open() as f:
        next(f)
        for line in f:
            qid, did, score = line.split("\t")
            qrels[qid][did] = int(score)
    return corpus, {q: queries[q] for q in qrels}, qrels


def ndcg_at(ranked: list[str], rel: dict[str, int], k: int = 10) -> float:
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(rel.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], rel: dict[str, int], k: int = 100) -> float:
    relevant = {d for d, g in rel.items() if g > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def docs_of(results: list) -> list[str]:
    """Chunk results to a document ranking: each document at its best chunk's rank."""
    seen: dict[str, None] = {}
    for r in results:
        if r.source_id is not None:
            seen.setdefault(r.source_id, None)
    return list(seen)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def paired_throughput(kb, corpus: list[dict], rows_per_file: int = 64) -> None:  # type: ignore[no-untyped-def]
    """Intake against the embedder alone, alternating file by file so both see the same load.

    Each slice of rows is ingested as its own data set, then the chunk texts it stored are
    embedded again by the embedder alone; the two times are summed over all slices.
    """
    intake_s = raw_s = 0.0
    chunks = 0
    tmp = Path(tempfile.mkdtemp(prefix="openchat-paired-"))
    for start in range(0, len(corpus), rows_per_file):
        path = tmp / f"slice-{start}.jsonl"
        with path.open("w") as f:
            for doc in corpus[start : start + rows_per_file]:
                f.write(json.dumps({"id": doc["_id"], "title": doc.get("title") or None, "text": doc["text"]}) + "\n")
        cid = kb.intake.open_dataset(CONTRIBUTOR, path.name, "jsonl", path.stat().st_size)
        t0 = time.perf_counter()
        kb.intake.ingest_dataset(cid, path)
        intake_s += time.perf_counter() - t0
        with kb.intake.sessions() as s:
            texts = [_embedding_text(c.title, c.text)
                     for c in s.scalars(select(Chunk).where(Chunk.contribution_id == cid))]
        t0 = time.perf_counter()
        kb.embedder.embed(texts)
        raw_s += time.perf_counter() - t0
        chunks += len(texts)
    print(f"ingest (paired, {len(corpus)} documents in slices of {rows_per_file}): intake {chunks / intake_s:.2f} chunks/s, "
          f"embedder alone {chunks / raw_s:.2f} chunks/s on the same chunks, ratio {raw_s / intake_s:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--data-dir", help="reuse (or keep) the ingested index here")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rrf-k", type=int)
    ap.add_argument("--limit-docs", type=int, help="ingest only the first N documents (smoke runs)")
    ap.add_argument("--latency-only", action="store_true", help="skip the quality runs (reuse an index)")
    ap.add_argument("--paired", type=int, metavar="N",
                    help="only measure intake vs embedder throughput, alternating, on the first N documents")
    ap.add_argument("--raw-sample", type=int, default=400, help="chunks embedded alone for the raw figure")
    ap.add_argument("--edge-optimize", action="store_true",
                    help="run Edge's optimizer (HNSW index, immutable segments) before measuring")
    args = ap.parse_args()

    corpus, queries, qrels = load_beir(Path(args.data), args.split)
    if args.limit_docs:
        corpus = corpus[: args.limit_docs]
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="openchat-bench-"))
    # No query cache: the benchmark's queries repeat across runs, a cache would hide the encoder.
    # Sparse vectors stored beside tantivy too: the Qdrant-native path is compared on the same points.
    # The knowledge base under test is local mode; the Edge store beside it in the same data dir is
    # opened apart (vector_store=auto would pick that one, and Edge allows one opener).
    overrides: dict[str, object] = {"data_dir": data_dir, "query_cache_size": 0, "qdrant_sparse": True,
                                    "vector_store": "local"}
    if args.rrf_k:
        overrides["rrf_k"] = args.rrf_k
    settings = RetrievalSettings(**overrides)
    engine = make_engine(f"sqlite:///{data_dir / 'openchat.sqlite3'}")
    migrate(engine)
    embedder = load_embedder(settings)
    kb = open_knowledge_base(settings, engine, embedder)

    if args.paired:
        paired_throughput(kb, corpus[: args.paired])
        kb.close()
        return
    print(f"# SciFact ({args.split}: {len(queries)} queries, {len(corpus)} documents), data dir {data_dir}")
    print(f"# embedder {embedder.name} ({embedder.dim} dims), chunk size {settings.chunk_size} tokens, rrf k={settings.rrf_k}")
    unfinished = kb.intake.unfinished_datasets()
    if kb.index.count() == 0 or unfinished:
        path = data_dir / "scifact.jsonl"
        if unfinished:  # an interrupted earlier run: the intake resumes after its last batch
            cid = unfinished[0]
            print(f"ingest: resuming data set {cid} after row {kb.intake.report(cid).rows}")
        else:
            with path.open("w") as f:
                for doc in corpus:
                    f.write(json.dumps({"id": doc["_id"], "title": doc.get("title") or None, "text": doc["text"]}) + "\n")
            cid = kb.intake.open_dataset(CONTRIBUTOR, path.name, "jsonl", path.stat().st_size)
        before = kb.intake.report(cid)
        t0 = time.perf_counter()
        report = kb.intake.ingest_dataset(cid, path)
        ingest_s = time.perf_counter() - t0
        produced = (report.chunks_stored + report.chunks_duplicate + report.chunks_near_duplicate) - (
            before.chunks_stored + before.chunks_duplicate + before.chunks_near_duplicate)
        # The embedder alone, in this process, on a fixed sample of the same chunk texts.
        with kb.intake.sessions() as s:
            texts = [_embedding_text(c.title, c.text)
                     for c in s.scalars(select(Chunk).order_by(Chunk.id).limit(args.raw_sample))]
        t0 = time.perf_counter()
        embedder.embed(texts)
        raw_s = time.perf_counter() - t0
        print(f"ingest: {report.rows} rows -> {report.chunks_stored} chunks stored, "
              f"{report.chunks_duplicate} exact and {report.chunks_near_duplicate} near duplicates refused, "
              f"{report.rows_rejected} rows rejected")
        print(f"ingest: {produced / ingest_s:.2f} chunks/s through the intake ({produced} chunks in {ingest_s:.1f} s); "
              f"embedder alone {len(texts) / raw_s:.2f} chunks/s ({len(texts)} chunks in {raw_s:.1f} s); "
              f"ratio {(produced / ingest_s) / (len(texts) / raw_s):.2f}")
    else:
        print(f"ingest: reusing {kb.index.count()} indexed chunks")

    qids = list(queries)
    tantivy = kb.index.sidecar
    # The FTS5 sidecar an earlier version of this benchmark built in the same data dir, if any.
    fts = FtsIndex(settings.lexical_path) if settings.lexical_path.exists() else None
    if fts is not None and fts.count() != kb.index.count():
        fts.close()
        fts = None
    exact = load_embedder(settings.model_copy(update={"quantized_queries": False}))
    cached = load_embedder(settings.model_copy(update={"query_cache_size": 4096}))

    # Qdrant Edge with the very same points (vectors and payload copied, nothing re-embedded).
    edge_client = EdgeClient(data_dir / "edge")
    if not edge_client.collection_exists(settings.collection):
        ChunkIndex(edge_client, settings.collection, embedder.dim, sparse=True).ensure_collection()
        t0 = time.perf_counter()
        copied = copy_points(kb.client, edge_client, settings.collection)
        print(f"edge: copied {copied} points from local mode in {time.perf_counter() - t0:.1f} s")
    if args.edge_optimize:
        t0 = time.perf_counter()
        edge_client.optimize(settings.collection)
        print(f"edge: optimized (HNSW, immutable segments) in {time.perf_counter() - t0:.1f} s")
    info = edge_client.get_collection(settings.collection)
    print(f"edge: {info.points_count} points in {info.segments_count} segments, {info.indexed_vectors_count} vectors indexed")

    def searcher(sidecar, emb=embedder, parallel: bool = True, client=kb.client) -> Searcher:  # type: ignore[no-untyped-def]
        index = ChunkIndex(client, settings.collection, embedder.dim, sidecar, settings.rrf_k, settings.prefetch_limit,
                           sparse=True)
        return Searcher(index, emb, parallel=parallel)

    runs = {}
    quality = [
        ("dense (int8 query encoder)", searcher(tantivy), "dense"),
        ("dense (exact query encoder)", searcher(tantivy, exact), "dense"),
        ("sparse (tantivy, embedded)", searcher(tantivy), "sparse"),
        ("sparse (FTS5)", searcher(fts), "sparse"),
        ("sparse (Qdrant IDF)", searcher(None), "sparse"),
        ("hybrid (tantivy + RRF, embedded)", searcher(tantivy), "hybrid"),
        ("hybrid (tantivy, exact query encoder)", searcher(tantivy, exact), "hybrid"),
        ("hybrid (FTS5 + RRF, exact encoder)", searcher(fts, exact), "hybrid"),
        ("hybrid (Qdrant prefetch + RRF)", searcher(None), "hybrid"),
        ("dense (Edge)", searcher(None, client=edge_client), "dense"),
        ("sparse (Edge IDF)", searcher(None, client=edge_client), "sparse"),
        ("hybrid (Edge prefetch + RRF)", searcher(None, client=edge_client), "hybrid"),
        ("hybrid (Edge dense + tantivy RRF)", searcher(tantivy, client=edge_client), "hybrid"),
    ]
    for label, s, mode in [] if args.latency_only else quality:
        if "FTS5" in label and fts is None:
            continue
        ranked = {q: docs_of(s.search(queries[q], top_k=150, mode=mode))[:100] for q in qids}
        runs[label] = ranked
        ndcg = statistics.fmean(ndcg_at(ranked[q], qrels[q]) for q in qids)
        recall = statistics.fmean(recall_at(ranked[q], qrels[q]) for q in qids)
        print(f"{label:40s} nDCG@10 {ndcg:.4f}  Recall@100 {recall:.4f}")

    def overlap(a: str, b: str) -> float:
        return statistics.fmean(len(set(runs[a][q][:10]) & set(runs[b][q][:10])) / 10 for q in qids)

    if runs:
        print(f"agreement top-10 overlap: sparse tantivy vs Qdrant {overlap('sparse (tantivy, embedded)', 'sparse (Qdrant IDF)'):.3f}, "
              f"hybrid embedded vs Qdrant {overlap('hybrid (tantivy + RRF, embedded)', 'hybrid (Qdrant prefetch + RRF)'):.3f}"
              + (f", sparse tantivy vs FTS5 {overlap('sparse (tantivy, embedded)', 'sparse (FTS5)'):.3f}" if fts else ""))
        print(f"agreement top-10 overlap, Edge: dense vs local {overlap('dense (Edge)', 'dense (int8 query encoder)'):.3f}, "
              f"sparse vs local Qdrant IDF {overlap('sparse (Edge IDF)', 'sparse (Qdrant IDF)'):.3f}, "
              f"sparse vs tantivy {overlap('sparse (Edge IDF)', 'sparse (tantivy, embedded)'):.3f}, "
              f"hybrid vs local Qdrant {overlap('hybrid (Edge prefetch + RRF)', 'hybrid (Qdrant prefetch + RRF)'):.3f}, "
              f"hybrid vs embedded default {overlap('hybrid (Edge prefetch + RRF)', 'hybrid (tantivy + RRF, embedded)'):.3f}")

    # Latency: what POST /v1/search does for top_k=10 (embed the query, both searches, fuse,
    # fetch payloads), without HTTP, for each variant and each step alone. Every query runs
    # through every variant before the next query, so all of them see the same load.
    def top10(s: Searcher):  # type: ignore[no-untyped-def]
        return lambda text: s.search(text, top_k=10)

    default = searcher(tantivy)
    dense_index = default.index
    edge_dense = searcher(None, client=edge_client).index
    vectors = {queries[q]: exact.embed_query(queries[q]) for q in qids}
    top_ids = {queries[q]: [(h.chunk_id, h.score) for h in default.search(queries[q], top_k=10)] for q in qids}
    variants: dict[str, object] = {
        "hybrid: tantivy, int8 query, parallel (default)": top10(default),
        "hybrid: tantivy, int8 query, sequential": top10(searcher(tantivy, parallel=False)),
        "hybrid: tantivy, exact query": top10(searcher(tantivy, exact)),
        "hybrid: repeated query (cache hit)": top10(searcher(tantivy, cached)),
        "hybrid: Edge, native sparse + RRF in one query": top10(searcher(None, client=edge_client)),
        "hybrid: Edge dense + tantivy, parallel": top10(searcher(tantivy, client=edge_client)),
        "step: Edge dense top 100": lambda t: edge_dense.search(vectors[t], [], settings.prefetch_limit, mode="dense"),
        "step: Edge sparse top 100": lambda t: edge_dense.search(None, analyse(t), settings.prefetch_limit, mode="sparse"),
        "step: query embedding, exact": exact.embed_query,
        "step: query embedding, int8": embedder.embed_query,
        "step: tantivy top 100": lambda t: tantivy.search(analyse(t), settings.prefetch_limit),  # type: ignore[union-attr]
        "step: Qdrant dense top 100": lambda t: dense_index.search(vectors[t], [], settings.prefetch_limit, mode="dense"),
        "step: payloads of top 10": lambda t: dense_index._with_payloads(top_ids[t]),
    }
    local = dense_index.local_dense_vectors()
    if local is not None:
        # qdrant-client reloads stored vectors as float64: time the scan over the other dtype
        # too, by swapping a converted copy in for one query.
        live = local["dense"]
        other = live.astype("float32" if live.dtype == "float64" else "float64")

        def dense_other(text: str) -> None:
            local["dense"] = other
            try:
                dense_index.search(vectors[text], [], settings.prefetch_limit, mode="dense")
            finally:
                local["dense"] = live

        variants[f"step: Qdrant dense top 100, {other.dtype} copy (live: {live.dtype})"] = dense_other
    baseline = "hybrid: tantivy, exact query"
    if fts is not None:
        baseline = "hybrid: FTS5, exact query (previous default)"
        variants[baseline] = top10(searcher(fts, exact))
        variants["step: FTS5 top 100"] = lambda t: fts.search(analyse(t), settings.prefetch_limit)
    for q in qids:
        cached.embed_query(queries[q])
    for fn in variants.values():  # warm-up
        for q in qids[:10]:
            fn(queries[q])  # type: ignore[operator]
    medians: dict[str, list[float]] = defaultdict(list)
    p99s: dict[str, list[float]] = defaultdict(list)
    cpu: list[float] = []
    names = list(variants)
    for _ in range(args.repeats):
        samples: dict[str, list[float]] = defaultdict(list)
        for i, q in enumerate(qids):
            text = queries[q]
            # Rotate the order, so no variant always runs right after a particular other one.
            for name in names[i % len(names):] + names[: i % len(names)]:
                c0 = time.process_time()
                t0 = time.perf_counter()
                variants[name](text)  # type: ignore[operator]
                samples[name].append((time.perf_counter() - t0) * 1000)
                if name.endswith("(default)"):
                    # CPU time of the whole process (both threads): the work a search costs,
                    # which other jobs on the machine do not inflate the way they inflate wall time.
                    cpu.append((time.process_time() - c0) * 1000)
        for name, values in samples.items():
            medians[name].append(statistics.median(values))
            p99s[name].append(percentile(values, 0.99))
    base = statistics.median(medians[baseline])
    for name in names:
        p50 = statistics.median(medians[name])
        print(f"latency {name:50s} p50 {p50:6.2f} ms  p99 {statistics.median(p99s[name]):6.2f} ms  "
              f"ratio {p50 / base:.2f}")
    print(f"(median of {args.repeats} runs over {len(qids)} queries; ratios to '{baseline}'; "
          f"CPU time of a default search p50 {statistics.median(cpu):.2f} ms)")
    import os

    print(f"load average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if fts is not None:
        fts.close()
    edge_client.close()
    kb.close()


if __name__ == "__main__":
    main()
