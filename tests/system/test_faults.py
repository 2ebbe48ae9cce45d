"""Fault runs of the whole system (issue 7): traffic through the official `openai` SDK while the
broker restarts, the workers are SIGKILLed and come back, and anvil stops and resumes its state.

Every request must end in a 200 answer or an OpenAI-shaped error (only 502/503/504 among 5xx;
a client timeout counts as a hang); once traffic stops and the workers drain, the real
`openchat payouts reconcile` finds no difference and the money rules hold in the ledger and on
chain (see tests/payouts/test_worker.py::check_money_rules).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from itertools import cycle, pairwise

import httpx
import openai
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from payouts import ledger
from payouts.models import AnswerPayment, BatchCredit, Contributor, Credit, Settlement
from tests.conftest import new_address
from tests.payouts.test_worker import check_money_rules
from tests.system.conftest import DEV_KEY, REPO, System

CLIENTS = 4
PHASE_SECONDS = 5.0  # traffic before the first fault, between faults and after the last one
DRAIN_TIMEOUT = 120.0
REQUEST_TIMEOUT = 30.0  # a request still open after this is a hang
ALLOWED_5XX = {502, 503, 504}
# Two more contributors besides the demo one, so per-contributor amounts are really per contributor.
EXTRA = {
    "Quokka": "Quokkas are small marsupials that live on Rottnest Island off Western Australia.",
    "Tardigrade": "Tardigrades survive the vacuum of space by drying out into a state called a tun.",
}
QUESTIONS = [
    "How many hearts does an octopus have?", "Where do quokkas live?", "Why does honey keep for so long?",
    "How do tardigrades survive the vacuum of space?", "Why is the sky blue?", "Who created Python?",
    "What is the fastest land animal?", "Why is Mars red?",
]


@dataclass
class Outcome:
    phase: str
    stream: bool
    seconds: float
    status: int  # 200, an HTTP error status, or 0 for no HTTP answer at all
    answer_id: str | None = None
    price: int = 0
    credited: int = 0
    problem: str | None = None  # set when the outcome breaks the contract


@dataclass
class Traffic:
    """``CLIENTS`` threads asking back to back (half of them streamed) until stopped."""

    url: str
    phase: str = "warm"
    outcomes: list[Outcome] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for i in range(CLIENTS):
            t = threading.Thread(target=self._client, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=REQUEST_TIMEOUT + 10)
        assert not any(t.is_alive() for t in self.threads), "a client is stuck"

    def _client(self, i: int) -> None:
        client = openai.OpenAI(base_url=self.url + "/v1", api_key=DEV_KEY, max_retries=0, timeout=REQUEST_TIMEOUT)
        stream = i % 2 == 1
        questions = cycle(QUESTIONS[i:] + QUESTIONS[:i])
        while not self.stop.is_set():
            phase, started = self.phase, time.monotonic()
            outcome = ask(client, next(questions), stream)
            outcome.phase, outcome.seconds = phase, time.monotonic() - started
            with self.lock:
                self.outcomes.append(outcome)


def ask(client: openai.OpenAI, question: str, stream: bool) -> Outcome:
    messages = [{"role": "user", "content": question}]
    out = Outcome("", stream, 0.0, 0)
    try:
        if stream:
            chunks = list(client.chat.completions.create(model="openchat-extractive", messages=messages, stream=True))
            meta = chunks[-1].model_extra["openchat"]
        else:
            meta = client.chat.completions.create(model="openchat-extractive", messages=messages).model_extra["openchat"]
    except openai.APITimeoutError:
        out.problem = f"no answer within {REQUEST_TIMEOUT}s (hang)"
        return out
    except openai.APIConnectionError as exc:
        out.problem = f"connection failed: {exc}"
        return out
    except openai.APIStatusError as exc:
        out.status = exc.status_code
        out.problem = error_shape_problem(exc.status_code, exc.body)
        return out
    except openai.APIError as exc:  # an error event inside a stream that had begun
        out.status = 200
        out.problem = error_shape_problem(502, {"error": exc.body} if exc.body else None) or f"in-stream: {exc}"
        return out
    out.status = 200
    out.answer_id, out.price = meta["answer_id"], int(meta["price"])
    out.credited = sum(int(c["amount"]) for c in meta["credits"])
    return out


def error_shape_problem(status: int, body: object) -> str | None:
    """None when ``body`` is a clear error in OpenAI's shape with an acceptable status."""
    # The SDK hands over the "error" object itself when the body has one.
    err = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(err, dict) or not {"message", "type", "param", "code"} <= err.keys() or not err["message"]:
        return f"{status}: not an OpenAI error: {body!r}"[:300]
    if status >= 500 and status not in ALLOWED_5XX:
        return f"{status}: {err['message']}"[:300]
    return None


