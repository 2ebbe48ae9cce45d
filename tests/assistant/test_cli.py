"""`openchat ingest`: the API's intake from the command line, run as a real process."""

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from assistant.db import make_engine
from retrieval.embedder import Embedder
from retrieval.knowledge import open_knowledge_base
from retrieval.settings import RetrievalSettings
from tests.conftest import new_address


def run_cli(args: list[str], data_dir: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENCHAT_DATA_DIR": str(data_dir), **(extra_env or {})}
    env.pop("OPENCHAT_DATABASE_URL", None)
    env.pop("OPENCHAT_QDRANT_URL", None)
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], check=False, env=env, capture_output=True,
                          text=True, timeout=300)


def test_ingest_reports_counts_and_bad_lines(tmp_path: Path) -> None:
    data = tmp_path / "facts.jsonl"
    data.write_text(
        json.dumps({"id": "a", "text": "Honey never spoils because of its low water content and acidity."}) + "\n"
        + "{oops\n"
        + json.dumps({"id": "b", "text": "Bananas are botanically berries, while strawberries are not."}) + "\n"
    )
    who = new_address()
    proc = run_cli(["ingest", str(data), "--contributor", who], tmp_path / "data")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["chunks_stored"] == 2 and summary["rows_rejected"] == 1
    assert "line 2: malformed JSON" in proc.stderr
    assert "facts.jsonl" in proc.stderr  # the progress bar
    again = run_cli(["ingest", str(data), "--contributor", who, "--quiet"], tmp_path / "data")
    assert json.loads(again.stdout.strip().splitlines()[-1])["chunks_duplicate"] == 2


def test_ingest_refuses_bad_arguments(tmp_path: Path) -> None:
    data = tmp_path / "x.pdf"
    data.write_bytes(b"%PDF-1.4")
    proc = run_cli(["ingest", str(data), "--contributor", new_address()], tmp_path / "data")
    assert proc.returncode == 2 and "cannot tell the format" in proc.stderr
    proc = run_cli(["ingest", str(data), "--contributor", "0xnope"], tmp_path / "data")
    assert proc.returncode == 2 and "not an Ethereum address" in proc.stderr
    for address, why in (("0x0000000000000000000000000000000000000000", "the zero address"),
                         ("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", "the hub's own address"),
                         ("0x0000000000000000000000000000000000000100", "the P256VERIFY precompile")):
        proc = run_cli(["ingest", str(data), "--contributor", address], tmp_path / "data")
        assert proc.returncode == 2 and f"can never be paid: it is {why}" in proc.stderr, proc.stderr


