"""Load benchmark: N concurrent clients ask the whole system questions over loopback for a fixed
time, then the ledger is reconciled with the answers served.

Starts `openchat run` (anvil, workers, beat, API; embedded defaults; the demo knowledge) on a
temporary data dir with the per-account rate limit off (every client uses the dev key), warms
up, then runs ``--clients`` asyncio clients for ``--seconds``, each posting non-streamed
/v1/chat/completions (extractive responder) back to back. Prints throughput, latency
p50/p90/p99, error rate, the API process's RSS before and after, and then checks:
every 200 answer has its ``answer_payments`` row with the price it reported, Σ credits per
answer = what the response said, the ledger's invariants, and (after a payout round) ledger vs
chain with ``payouts.reconcile``.

    .venv/bin/python bench/load.py [--clients 16] [--seconds 60] [--warmup 5] [--set OPENCHAT_X=value]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from payouts import ledger
from payouts.chain import ChainClient, Deployment
from payouts.localchain import free_port
from payouts.models import AnswerPayment, Credit
from payouts.reconcile import reconcile
from payouts.settings import ANVIL_DEV_PRIVATE_KEY

QUESTIONS = [
    "How many hearts does an octopus have?", "Why does honey keep for so long?",
    "How fast does light travel?", "At what temperature does water boil?", "How high is Mount Everest?",
    "How far is the Moon from Earth?", "What is photosynthesis?", "How many bones does an adult have?",
    "Which is the largest planet?", "Why is Mars red?", "How long does sunlight take to reach Earth?",
    "Why is the sky blue?", "Where do penguins live?", "How do bees tell each other where flowers are?",
    "Is a tomato a fruit?", "Who created Python?", "What is SQLite?", "What is a prime number?",
    "What is the fastest land animal?", "How big is a blue whale?", "Who invented the World Wide Web?",
    "How does OpenChat pay contributors?", "What happens when someone copies text into OpenChat?",
]
KEY = "oc-dev-key"


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    answers: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (price, Σ credits)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


TICK = os.sysconf("SC_CLK_TCK")


def proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds user+system) of every live process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)
    return table


def tree_cpu(root: int, table: dict[int, tuple[int, float]]) -> float:
    """CPU seconds of ``root`` and its live descendants (the prefork pool of a Celery worker)."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += table.get(pid, (0, 0.0))[1]
        todo += children.get(pid, [])
    return total


def cpu_by_child(pids: dict[str, int]) -> dict[str, float]:
    table = proc_table()
    return {name: tree_cpu(pid, table) for name, pid in pids.items()}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def client_loop(http: httpx.AsyncClient, until: float, out: Results | None, rng: random.Random) -> None:
    while time.monotonic() < until:
        body = {"model": "openchat-extractive", "messages": [{"role": "user", "content": rng.choice(QUESTIONS)}]}
        started = time.perf_counter()
        try:
            reply = await http.post("/v1/chat/completions", json=body)
        except httpx.HTTPError as exc:
            if out is not None:
                out.error(type(exc).__name__)
            continue
        elapsed = time.perf_counter() - started
        if out is None:
            continue
        if reply.status_code != 200:
            out.error(str(reply.status_code))
            continue
        meta = reply.json()["openchat"]
        out.latencies.append(elapsed)
        out.answers[meta["answer_id"]] = (int(meta["price"]), sum(int(c["amount"]) for c in meta["credits"]))


async def load(url: str, clients: int, seconds: float, out: Results | None) -> float:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, limits=limits,
                                 timeout=60) as http:
        started = time.monotonic()
        until = started + seconds
        await asyncio.gather(*(client_loop(http, until, out, random.Random(i)) for i in range(clients)))
        return time.monotonic() - started


def start_system(data_dir: Path, port: int, payout_interval: float,
                 extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    # The shell's OPENCHAT_* settings are left out (the run must be the embedded defaults);
    # --set adds the ones a run is about.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCHAT_")}
    env.update(OPENCHAT_DATA_DIR=str(data_dir), OPENCHAT_PORT=str(port), OPENCHAT_CHAT_RATE_PER_MINUTE="0",
               OPENCHAT_PAYOUT_INTERVAL=str(payout_interval), **(extra or {}))
    out = (data_dir.parent / "run.out").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "run"], env=env, cwd=REPO,
                            stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while "OpenChat is up" not in (data_dir.parent / "run.out").read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit((data_dir.parent / "run.out").read_text(errors="replace"))
        time.sleep(0.25)
    return proc


