"""The `openchat` command: serve the API, ingest data sets, migrate the database."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from retrieval.intake import LocalFile
    from retrieval.knowledge import KnowledgeBase
    from retrieval.readers import Format
    from retrieval.row_limits import RowLimits


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"openchat: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from assistant.app import create_app
    from assistant.logs import configure_logging

    settings = _settings()
    if args.grace is not None:
        settings.app.shutdown_grace_seconds = args.grace
    configure_logging(args.log_level)
    app = create_app(settings)
    print(f"OpenChat API on http://{settings.app.host}:{settings.app.port}  (docs: /docs)", flush=True)
    # JSON logs through the root logger (log_config=None); the request observer writes the
    # access lines, with request ids. On SIGTERM/SIGINT uvicorn stops accepting, lets requests
    # in flight finish (streams get timeout_graceful_shutdown seconds), then runs the lifespan's
    # shutdown (data-set jobs, vector store, database).
    uvicorn.run(app, host=settings.app.host, port=settings.app.port, log_level=args.log_level,
                log_config=None, access_log=False, timeout_graceful_shutdown=settings.app.shutdown_grace_seconds)
    return 0


def models_cmd(args: argparse.Namespace) -> int:
    """Build the embedding model's derived files now, so that no service start has to."""
    from retrieval.embedder import prepare_models

    for path in prepare_models(_settings().retrieval):
        print(path)
    return 0


def run_cmd(args: argparse.Namespace) -> int:
    """The whole system on this machine (see assistant.supervisor)."""
    from assistant.supervisor import run

    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration is noise here
    return run(_settings())


def ingest(args: argparse.Namespace) -> int:
    """Read a data set through the same intake as the API, with a progress bar.

    An interrupted run of the same file (same contributor, name, size and sha256) is resumed
    after its last committed batch, under the same contribution.
    """
    from assistant.chat.extractive import sentence_texts
    from assistant.db import make_engine, migrate
    from assistant.payees import PayeeCheck, UnpayableAddress
    from retrieval.addresses import AddressError, checksum_address
    from retrieval.embedder import load_embedder
    from retrieval.heap import map_large_blocks
    from retrieval.intake import LocalFile
    from retrieval.knowledge import open_knowledge_base
    from retrieval.readers import DatasetError, check_text_file, detect_format

    settings = _settings()
    path = Path(args.path)
    try:
        contributor = PayeeCheck(settings.payouts).check(checksum_address(args.contributor))
        fmt = detect_format(path.name, args.format)
        with path.open("rb") as f:
            check_text_file(f.read(8192), fmt)
        local_file = LocalFile.of(path)
    except (AddressError, UnpayableAddress, DatasetError, OSError) as exc:
        print(f"openchat ingest: {exc}", file=sys.stderr)
        return 2
    # Large blocks (the embedder's activations) go back to the OS when freed: a bulk run
    # then stays near its steady size (retrieval/heap.py, docs/retrieval.md Memory).
    map_large_blocks()
    engine = make_engine(settings.app.effective_database_url)
    migrate(engine)
    try:
        # serving=False: one onnxruntime session, no query encoder (docs/retrieval.md, Memory).
        # sentence_texts: the responder's sentence vectors are made at ingest (retrieval.sentence_vectors).
        kb = open_knowledge_base(settings.retrieval, engine, load_embedder(settings.retrieval, serving=False),
                                 sentence_texts)
    except RuntimeError as exc:  # the embedded store (Edge or local mode) is one process: the server may hold it
        print(f"openchat ingest: cannot open the vector store ({exc}); stop `make run` first "
              "or point OPENCHAT_QDRANT_URL at a Qdrant server", file=sys.stderr)
        return 1
    try:
        return _ingest_file(args, kb, path, fmt, contributor, local_file, settings.retrieval.row_limits)
    finally:
        kb.close()
        engine.dispose()


