"""`openchat run` killed at every step of its start and of its stop (SIGINT and SIGKILL), then
started again on the same data dir (issue 17): it always comes up, with the same knowledge,
ledger and chain, nothing seeded twice, and no process of a killed run outlives it.

Each kill point is found by watching the supervisor's own step lines (and the API's access log
for the demo seeding), never by sleeping. The runs are chained to keep the test short: the start
after a kill must get past the point where the previous one died, up to the next kill point,
and the last ones come all the way up.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from assistant.demo import DEMO_CONTRIBUTOR, PENDING_MARKER, load_demo
from payouts.localchain import rpc_call
from tests.assistant.test_supervisor import QUESTION, REPO, Run, processes_using
from tests.conftest import free_port

KEY = "oc-dev-key"


def wait_for(run: Run, what: str, ready: Callable[[], bool], timeout: float = 240) -> None:
    """Wait until ``ready()``; the run must stay alive meanwhile."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert run.proc.poll() is None, f"openchat run exited {run.proc.returncode} before {what}:\n{run.output()}"
        assert time.monotonic() < deadline, f"no {what} in {timeout}s:\n{run.output()}"
        time.sleep(0.05)


def line(run: Run, text: str) -> Callable[[], bool]:
    return lambda: text in run.output()


def demo_posts(data_dir: Path, offset: int, at_least: int) -> Callable[[], bool]:
    """At least ``at_least`` demo contributions answered since byte ``offset`` of the API log."""
    log = data_dir / "logs" / "api.log"

    def ready() -> bool:
        try:
            with log.open("rb") as f:
                f.seek(offset)
                return f.read().count(b'"path": "/v1/contributions"') >= at_least
        except FileNotFoundError:
            return False

    return ready


def api_log_size(data_dir: Path) -> int:
    try:
        return (data_dir / "logs" / "api.log").stat().st_size
    except FileNotFoundError:
        return 0


def ended(run: Run, sig: signal.Signals) -> None:
    """``sig`` was sent: the run ends (SIGINT: exit 0 after an orderly stop, no traceback), and
    every process it started ends with it, however it ended."""
    code = run.proc.wait(timeout=120)
    out = run.output()
    # No crash; the one traceback Python itself prints is a Shutdown raised inside a hook that
    # ignores exceptions (the supervisor then stops at its next step, see Supervisor._checkpoint).
    assert out.count("Traceback") == out.count("Exception ignored in"), out
    if sig == signal.SIGINT:
        assert code == 0 and "stopping" in out, (code, out)
    else:
        assert code == -signal.SIGKILL, (code, out)
    deadline = time.monotonic() + 60
    while left := processes_using(run.data_dir):
        assert time.monotonic() < deadline, f"outlived `openchat run` ({sig.name}): {left}"
        time.sleep(0.2)


def knowledge(data_dir: Path) -> list[tuple[str, str, bool]]:
    """Every stored chunk: content hash, text, indexed."""
    with sqlite3.connect(data_dir / "openchat.sqlite3") as db:
        return sorted(db.execute("SELECT content_hash, text, indexed FROM chunks").fetchall())


def ledger(data_dir: Path) -> set[tuple]:
    """The append-only journal (payouts' double-entry ledger)."""
    with sqlite3.connect(data_dir / "openchat.sqlite3") as db:
        return set(db.execute("SELECT * FROM journal_entries").fetchall())


def anvils_on(data_dir: Path) -> list[int]:
    return [pid for pid, cmd in processes_using(data_dir).items() if "/anvil " in cmd or cmd.startswith("anvil ")]


