"""Prometheus metrics of the API and, read at scrape time, of the ledger and the task queues.

Request counts and latencies are counted in the API process (one registry per app, so several
apps in one test process never share series). Worker-side figures (credits, batches, settlement
gas) are not counted in the workers: they are read from the ledger the workers write, and queue
depth from the broker, when /metrics is scraped. That is multiprocess-safe without
prometheus-client's multiprocess mode, and every replica reports the same totals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from celery import Celery
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from assistant.models import Answer
from payouts.ledger import open_holds
from payouts.metrics import ledger_figures, queue_depths
from payouts.small_payees import SmallPayeeCap
from payouts.topups import figures as deposit_figures

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class HttpMetrics:
    """The per-request series the request observer updates."""

    requests: Counter
    latency: Histogram


def http_metrics(registry: CollectorRegistry) -> HttpMetrics:
    return HttpMetrics(
        requests=Counter("openchat_http_requests", "HTTP requests by route template, method and status.",
                         ["route", "method", "status"], registry=registry),
        latency=Histogram("openchat_http_request_duration_seconds",
                          "Time from request to the last byte of the response, by route template.",
                          ["route", "method"], buckets=LATENCY_BUCKETS, registry=registry),
    )


class LedgerCollector(Collector):
    """Answers, credits, batches, vouchers, settlements (with gas) and queue depths, read when
    scraped; a source that cannot be read is reported by ``openchat_scrape_error`` instead."""

    def __init__(self, engine: Callable[[], Engine], celery_app: Callable[[], Celery], queues: tuple[str, ...],
                 min_owed: int = 0, small_cap: SmallPayeeCap | None = None) -> None:
        self.engine = engine
        self.min_owed = min_owed
        self.small_cap = small_cap
        self.celery_app = celery_app
        self.queues = queues

    def collect(self) -> Iterator[Metric]:
        errors = GaugeMetricFamily("openchat_scrape_error", "1 when a source could not be read at this scrape.",
                                   labels=["source"])
        try:
            yield from list(self._ledger())  # all or nothing: no half-read scrape
            errors.add_metric(["database"], 0)
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because one source is down
            log.warning("metrics: ledger unreadable: %s", exc)
            errors.add_metric(["database"], 1)
        try:
            depths = queue_depths(self.celery_app(), self.queues)
            depth = GaugeMetricFamily("openchat_queue_depth", "Tasks waiting in each broker queue.", labels=["queue"])
            for queue, count in depths.items():
                depth.add_metric([queue], count)
            yield depth
            errors.add_metric(["broker"], 0)
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics: broker unreadable: %s", exc)
            errors.add_metric(["broker"], 1)
        yield errors

    def _ledger(self) -> Iterator[Metric]:
        with Session(self.engine()) as session:
            answered = dict(session.execute(select(Answer.answered, func.count()).group_by(Answer.answered)).all())
            figures = ledger_figures(session, min_owed=self.min_owed, small_cap=self.small_cap)
            open_count, held = open_holds(session)
            topups = deposit_figures(session)
        answers = CounterMetricFamily("openchat_answers", "Answers given, by whether they cited knowledge.",
                                      labels=["answered"])
        for flag in (True, False):
            answers.add_metric([str(flag).lower()], int(answered.get(flag, 0)))
        yield answers
        base = "base units of the payment token"
        for name, doc, value in (
            ("openchat_answers_paid", "Answers charged to an account.", figures.answers_paid),
            ("openchat_debited_base_units", f"Charged to askers, {base}.", figures.debited),
            ("openchat_platform_fees_base_units", f"Platform fees (with remote models' token charges), {base}.", figures.fees),
            ("openchat_credits", "Credits to contributors.", figures.credits),
            ("openchat_credits_base_units", f"Credited to contributors, {base}.", figures.credited),
            ("openchat_payout_batches", "Payout batches made by the aggregate task.", figures.batches),
            ("openchat_batched_base_units", f"Credits taken into batches, {base}.", figures.batched),
            ("openchat_vouchers", "Signed vouchers issued.", figures.vouchers),
            ("openchat_settlement_gas", "Gas used by settlement transactions.", figures.settlement_gas),
            ("openchat_settled_base_units", f"Paid out on chain by settlements, {base}.", figures.settled),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        yield GaugeMetricFamily("openchat_answer_holds_open", "Answers being delivered whose price is held.", value=open_count)
        yield GaugeMetricFamily("openchat_held_base_units", f"Held from askers' balances for answers in delivery, {base}.",
                                value=held)
        yield GaugeMetricFamily("openchat_payees_quarantined",
                                "Payees whose payment failed, left out of voucher and settlement runs.",
                                value=figures.payees_quarantined)
        yield GaugeMetricFamily("openchat_quarantined_owed_base_units",
                                f"Still owed to quarantined payees (earned - settled, kept in the ledger), {base}.",
                                value=figures.quarantined_owed)
        ch = figures.channels
        for name, doc, key in (
            ("openchat_channel_deposits_committed_base_units",
             f"Hub funds deposited in open and closing payment channels and not paid out, {base}.", "deposits_committed"),
            ("openchat_channel_deposits_reclaimable_base_units",
             f"Of those, the part no voucher carries (headroom; closing channels' rest), {base}.", "deposits_reclaimable"),
            ("openchat_channel_deposits_closing_base_units",
             f"Deposits of channels closing (in their challenge period), {base}.", "deposits_closing"),
            ("openchat_payees_below_minimum", "Payees owed less than the payout minimum, with no channel.",
             "payees_below_minimum"),
            ("openchat_below_minimum_owed_base_units", f"What those payees are owed, kept in the ledger, {base}.",
             "below_minimum_owed"),
        ):
            yield GaugeMetricFamily(name, doc, value=ch.get(key, 0))
        small = figures.small_payees
        for name, doc, key in (
            ("openchat_small_payees_committed_base_units",
             f"Hub funds in small payees' channels (lifetime earnings below the line), not paid out, {base}.", "committed"),
            ("openchat_small_payees_cap_budget_base_units",
             f"The fixed budget of small payees' committed funds (the cap is the lesser of it and a share of hub funds), {base}.",
             "budget"),
            ("openchat_small_payees_last_cap_base_units",
             f"The cap the last voucher run applied when a payee had to wait, {base}.", "last_cap"),
            ("openchat_payees_waiting_for_funds", "Small payees queued for a deposit under the cap.", "waiting"),
            ("openchat_waiting_for_funds_owed_base_units", f"What those payees are owed, kept in the ledger, {base}.",
             "waiting_owed"),
            ("openchat_waiting_for_funds_needed_base_units", f"The deposits they wait for, {base}.", "waiting_needed"),
        ):
            yield GaugeMetricFamily(name, doc, value=small.get(key, 0))
        yield CounterMetricFamily("openchat_channel_deposits_reclaimed_base_units",
                                  f"Unused deposits of idle channels returned to the hub by settles, {base}.",
                                  value=ch.get("deposits_reclaimed", 0))
        channels = GaugeMetricFamily("openchat_payment_channels", "Payment channels by state.", labels=["state"])
        for state in ("open", "closing", "reclaimed"):
            channels.add_metric([state], ch.get(f"channels_{state}", 0))
        yield channels
        payee = GaugeMetricFamily("openchat_payee_quarantined",
                                  "1 per quarantined payee (the oldest 100): its address, the run that failed "
                                  "and the reason's code; the full reason is in `openchat payouts status`.",
                                  labels=["address", "stage", "reason"])
        for address, stage, code in figures.quarantined:
            payee.add_metric([address, stage, code], 1)
        yield payee
        counted = GaugeMetricFamily("openchat_deposits", "On-chain top-ups (TopUps Deposited logs) by status.",
                                    labels=["status"])
        amounts = GaugeMetricFamily("openchat_deposits_base_units", f"On-chain top-ups by status, {base}.",
                                    labels=["status"])
        for status in ("pending", "credited", "unassigned", "dropped"):
            counted.add_metric([status], topups[f"deposits_{status}"])
            amounts.add_metric([status], topups[f"deposits_{status}_base_units"])
        yield counted
        yield amounts
        yield GaugeMetricFamily("openchat_account_balances_base_units", f"Sum of askers' balances, {base}.",
                                value=topups["account_balances_base_units"])
        settlements = CounterMetricFamily("openchat_settlements", "Settlement transactions by status.",
                                          labels=["status"])
        for status in ("pending", "confirmed", "failed", "reconciled"):
            settlements.add_metric([status], figures.settlements.get(status, 0))
        yield settlements


def metrics_registry(engine: Callable[[], Engine], celery_app: Callable[[], Celery], queues: tuple[str, ...],
                     min_owed: int = 0, small_cap: SmallPayeeCap | None = None) -> tuple[CollectorRegistry, HttpMetrics]:
    """A registry with the request series and the ledger collector (``min_owed``: the payout
    minimum; ``small_cap``: the cap on small payees' committed funds)."""
    registry = CollectorRegistry(auto_describe=False)
    metrics = http_metrics(registry)
    registry.register(LedgerCollector(engine, celery_app, queues, min_owed, small_cap))
    return registry, metrics


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