def _ingest_file(args: argparse.Namespace, kb: KnowledgeBase, path: Path, fmt: Format, contributor: str,
                 local_file: LocalFile, limits: RowLimits) -> int:
    from tqdm import tqdm

    from retrieval.intake import DatasetBusy

    intake = kb.intake
    # Chunks a killed run committed to the ledger but never indexed.
    repaired = intake.reindex_pending()
    if repaired:
        print(f"openchat ingest: indexed {repaired} chunks an interrupted run had left out", file=sys.stderr)
    try:
        cid = intake.claim_interrupted(contributor, local_file)
    except DatasetBusy as exc:
        print(f"openchat ingest: {exc}; let it finish or stop it first", file=sys.stderr)
        return 1
    if cid is None:
        if args.resume:
            print(f"openchat ingest: nothing to resume: no interrupted ingestion of this {path.name} "
                  f"(same size and sha256) by {contributor}", file=sys.stderr)
            return 2
        cid = intake.open_dataset(contributor, path.name, fmt, local_file.size, args.title, args.source,
                                  args.licence, local_file=local_file)
    else:
        before = intake.report(cid)
        print(f"openchat ingest: resuming contribution {cid} of {path.name} after {before.rows} rows "
              f"({before.chunks_stored} chunks stored, {before.bytes_done / max(local_file.size, 1):.0%} read)",
              file=sys.stderr)

    # Ctrl-C (or SIGTERM) pauses after the batch being written, so the next run resumes cleanly;
    # a second Ctrl-C stops at once (still safe: every batch is one ledger transaction).
    stop = threading.Event()

    def pause(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nopenchat ingest: stopping after the current batch (Ctrl-C again to stop now)", file=sys.stderr)

    previous = {sig: signal.signal(sig, pause) for sig in (signal.SIGINT, signal.SIGTERM)}
    size = local_file.size
    start = intake.report(cid).bytes_done
    try:
        with tqdm(total=size, initial=start, unit="B", unit_scale=True, desc=path.name, disable=args.quiet) as bar:
            def progress(report) -> None:  # type: ignore[no-untyped-def]
                bar.update(report.bytes_done - bar.n)
                bar.set_postfix(stored=report.chunks_stored,
                                dup=report.chunks_duplicate + report.chunks_near_duplicate,
                                rejected=report.rows_rejected)

            try:
                report = intake.ingest_dataset(cid, path, progress, limits, stop=stop)
            except Exception as exc:  # noqa: BLE001 - recorded on the contribution; the shell gets one line
                print(f"openchat ingest: {exc}", file=sys.stderr)
                return 1
            if report.status == "complete":
                bar.update(size - bar.n)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary = {
        "contribution_id": report.contribution_id, "status": report.status, "rows": report.rows,
        "rows_rejected": report.rows_rejected, "chunks_stored": report.chunks_stored,
        "chunks_duplicate": report.chunks_duplicate, "chunks_near_duplicate": report.chunks_near_duplicate,
    }
    print(json.dumps(summary))
    for err in report.errors[:20]:
        print(f"  line {err['line']}: {err['error']}", file=sys.stderr)
    if report.status == "processing":
        print(f"openchat ingest: paused after {report.rows} rows; run the same command again to resume "
              f"contribution {cid}", file=sys.stderr)
        return 130
    return 0


def migrate_cmd(_: argparse.Namespace) -> int:
    from assistant.db import make_engine, migrate

    settings = _settings()
    migrate(make_engine(settings.app.effective_database_url))
    print("database is at the newest revision")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="openchat", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the API and web chat")
    p.add_argument("--log-level", default="info")
    p.add_argument("--grace", type=int, default=None,
                   help="seconds streams may take to finish on shutdown (default OPENCHAT_SHUTDOWN_GRACE_SECONDS)")
    p.set_defaults(func=serve)
    p = sub.add_parser("run", help="the whole system: chain, contracts, workers, beat, API (make run)")
    p.set_defaults(func=run_cmd)
    p = sub.add_parser("ingest", help="add a data set (JSONL, CSV, Markdown, text)")
    p.add_argument("path")
    p.add_argument("--contributor", required=True, help="payout address (0x…)")
    p.add_argument("--format", choices=["jsonl", "csv", "markdown", "text"])
    p.add_argument("--title")
    p.add_argument("--source")
    p.add_argument("--licence")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--resume", action="store_true",
                   help="insist on resuming an interrupted run of this file (one is resumed anyway when found)")
    p.set_defaults(func=ingest)
    p = sub.add_parser("migrate", help="bring the database schema up to date")
    p.set_defaults(func=migrate_cmd)
    p = sub.add_parser("models", help="build the embedding model's derived files (optimized graph, int8 query encoder)")
    p.set_defaults(func=models_cmd)
    from payouts.cli import add_parser as add_payouts_parser

    add_payouts_parser(sub)
    from assistant.accounts import add_parser as add_accounts_parser

    add_accounts_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