def reconcile_cli(system: System, *args: str) -> dict[str, object]:
    """`openchat payouts reconcile --json` as an operator runs it; its report (exit 0 or 1)."""
    rc = subprocess.run([sys.executable, "-m", "assistant.cli", "payouts", "reconcile", "--json", *args],
                        env=system.child_env(), cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert rc.returncode in (0, 1) and rc.stdout, rc.stdout + rc.stderr
    report: dict[str, object] = json.loads(rc.stdout)
    assert (rc.returncode == 0) == report["ok"], report
    return report


def ledger_state(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        t = ledger.totals(s)
        people = s.execute(select(func.count()).select_from(Contributor).where(
            (Contributor.earned != Contributor.batched) | (Contributor.batched != Contributor.vouchered)
            | (Contributor.vouchered != Contributor.settled))).scalar_one()
        confirmed = s.execute(select(func.count()).select_from(Settlement)
                              .where(Settlement.status.in_(("confirmed", "reconciled")))).scalar_one()
    return {"answers": t.answers, "credits": t.credits, "unbatched": t.unbatched, "batched": t.batched,
            "vouchered": t.vouchered, "settled": t.settled, "pending": t.settlements_pending,
            "behind": int(people), "settlements": int(confirmed)}


def drained(state: dict[str, int]) -> bool:
    return state["unbatched"] == 0 and state["behind"] == 0 and state["pending"] == 0 and state["answers"] > 0


@pytest.mark.slow  # 60-120 s: one `openchat run` start, ~30 s of traffic with three faults, the drain
def test_traffic_survives_broker_worker_and_chain_faults(system: System) -> None:
    engine = create_engine(f"sqlite:///{system.data_dir / 'openchat.sqlite3'}")
    people = [new_address(), new_address()]
    with httpx.Client(base_url=system.url, headers={"Authorization": f"Bearer {DEV_KEY}"}, timeout=60) as http:
        for (title, text), who in zip(EXTRA.items(), people, strict=True):
            reply = http.post("/v1/contributions", json={"text": text, "title": title, "contributor": who})
            assert reply.status_code in (200, 201) and reply.json()["chunks_stored"] == 1, reply.text

    traffic = Traffic(system.url)
    traffic.start()
    marks: dict[str, dict[str, int]] = {}
    faults: dict[str, float] = {}

    def phase(name: str) -> None:
        time.sleep(PHASE_SECONDS)
        dead = system.dead_children()
        if dead:  # the whole logs, not an assertion repr's truncated tail: the cause is above the crash
            pytest.fail("children died: " + "".join(f"\n--- {n} ---\n{system.logs(n, 30_000)}" for n in dead))
        marks[traffic.phase] = ledger_state(engine)
        traffic.phase = name

    def timed(name: str, fault) -> None:  # type: ignore[no-untyped-def]
        t0 = time.monotonic()
        fault()
        faults[name] = time.monotonic() - t0

    try:
        phase("redis")
        timed("redis", lambda: system.restart_redis(down=1.0))
        phase("worker")
        timed("worker", lambda: system.kill_and_restart("worker"))
        time.sleep(1.0)
        timed("worker-chain", lambda: system.kill_and_restart("worker-chain"))
        phase("anvil")
        chain_log_at = system.child("worker-chain").log_path.stat().st_size
        timed("anvil", lambda: system.restart_anvil(down=3.0))
        phase("after")
        t_after = time.monotonic()
        live = reconcile_cli(system, "--ledger-only")  # an operator's check while answers are being paid
        time.sleep(max(0.0, PHASE_SECONDS - (time.monotonic() - t_after)))
    finally:
        traffic.finish()
    marks["after"] = ledger_state(engine)
    outcomes = traffic.outcomes

    # 1. Every request: an answer, or a clear error in OpenAI's shape; no hang, no bare 5xx.
    problems = [f"{o.phase}/{'stream' if o.stream else 'plain'}: {o.problem}" for o in outcomes if o.problem]
    assert not problems, problems[:20]
    answered = [o for o in outcomes if o.status == 200]
    by_phase = {p: sum(1 for o in answered if o.phase == p) for p in ("warm", "redis", "worker", "anvil", "after")}
    assert all(by_phase.values()), by_phase  # the API kept answering through every fault
    assert all(o.price > 0 for o in answered) and any(o.credited > 0 for o in answered)

    # 2. The workers drain: every credit batched, vouchered and settled, nothing pending.
    t0 = time.monotonic()
    state = ledger_state(engine)
    while not drained(state):
        assert not system.dead_children(), {n: system.logs(n) for n in system.dead_children()}
        assert time.monotonic() - t0 < DRAIN_TIMEOUT, (state, system.logs("worker-chain"))
        time.sleep(0.5)
        state = ledger_state(engine)
    drain_seconds = time.monotonic() - t0

    # 3. The real CLI: the ledger agreed with itself mid-traffic; now ledger and chain agree.
    assert live["ok"] and not live["chain_checked"], (live["problems"], live)
    report = reconcile_cli(system)
    assert report["ok"] and report["chain_checked"] and not report["problems"], report
    assert report["pending_settlements"] == 0, report
    assert report["chain_paid"] == report["ledger_settled"] == report["ledger_vouchered"] == state["credits"]

    # 4. The ledger holds exactly what the clients were told, and the money rules hold on chain.
    with Session(engine) as s:
        paid = dict(s.execute(select(AnswerPayment.answer_id, AnswerPayment.total)).all())
        credited = dict(s.execute(select(Credit.answer_id, func.sum(Credit.amount)).group_by(Credit.answer_id)).all())
        batchless = s.execute(select(func.count()).select_from(Credit).outerjoin(BatchCredit, BatchCredit.credit_id == Credit.id).where(BatchCredit.credit_id.is_(None))).scalar_one()
        everyone = list(s.scalars(select(Contributor.address)))
        t = ledger.totals(s)
    served = {o.answer_id: o for o in answered}
    assert len(served) == len(answered)  # no answer id was handed out twice
    assert set(served) <= set(paid) and len(paid) - len(served) <= len(outcomes) - len(answered)
    assert all(paid[a] == o.price and int(credited.get(a, 0)) == o.credited for a, o in served.items())
    assert batchless == 0 and t.debits == t.credits + t.fees and t.settled == t.vouchered == t.batched == t.credits
    assert set(people) <= set(everyone)
    check_money_rules(engine, system.chain_client(), everyone)
    engine.dispose()

    # 5. The faults really happened under the workers (and were recovered from).
    chain_log = system.child("worker-chain").log_path.read_text(errors="replace")
    assert system.logs("worker", 200_000).count("--- start") >= 2 and chain_log.count("--- start") >= 2
    retries = chain_log[chain_log_at:].count("Retry in")  # chain tasks that met the stopped anvil
    assert retries >= 1, chain_log[chain_log_at:][-3000:]
    assert "Connection to broker lost" in system.logs("worker", 500_000)  # the broker restart reached the workers
    # ...and after each fault, while traffic still ran, money moved on to the chain again.
    order = ["warm", "redis", "worker", "anvil", "after"]
    assert all(marks[b]["settled"] > marks[a]["settled"] for a, b in pairwise(order)), marks
    assert marks["after"]["settlements"] > marks["anvil"]["settlements"]  # settling resumed on the restarted anvil

    lat = sorted(o.seconds for o in answered)
    print(f"\nfault run: {len(outcomes)} requests, {len(answered)} answered, errors "
          f"{len(outcomes) - len(answered)}; by phase {by_phase}; latency ms p50 "
          f"{1000 * statistics.median(lat):.0f} p99 {1000 * lat[int(0.99 * (len(lat) - 1))]:.0f} "
          f"max {1000 * lat[-1]:.0f}; faults s {({k: round(v, 1) for k, v in faults.items()})}; "
          f"chain retries after the anvil stop {retries}; drain {drain_seconds:.1f} s; "
          f"settled {report['ledger_settled']} to {len(everyone)} contributors; ledger by phase {marks}")
