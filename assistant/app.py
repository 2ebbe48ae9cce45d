"""The FastAPI application factory: composes the knowledge base (and later payouts) into one API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from assistant.accounts import DEV_ACCOUNT, grant_dev_balance
from assistant.api import chat, knowledge, payouts
from assistant.auth import ApiKeys
from assistant.chat.wiring import build_assistant
from assistant.db import make_engine, migrate
from assistant.errors import install_error_handlers
from assistant.limits import BodyLimit
from assistant.settings import Settings
from assistant.web import mount_web
from retrieval.embedder import Embedder, load_embedder
from retrieval.jobs import DatasetJobs
from retrieval.knowledge import open_knowledge_base

log = logging.getLogger(__name__)


def create_app(settings: Settings, embedder_factory: Callable[[], Embedder] | None = None) -> FastAPI:
    """Build the app; services are opened at start-up (lifespan), never at import."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.app.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.app.effective_database_url)
        await run_in_threadpool(migrate, engine)
        if settings.app.dev_api_key and settings.app.dev_balance:
            await run_in_threadpool(grant_dev_balance, engine, settings.app.dev_balance)
        embedder = embedder_factory() if embedder_factory else await run_in_threadpool(load_embedder, settings.retrieval)
        kb = await run_in_threadpool(open_knowledge_base, settings.retrieval, engine, embedder)
        repaired = await run_in_threadpool(kb.intake.reindex_pending)
        if repaired:
            log.warning("re-indexed %d chunks an earlier stop left unindexed", repaired)
        jobs = DatasetJobs(kb.intake, settings.retrieval.uploads_dir, settings.retrieval.max_row_chars)
        resumed = jobs.resume()
        if resumed:
            log.warning("resuming data sets %s", resumed)
        app.state.settings = settings
        app.state.engine = engine
        app.state.knowledge = kb
        app.state.jobs = jobs
        app.state.assistant = build_assistant(settings, kb, engine)
        app.state.api_keys = ApiKeys({settings.app.dev_api_key: DEV_ACCOUNT} if settings.app.dev_api_key else {})
        try:
            yield
        finally:
            await run_in_threadpool(jobs.shutdown)
            kb.close()
            engine.dispose()

    app = FastAPI(
        title="OpenChat",
        version="0.1.0",
        description="Answers from community knowledge, with citations that pay their contributors.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(
        BodyLimit,
        default=settings.app.max_request_bytes,
        large={"/v1/datasets": settings.retrieval.max_upload_bytes},
    )
    app.include_router(knowledge.router)
    app.include_router(chat.router)
    app.include_router(payouts.router)
    mount_web(app)  # the browser pages (/, /contribute, /earnings) and their static files

    @app.get("/healthz", tags=["operations"])
    async def healthz(request: Request) -> JSONResponse:
        """Each dependency's state; 503 when one is down."""
        checks: dict[str, str] = {}
        try:
            with request.app.state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # reported, not raised: this endpoint exists to say so
            checks["database"] = f"error: {exc.__class__.__name__}"
        try:
            kb = request.app.state.knowledge
            points = await run_in_threadpool(kb.index.count)
            checks["vector_store"] = "ok"
            checks["chunks"] = str(points)
        except Exception as exc:
            checks["vector_store"] = f"error: {exc.__class__.__name__}"
        healthy = all(not v.startswith("error") for v in checks.values())
        return JSONResponse({"status": "ok" if healthy else "degraded", "checks": checks},
                            status_code=200 if healthy else 503)

    return app
