"""Dependency checks for /healthz: database, vector store, task broker and chain node."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from celery import Celery
from sqlalchemy import Engine, text

from payouts.localchain import rpc_call
from retrieval.knowledge import KnowledgeBase

OK = "ok"
NOT_CONFIGURED = "not configured"


@dataclass
class Health:
    """Each check's result ("ok", "not configured" or "error: ...") and extra figures."""

    checks: dict[str, str] = field(default_factory=dict)
    details: dict[str, object] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return all(not v.startswith("error") for v in self.checks.values())

    def as_json(self) -> dict[str, object]:
        return {"status": "ok" if self.healthy else "degraded", "checks": self.checks, **self.details}


def _error(exc: BaseException) -> str:
    detail = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"error: {exc.__class__.__name__}" + (f": {detail}" if detail else "")


def check_database(engine: Engine) -> str:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return OK


def check_vector_store(kb: KnowledgeBase, health: Health) -> str:
    health.checks["chunks"] = str(kb.index.count())  # where it always was; not a status
    return OK


def check_broker(app: Celery, timeout: float = 2.0) -> str:
    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    return OK


def check_chain(rpc_url: str | None, expected_chain_id: int | None, timeout: float = 2.0) -> str:
    if not rpc_url:
        return NOT_CONFIGURED
    chain_id = int(str(rpc_call(rpc_url, "eth_chainId", timeout=timeout)), 16)
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise RuntimeError(f"node is chain {chain_id}, expected {expected_chain_id}")
    return OK


def run_checks(engine: Engine, kb: KnowledgeBase, celery_app: Callable[[], Celery],
               rpc_url: str | None, chain_id: int | None) -> Health:
    """Every check, each reported rather than raised (blocking: call it in a thread)."""
    health = Health()
    steps: dict[str, Callable[[], str]] = {
        "database": lambda: check_database(engine),
        "vector_store": lambda: check_vector_store(kb, health),
        "broker": lambda: check_broker(celery_app()),
        "chain": lambda: check_chain(rpc_url, chain_id),
    }
    for name, step in steps.items():
        try:
            health.checks[name] = step()
        except Exception as exc:  # noqa: BLE001 - reported, not raised: this endpoint exists to say so
            health.checks[name] = _error(exc)
    return health