def resume_rows(path: Path, n: int) -> Path:
    """n rows with a malformed line and exact copies of earlier rows on both sides of any cut."""
    topics = ["comets", "tectonic plates", "enzymes", "neutron stars", "river deltas", "vaccines", "glaciers"]
    lines = [json.dumps({"id": f"r{i}", "title": f"Note {i}",
                         "text": f"Fact {i} about {topics[i % len(topics)]}: reading {i * 37 % 101} was logged "
                                 f"in {1900 + i} at station {chr(65 + i % 26)}{i}."}) for i in range(n)]
    lines[5] = "{not json"
    lines[n // 2] = lines[1]  # a copy, in a batch after the first
    lines[n - 2] = lines[n // 2 + 3]  # a copy of a row read after the cut
    path.write_text("\n".join(lines) + "\n")
    return path


def ledger_state(db: Path) -> tuple[tuple, list[tuple]]:  # type: ignore[type-arg]
    with sqlite3.connect(db) as conn:
        contribution = conn.execute(
            "SELECT id, status, rows_done, rows_rejected, chunks_stored, chunks_duplicate, chunks_near_duplicate, "
            "bytes_done, bytes_total, json_extract(report, '$.errors'), json_extract(report, '$.duplicates') "
            "FROM contributions").fetchall()
        chunks = conn.execute(
            "SELECT contribution_id, content_hash, text, title, source_id, position, line, indexed FROM chunks "
            "ORDER BY position").fetchall()
    assert len(contribution) == 1
    return contribution[0], chunks


def index_counts(data_dir: Path, embedder: Embedder) -> tuple[int, int]:
    settings = RetrievalSettings(data_dir=data_dir)
    engine = make_engine(f"sqlite:///{data_dir / 'openchat.sqlite3'}")
    kb = open_knowledge_base(settings, engine, embedder)
    try:
        # Qdrant Edge (a new data dir's store) is its own lexical index; local mode has tantivy beside it.
        return kb.index.count(), (kb.index.sidecar.count() if kb.index.sidecar is not None else kb.index.count())
    finally:
        kb.close()
        engine.dispose()


def test_a_killed_ingest_resumes_after_its_last_committed_batch(tmp_path: Path, embedder: Embedder) -> None:
    data = resume_rows(tmp_path / "rows.jsonl", 80)
    who = new_address()
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    env = {**os.environ, "OPENCHAT_DATA_DIR": str(killed), "OPENCHAT_INGEST_BATCH_ROWS": "4"}
    env.pop("OPENCHAT_DATABASE_URL", None)
    env.pop("OPENCHAT_QDRANT_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "ingest", str(data), "--contributor", who, "--quiet"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    db = killed / "openchat.sqlite3"
    deadline = time.monotonic() + 240
    rows_done = 0
    try:
        while rows_done < 12:  # three batches committed
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the ingestion committed nothing in time"
            time.sleep(0.02)
            if db.exists():
                with contextlib.suppress(sqlite3.Error), sqlite3.connect(db, timeout=5) as conn:
                    row = conn.execute("SELECT rows_done FROM contributions").fetchone()
                    rows_done = row[0] if row else 0
    finally:
        proc.kill()
        proc.wait()
    cut, _ = ledger_state(db)
    assert cut[1] == "processing" and 12 <= cut[2] < 80, cut  # killed part-way

    resumed = run_cli(["ingest", str(data), "--contributor", who, "--quiet", "--resume"], killed,
                      {"OPENCHAT_INGEST_BATCH_ROWS": "4"})
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming contribution {cut[0]} of rows.jsonl after {cut[2]} rows" in resumed.stderr
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["contribution_id"] == cut[0] and summary["status"] == "complete"

    reference = run_cli(["ingest", str(data), "--contributor", who, "--quiet"], whole, {"OPENCHAT_INGEST_BATCH_ROWS": "4"})
    assert reference.returncode == 0, reference.stderr
    after, chunks = ledger_state(db)
    expected, expected_chunks = ledger_state(whole / "openchat.sqlite3")
    assert after == expected  # same counts, report and status as one uninterrupted run
    assert chunks == expected_chunks  # the same chunks, once each, all indexed
    assert after[3] == 1 and after[5] == 2 and after[4] == len(chunks) > 0 and all(c[-1] for c in chunks)
    # The vector store (Qdrant Edge: its WAL replayed after the SIGKILL) holds each stored chunk once.
    assert index_counts(killed, embedder) == (len(chunks), len(chunks))
    assert (killed / "edge" / "chunks").is_dir() and not (killed / "qdrant").exists()  # a new data dir's default

    # Nothing left to resume now: --resume says so; a plain run makes a new contribution of copies.
    again = run_cli(["ingest", str(data), "--contributor", who, "--quiet", "--resume"], killed)
    assert again.returncode == 2 and "nothing to resume" in again.stderr


def test_models_builds_the_derived_files_a_service_then_reuses(tmp_path: Path) -> None:
    """`openchat models` (an image's build step) makes what a first start would otherwise build."""
    model_dir = tmp_path / "models"
    proc = run_cli(["models"], tmp_path / "data", {"OPENCHAT_MODEL_DIR": str(model_dir)})
    assert proc.returncode == 0, proc.stderr
    built = [Path(line) for line in proc.stdout.split()]
    assert {p.parent for p in built} == {model_dir} and len(built) == 2
    assert any(".query-" in p.name for p in built) and any(".optimized-" in p.name for p in built)
    stamps = {p: p.stat().st_mtime_ns for p in built}
    # A service on a new data dir with the same model dir builds nothing and writes nothing there.
    from retrieval.embedder import load_embedder

    embedder = load_embedder(RetrievalSettings(data_dir=tmp_path / "data", model_dir=model_dir))
    assert embedder.embed_query("How many hearts does an octopus have?").shape == (embedder.dim,)
    assert {p: p.stat().st_mtime_ns for p in built} == stamps and sorted(model_dir.iterdir()) == sorted(built)
    assert not (tmp_path / "data" / "models").exists()
