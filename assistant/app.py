"""The FastAPI application factory: composes the knowledge base (and later payouts) into one API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import cache

from celery import Celery
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware

from assistant.accounts import DEV_ACCOUNT, grant_dev_balance, release_stale_holds
from assistant.api import account, chat, knowledge, payouts
from assistant.auth import ApiKeys, LedgerKeys
from assistant.chat.bounds import ChatBounds
from assistant.chat.extractive import sentence_texts
from assistant.chat.wiring import build_assistant
from assistant.db import make_engine, migrate
from assistant.errors import install_error_handlers
from assistant.gate import KeyGate
from assistant.health import run_checks
from assistant.limits import BodyLimit
from assistant.metrics import metrics_registry, render
from assistant.observer import RequestObserver
from assistant.payees import PayeeCheck
from assistant.ratelimit import build_rate_limits, rate_limit_metrics, shared_storage
from assistant.sessions import SessionQuota, session_metrics
from assistant.settings import Settings
from assistant.web import mount_web
from payouts.anchoring import AnchorTrees
from payouts.worker import CHAIN_QUEUE, QUEUE, create_celery
from retrieval.embedder import Embedder, load_embedder
from retrieval.jobs import DatasetJobs
from retrieval.knowledge import open_knowledge_base

log = logging.getLogger(__name__)


def create_app(settings: Settings, embedder_factory: Callable[[], Embedder] | None = None) -> FastAPI:
    """Build the app; services are opened at start-up (lifespan), never at import."""

    @cache
    def celery_app() -> Celery:  # for broker checks and queue depth; connects only when used
        return create_celery(settings.payouts)

    registry, http_metrics = metrics_registry(lambda: app.state.engine, celery_app, (QUEUE, CHAIN_QUEUE),
                                              settings.payouts.payout_min_owed, settings.payouts.small_payee_cap())
    limit_metrics = rate_limit_metrics(registry)
    session_counts = session_metrics(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.app.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.app.effective_database_url)
        await run_in_threadpool(migrate, engine)
        if settings.app.dev_api_key and not settings.app.dev_key_enabled:
            log.warning("OPENCHAT_HOST=%s is not a loopback address: the dev key is disabled (set "
                        "OPENCHAT_DEV_API_KEY= to silence this)", settings.app.host)
        if settings.app.dev_key_enabled and settings.app.dev_balance:
            await run_in_threadpool(grant_dev_balance, engine, settings.app.dev_balance)
        released = await run_in_threadpool(release_stale_holds, engine)
        if released:
            log.warning("released %d answer holds a stopped process left open", released)
        embedder = embedder_factory() if embedder_factory else await run_in_threadpool(load_embedder, settings.retrieval)
        kb = await run_in_threadpool(open_knowledge_base, settings.retrieval, engine, embedder, sentence_texts)
        repaired = await run_in_threadpool(kb.intake.reindex_pending)
        if repaired:
            log.warning("re-indexed %d chunks an earlier stop left unindexed", repaired)
        jobs = DatasetJobs(kb.intake, settings.retrieval.uploads_dir, settings.retrieval.row_limits)
        resumed = jobs.resume()
        if resumed:
            log.warning("resuming data sets %s", resumed)
        app.state.settings = settings
        app.state.engine = engine
        app.state.knowledge = kb
        app.state.jobs = jobs
        app.state.assistant = build_assistant(settings, kb, engine)
        app.state.chat_bounds = ChatBounds(settings.app.chat_max_messages, settings.app.chat_max_question_tokens,
                                           settings.app.chat_max_message_tokens, settings.app.chat_max_history_tokens)
        app.state.api_keys = ApiKeys({settings.app.dev_api_key: DEV_ACCOUNT}
                                     if settings.app.dev_key_enabled and settings.app.dev_api_key else {})
        app.state.ledger_keys = LedgerKeys(engine)
        app.state.rate_limits = build_rate_limits(settings, limit_metrics)
        app.state.anchor_trees = AnchorTrees(engine)
        app.state.session_quota = SessionQuota(settings.app.session_accounts_per_ip_per_day,
                                               settings.app.session_accounts_per_day, shared_storage(settings))
        app.state.session_counts = session_counts
        app.state.payees = PayeeCheck(settings.payouts)
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
        # /docs is served by mount_web from npm's swagger-ui-dist, under the pages' CSP; FastAPI's
        # would load it from a CDN. ReDoc is not offered (web/README.md says why).
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(
        BodyLimit,
        default=settings.app.max_request_bytes,
        large={"/v1/datasets": settings.retrieval.max_upload_bytes},
    )
    # Outside the body limit: a request it refuses (no key, an anonymous flood) is never read.
    app.add_middleware(KeyGate, routes=[*knowledge.router.routes, *chat.router.routes, *payouts.router.routes,
                                       *account.router.routes])
    app.include_router(knowledge.router)
    app.include_router(chat.router)
    app.include_router(payouts.router)
    app.include_router(account.router)
    mount_web(app)  # the browser pages (/, /contribute, /earnings) and their static files

    # Added last, so outermost: it sees (and ids, counts, logs) every request.
    app.add_middleware(RequestObserver, metrics=http_metrics)
    # Outermost of all: a request that names another Host (a page of another site whose name was
    # rebound to this address) gets 400 before anything else runs. Starlette's own middleware.
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.app.trusted_hosts, www_redirect=False)

    @app.get("/healthz", tags=["operations"])
    async def healthz(request: Request) -> JSONResponse:
        """Each dependency's state (database, vector store, broker, chain); 503 when one is down."""
        state = request.app.state
        health = await run_in_threadpool(run_checks, state.engine, state.knowledge, celery_app,
                                         settings.payouts.chain_rpc_url, settings.payouts.chain_id)
        return JSONResponse(health.as_json(), status_code=200 if health.healthy else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format: requests, latency, answers, credits, batches, gas, queue depth."""
        body = await run_in_threadpool(render, registry)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return app
