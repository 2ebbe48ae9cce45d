"""The Celery app a deployment runs: every payouts task plus contribution anchoring, which
reads the knowledge base's chunks (so it is composed here, not in ``payouts``).

    celery -A assistant.worker worker -Q payouts -c 4                 # aggregate (scales out)
    celery -A assistant.worker worker -Q payouts.chain -c 1 -P solo   # vouchers, settle, anchoring
    celery -A assistant.worker beat                                   # payout + anchor intervals

``assistant.worker.app`` is built on first access from the environment (nothing connects at
import); ``create_worker_app(settings)`` builds one from given settings.
"""

from __future__ import annotations

from celery import Celery

from assistant.provenance import unanchored_chunk_leaves
from assistant.settings import Settings, load_settings
from payouts.anchoring import register_anchoring
from payouts.worker import create_celery

_default: Celery | None = None


def create_worker_app(settings: Settings | None = None) -> Celery:
    settings = settings or load_settings()
    app = create_celery(settings.payouts)
    register_anchoring(app, settings.payouts, unanchored_chunk_leaves)
    return app


def __getattr__(name: str) -> Celery:
    """``assistant.worker.app`` / ``.celery`` for ``celery -A assistant.worker``."""
    global _default
    if name in ("app", "celery"):
        if _default is None:
            _default = create_worker_app()
        return _default
    raise AttributeError(name)
