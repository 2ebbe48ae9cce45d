"""The Celery app of the payouts workers (factory; nothing connects at import time).

``create_celery(settings)`` builds an app from :class:`PayoutsSettings`: the broker is Redis
(``OPENCHAT_REDIS_URL``) or, unset, kombu's SQLAlchemy transport on a SQLite file under the
data dir (see ``PayoutsSettings.broker_url`` for why). Run a worker with::

    celery -A payouts.worker worker -Q payouts -c 4              # aggregate (scales out)
    celery -A payouts.worker worker -Q payouts.chain -c 1 -P solo  # one signer, one nonce
    celery -A payouts.worker beat                                # payout_interval, deposit_interval clocks

``payouts.worker.app`` is created on first access (PEP 562 module ``__getattr__``) from the
environment, which is what ``celery -A payouts.worker`` does; code that has settings calls
``create_celery(settings)``.

Delivery: ``acks_late`` + ``reject_on_worker_lost`` (a task whose worker dies is delivered again;
on Redis after ``broker_visibility_timeout``), prefetch 1. Every task is an idempotent sweep
over the ledger (the message only says "go"), so a lost, redelivered or duplicated message never
loses or doubles money: the ledger and the chain hold the state, not the broker.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery

from payouts.broker import TRANSPORT as REDIS_TRANSPORT
from payouts.settings import PayoutsSettings

QUEUE = "payouts"
CHAIN_QUEUE = "payouts.chain"  # issue_vouchers, settle, reclaim: run it with concurrency 1


def create_celery(settings: PayoutsSettings | None = None) -> Celery:
    settings = settings or PayoutsSettings()
    app = Celery("openchat-payouts", broker=settings.broker_url, set_as_current=False)
    # kombu's SQLAlchemy transport hands its transport options to create_engine(): none there.
    transport: dict[str, Any] = {}
    broker_transport = None  # from the URL's scheme
    if settings.redis_url:
        if settings.redis_url.startswith("redis://"):  # rediss:// and sentinel keep kombu's own
            broker_transport = REDIS_TRANSPORT
        transport["visibility_timeout"] = settings.broker_visibility_timeout
        transport["global_keyprefix"] = settings.redis_key_prefix
        # Sweep for tasks of dead workers every broker_restore_interval seconds (kombu's default
        # is ~100 s: interval 10 s x throttle 10); one cheap ZRANGE per sweep.
        transport["unacked_restore_interval"] = settings.broker_restore_interval
        transport["unacked_restore_throttle"] = 1
    app.conf.update(
        broker_transport=broker_transport,
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        task_routes={
            "payouts.issue_vouchers": {"queue": CHAIN_QUEUE},
            "payouts.settle": {"queue": CHAIN_QUEUE},
            "payouts.reclaim": {"queue": CHAIN_QUEUE},
        },
        beat_schedule={
            "payouts-aggregate": {
                "task": "payouts.aggregate",
                "schedule": timedelta(seconds=settings.payout_interval),
            },
            "payouts-settle": {
                "task": "payouts.settle",
                "schedule": timedelta(seconds=settings.payout_interval),
            },
            "payouts-reclaim": {  # close idle channels, settle closed ones after the challenge period
                "task": "payouts.reclaim",
                "schedule": timedelta(seconds=settings.reclaim_interval),
            },
            # On-chain top-ups: reads logs only (sends nothing), so it runs on the default queue.
            "payouts-follow-deposits": {
                "task": "payouts.follow_deposits",
                "schedule": timedelta(seconds=settings.deposit_interval),
            },
        },
        worker_hijack_root_logger=False,
        timezone="UTC",
    )
    from payouts.tasks import register

    register(app, settings)
    return app


_default: Celery | None = None


def __getattr__(name: str) -> Celery:
    """``payouts.worker.app`` / ``.celery``: the app from the environment, built on first use."""
    global _default
    if name in ("app", "celery"):
        if _default is None:
            _default = create_celery()
        return _default
    raise AttributeError(name)