@pytest.mark.slow  # about a dozen starts of the system, most cut short: a few minutes here
def test_killed_anywhere_in_start_or_stop_it_comes_back_the_same(runs: list[Run], tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    demo = load_demo()

    def start() -> Run:
        run = Run(data_dir, port)
        runs.append(run)
        return run

    # ---- killed during the start, at each step, alternately Ctrl-C and SIGKILL
    steps: list[tuple[str, Callable[[Run, int], Callable[[], bool]], signal.Signals]] = [
        ("migrate", lambda r, _: line(r, "migrating the database"), signal.SIGKILL),
        ("chain", lambda r, _: line(r, "starting anvil"), signal.SIGINT),
        ("deploy", lambda r, _: line(r, "deploying the contracts"), signal.SIGKILL),
        ("workers", lambda r, _: line(r, "starting worker-chain"), signal.SIGINT),
        ("API", lambda r, _: line(r, "waiting for the API"), signal.SIGKILL),
        ("demo seeding", lambda r, off: demo_posts(data_dir, off, 8), signal.SIGKILL),
        ("demo seeding again", lambda r, off: demo_posts(data_dir, off, len(demo) // 2 + 8), signal.SIGINT),
    ]
    for name, point, sig in steps:
        offset = api_log_size(data_dir)
        run = start()
        wait_for(run, name, point(run, offset))
        run.proc.send_signal(sig)
        ended(run, sig)
    # The seeding was cut twice: some snippets are in, the rest not, and the marker says so.
    assert 0 < len(knowledge(data_dir)) < len(demo) and (data_dir / PENDING_MARKER).exists()

    # ---- the next start comes all the way up and finishes the demo knowledge, no copy twice
    first = start()
    first.wait_up()
    out = first.output()
    assert "added the demo knowledge" in out and "snippets were already there" in out, out
    assert not (data_dir / PENDING_MARKER).exists()
    chunks = knowledge(data_dir)
    assert len(chunks) == len(demo) and all(indexed for *_, indexed in chunks)
    assert sorted(text for _, text, _ in chunks) == sorted(s.text for s in demo)
    with httpx.Client(base_url=first.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as http:
        assert http.get("/healthz").json()["checks"]["chunks"] == str(len(demo))
        reply = http.post("/v1/chat/completions", json={"model": "openchat-extractive",
                                                        "messages": [{"role": "user", "content": QUESTION}]})
        assert reply.status_code == 200, reply.text
        answer_id = reply.json()["openchat"]["answer_id"]
        assert reply.json()["citations"][0]["contributor"] == DEMO_CONTRIBUTOR
    rpc = first.rpc_url()
    head = int(str(rpc_call(rpc, "eth_blockNumber")), 16)
    head_hash = rpc_call(rpc, "eth_getBlockByNumber", [hex(head), False])["hash"]  # type: ignore[index]
    deployment = (data_dir / "chain" / "deployment.json").read_text()

    # ---- killed during the stop: Ctrl-C, a second Ctrl-C (ignored: the stop goes on), then
    # SIGKILL halfway through
    first.proc.send_signal(signal.SIGINT)
    wait_for(first, "stopping beat", line(first, "stopping beat"), timeout=60)
    first.proc.send_signal(signal.SIGINT)
    wait_for(first, "stopping worker-chain", line(first, "stopping worker-chain"), timeout=60)
    first.proc.send_signal(signal.SIGKILL)
    ended(first, signal.SIGKILL)
    journal = ledger(data_dir)
    assert journal  # the answer was paid for

    # ---- comes up again: same knowledge, ledger and chain, nothing seeded
    second = start()
    second.wait_up()
    out = second.output()
    assert "added the demo knowledge" not in out and "reusing deployment" in out, out
    assert knowledge(data_dir) == chunks
    assert journal <= ledger(data_dir)  # append-only: all of it is still there
    assert (data_dir / "chain" / "deployment.json").read_text() == deployment
    again = rpc_call(second.rpc_url(), "eth_getBlockByNumber", [hex(head), False])
    assert again and again["hash"] == head_hash  # type: ignore[index]
    with httpx.Client(base_url=second.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as http:
        assert http.get(f"/v1/answers/{answer_id}").status_code == 200

    # ---- a second `openchat run` on the same data dir while one lives: one line, no second anvil
    extra = subprocess.run([sys.executable, "-m", "assistant.cli", "run"], check=False, cwd=REPO,
                           env={**{k: v for k, v in os.environ.items() if not k.startswith("OPENCHAT_")},
                                "OPENCHAT_DATA_DIR": str(data_dir), "OPENCHAT_PORT": str(free_port())},
                           capture_output=True, text=True, timeout=120)
    said = (extra.stdout + extra.stderr).strip()
    assert extra.returncode != 0 and said.count("\n") == 0, said
    assert f"another `openchat run` (pid {second.proc.pid}) is using {data_dir}" in said, said
    assert len(anvils_on(data_dir)) == 1

    # ---- a child that does not die with the supervisor (here: anvil stopped, SIGSTOP, when the
    # supervisor is SIGKILLed) is found by the next start, stopped, and the chain comes back whole
    anvil = json.loads((data_dir / "supervisor.json").read_text())["anvil"]
    os.kill(anvil, signal.SIGSTOP)
    second.proc.send_signal(signal.SIGKILL)
    assert second.proc.wait(timeout=30) == -signal.SIGKILL
    assert anvils_on(data_dir) == [anvil]  # still there, holding the state file
    third = start()
    third.wait_up()
    # The other children got SIGTERM when the supervisor died and may still be shutting down,
    # holding the lock: they are stopped too and listed beside the anvil.
    said = f"openchat run: stopping what an earlier run left on {data_dir}: "
    left = next((ln.removeprefix(said) for ln in third.output().splitlines() if ln.startswith(said)), "")
    assert f"{anvil} anvil" in left.split(", "), third.output()
    assert anvils_on(data_dir) == [json.loads((data_dir / "supervisor.json").read_text())["anvil"]] != [anvil]
    again = rpc_call(third.rpc_url(), "eth_getBlockByNumber", [hex(head), False])
    assert again and again["hash"] == head_hash  # type: ignore[index]
    assert knowledge(data_dir) == chunks and journal <= ledger(data_dir)

    third.proc.send_signal(signal.SIGINT)
    ended(third, signal.SIGINT)
    assert "stopped" in third.output()