def check_ledger(data_dir: Path, results: Results) -> list[str]:
    """Answers served vs the ledger, then the ledger's own invariants."""
    problems = []
    engine = create_engine(f"sqlite:///{data_dir / 'openchat.sqlite3'}")
    with Session(engine) as s:
        paid = dict(s.execute(select(AnswerPayment.answer_id, AnswerPayment.total)).all())
        credited = dict(s.execute(select(Credit.answer_id, func.sum(Credit.amount)).group_by(Credit.answer_id)).all())
        for answer_id, (price, credits) in results.answers.items():
            if answer_id not in paid:
                problems.append(f"{answer_id}: served but not in answer_payments")
            elif int(paid[answer_id]) != price:
                problems.append(f"{answer_id}: charged {paid[answer_id]}, response said {price}")
            if int(credited.get(answer_id, 0)) != credits:
                problems.append(f"{answer_id}: credits {credited.get(answer_id, 0)}, response said {credits}")
        problems += ledger.check_invariants(s)
    engine.dispose()
    return problems


def check_chain(data_dir: Path, rpc_url: str) -> list[str]:
    engine = create_engine(f"sqlite:///{data_dir / 'openchat.sqlite3'}")
    deployment = Deployment.load(data_dir / "chain" / "deployment.json")
    client = ChainClient.connect(rpc_url, deployment, ANVIL_DEV_PRIVATE_KEY)
    with Session(engine) as s:
        report = reconcile(s, client)
    engine.dispose()
    print(f"reconcile: {report.contributors} contributors, vouchered {report.ledger_vouchered}, "
          f"settled {report.ledger_settled}, chain paid {report.chain_paid}, deposited {report.chain_deposited}")
    return report.problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--payout-interval", type=float, default=5.0)
    parser.add_argument("--set", action="append", default=[], metavar="OPENCHAT_X=value",
                        help="a setting for the system under test, e.g. OPENCHAT_VECTOR_STORE=edge")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="openchat-load-") as tmp:
        data_dir = Path(tmp) / "data"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        extra = dict(item.split("=", 1) for item in args.set)
        proc = start_system(data_dir, port, args.payout_interval, extra)
        try:
            info = json.loads((data_dir / "supervisor.json").read_text())
            api_pid = int(info["children"]["api"])
            asyncio.run(load(url, args.clients, args.warmup, None))
            pids = {name: int(pid) for name, pid in info["children"].items()}
            if info.get("anvil"):
                pids["anvil"] = int(info["anvil"])
            rss_start = rss_mib(api_pid)
            results = Results()
            cpu_start, wall_start, own_start = cpu_by_child(pids), time.monotonic(), time.process_time()
            elapsed = asyncio.run(load(url, args.clients, args.seconds, results))
            cpu_end, wall = cpu_by_child(pids), time.monotonic() - wall_start
            own = time.process_time() - own_start  # the clients themselves share the 2 cores
            rss_end = rss_mib(api_pid)
            served = len(results.latencies)
            failed = sum(results.errors.values())
            print(f"clients {args.clients}, {elapsed:.1f} s: {served} answers, {served / elapsed:.1f} answers/s, "
                  f"errors {failed} ({100 * failed / max(1, served + failed):.2f}%) {results.errors or ''}")
            print(f"latency ms: p50 {1000 * statistics.median(results.latencies):.0f}, "
                  f"p90 {1000 * pct(results.latencies, 0.90):.0f}, p99 {1000 * pct(results.latencies, 0.99):.0f}, "
                  f"max {1000 * max(results.latencies):.0f}")
            # CPU per answer hardly depends on what else the machine runs (wall-clock figures
            # do): it is the figure to compare between runs. 2 cores / 100 answers/s = 20 ms.
            used = {name: cpu_end[name] - cpu_start[name] for name in pids}
            print("CPU ms per answer: " + ", ".join(f"{name} {1000 * sec / max(1, served):.1f}" for name, sec in used.items())
                  + f", all {1000 * sum(used.values()) / max(1, served):.1f}; the clients (this process) "
                  f"{1000 * own / max(1, served):.1f}; API busy "
                  f"{100 * used['api'] / wall:.0f}% of one core; load average {os.getloadavg()[0]:.2f}")
            print(f"API RSS MiB: start {rss_start:.0f}, end {rss_end:.0f} ({100 * (rss_end / rss_start - 1):+.1f}%)")
            problems = check_ledger(data_dir, results)
            print(f"ledger vs answers served: {'OK' if not problems else problems[:10]}")
            time.sleep(3 * args.payout_interval)  # a payout round: aggregate, vouchers
            chain_problems = check_chain(data_dir, info["rpc_url"])
            print(f"ledger vs chain: {'OK' if not chain_problems else chain_problems[:10]}")
            return 1 if problems or chain_problems else 0
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)


if __name__ == "__main__":
    raise SystemExit(main())
