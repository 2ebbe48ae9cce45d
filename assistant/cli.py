"""The `openchat` command: serve the API, ingest data sets, migrate the database."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from assistant.settings import Settings, SettingsError, load_settings


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


def run_cmd(args: argparse.Namespace) -> int:
    """The whole system on this machine (see assistant.supervisor)."""
    from assistant.supervisor import run

    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration is noise here
    return run(_settings())


def ingest(args: argparse.Namespace) -> int:
    """Read a data set through the same intake as the API, with a progress bar."""
    from tqdm import tqdm

    from assistant.db import make_engine, migrate
    from retrieval.addresses import AddressError, checksum_address
    from retrieval.embedder import load_embedder
    from retrieval.knowledge import open_knowledge_base
    from retrieval.readers import DatasetError, check_text_file, detect_format

    settings = _settings()
    path = Path(args.path)
    try:
        contributor = checksum_address(args.contributor)
        fmt = detect_format(path.name, args.format)
        with path.open("rb") as f:
            check_text_file(f.read(8192), fmt)
    except (AddressError, DatasetError, OSError) as exc:
        print(f"openchat ingest: {exc}", file=sys.stderr)
        return 2
    engine = make_engine(settings.app.effective_database_url)
    migrate(engine)
    try:
        kb = open_knowledge_base(settings.retrieval, engine, load_embedder(settings.retrieval))
    except RuntimeError as exc:  # Qdrant local mode is single-process: the server may hold it
        print(f"openchat ingest: cannot open the vector store ({exc}); stop `make run` first "
              "or point OPENCHAT_QDRANT_URL at a Qdrant server", file=sys.stderr)
        return 1
    size = path.stat().st_size
    cid = kb.intake.open_dataset(contributor, path.name, fmt, size, args.title, args.source, args.licence)
    with tqdm(total=size, unit="B", unit_scale=True, desc=path.name, disable=args.quiet) as bar:
        def progress(report) -> None:  # type: ignore[no-untyped-def]
            bar.update(report.bytes_done - bar.n)
            bar.set_postfix(stored=report.chunks_stored, dup=report.chunks_duplicate + report.chunks_near_duplicate,
                            rejected=report.rows_rejected)

        try:
            report = kb.intake.ingest_dataset(cid, path, progress, settings.retrieval.max_row_chars)
        except Exception as exc:
            print(f"openchat ingest: {exc}", file=sys.stderr)
            kb.close()
            return 1
        bar.update(size - bar.n)
    kb.close()
    summary = {
        "contribution_id": report.contribution_id, "rows": report.rows, "rows_rejected": report.rows_rejected,
        "chunks_stored": report.chunks_stored, "chunks_duplicate": report.chunks_duplicate,
        "chunks_near_duplicate": report.chunks_near_duplicate,
    }
    print(json.dumps(summary))
    for err in report.errors[:20]:
        print(f"  line {err['line']}: {err['error']}", file=sys.stderr)
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
    p.set_defaults(func=ingest)
    p = sub.add_parser("migrate", help="bring the database schema up to date")
    p.set_defaults(func=migrate_cmd)
    from payouts.cli import add_parser as add_payouts_parser

    add_payouts_parser(sub)
    from assistant.accounts import add_parser as add_accounts_parser

    add_accounts_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
