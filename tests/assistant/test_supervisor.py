"""`openchat run` for real: anvil, deploy, Celery workers and beat, the API, the demo knowledge;
SIGINT stops every child; the next start resumes with knowledge, ledger and chain intact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from openai import OpenAI
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from assistant.demo import DEMO_CONTRIBUTOR, load_demo
from assistant.settings import load_settings
from assistant.supervisor import child_commands
from payouts.localchain import rpc_call
from payouts.models import Voucher
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
QUESTION = "How many hearts does an octopus have?"


class Run:
    """One `openchat run` process and its output."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.out_path = data_dir.parent / f"run-{time.monotonic_ns()}.out"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCHAT_")}
        env.update(OPENCHAT_DATA_DIR=str(data_dir), OPENCHAT_PORT=str(port), OPENCHAT_PAYOUT_INTERVAL="2",
                   OPENCHAT_PAYOUT_MIN_OWED="0")  # one answer's share is below the default minimum
        with self.out_path.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "run"], env=env, cwd=REPO,
                                         stdout=out, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def wait_up(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while "OpenChat is up" not in self.output():
            assert self.proc.poll() is None, f"openchat run exited {self.proc.returncode}:\n{self.output()}"
            assert time.monotonic() < deadline, f"not up in {timeout}s:\n{self.output()}"
            time.sleep(0.25)

    def pids(self) -> dict[str, int]:
        info = json.loads((self.data_dir / "supervisor.json").read_text())
        return {"anvil": info["anvil"], **info["children"]}

    def rpc_url(self) -> str:
        return str(json.loads((self.data_dir / "supervisor.json").read_text())["rpc_url"])

    def interrupt(self, timeout: float = 120) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def processes_using(data_dir: Path) -> dict[int, str]:
    """Every live process started for ``data_dir``: its environment (inherited by anvil, pool
    processes and anything else a child starts) or command line names it."""
    found = {}
    marker = f"OPENCHAT_DATA_DIR={data_dir}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
            state = next((ln for ln in (entry / "status").read_text().splitlines() if ln.startswith("State:")), "")
        except OSError:
            continue
        if (marker in environ.split(b"\0") or str(data_dir).encode() in cmd) and "zombie" not in state:
            found[int(entry.name)] = cmd.replace(b"\0", b" ").decode(errors="replace")
    return found


def open_files_under(pid: int, path: Path) -> list[str]:
    """Files under ``path`` that process ``pid`` or its descendants hold open."""
    pids, files = [pid], []
    while pids:
        p = pids.pop()
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
            fds = list(Path(f"/proc/{p}/fd").iterdir())
        except OSError:
            continue
        pids.extend(int(c) for c in children)
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith(str(path)):
                files.append(target)
    return files


def test_child_commands_are_the_documented_ones(tmp_path: Path) -> None:
    cmds = child_commands(load_settings(data_dir=tmp_path), python="py")
    assert list(cmds) == ["worker", "worker-chain", "beat", "api"]
    chain = cmds["worker-chain"]
    assert chain[chain.index("-Q") + 1] == "payouts.chain" and chain[chain.index("-c") + 1] == "1"
    assert cmds["worker"][cmds["worker"].index("-Q") + 1] == "payouts"
    assert cmds["api"] == ["py", "-m", "assistant.cli", "serve"]


def test_demo_knowledge_is_original_short_and_unique() -> None:
    snippets = load_demo()
    assert 30 <= len(snippets) <= 60
    assert len({s.text for s in snippets}) == len(snippets) and all(20 < len(s.text) < 400 for s in snippets)


@pytest.mark.slow  # two full starts of the system: about 75 s here
def test_run_answers_stops_cleanly_and_resumes(runs: list[Run], tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()

    first = Run(data_dir, port)
    runs.append(first)
    first.wait_up()
    assert "added the demo knowledge" in first.output()
    pids = first.pids()
    assert all(processes_using(data_dir).get(pid) for pid in pids.values()), (pids, processes_using(data_dir))

    client = OpenAI(base_url=first.url + "/v1", api_key="oc-dev-key", max_retries=0)
    reply = client.chat.completions.create(model="openchat-extractive",
                                           messages=[{"role": "user", "content": QUESTION}])
    text = reply.choices[0].message.content or ""
    citations = reply.model_extra["citations"]
    meta = reply.model_extra["openchat"]
    assert "three hearts" in text and "[1]" in text
    assert citations and citations[0]["contributor"] == DEMO_CONTRIBUTOR and citations[0]["title"] == "Octopus"

    # A new data dir's vectors are in Qdrant Edge (one process: it locks its WAL), which only the
    # API opens; workers and beat never do.
    store = data_dir / "edge"
    assert not (data_dir / "qdrant").exists()
    assert open_files_under(pids["api"], store)
    for name in ("worker", "worker-chain", "beat"):
        assert not open_files_under(pids[name], store), name

    # Beat (every 2 s here) -> aggregate -> issue_vouchers: the demo contributor's channel is
    # opened on chain and a voucher signed, so the chain has state of ours to persist.
    engine = create_engine(f"sqlite:///{data_dir / 'openchat.sqlite3'}")
    deadline = time.monotonic() + 90
    with Session(engine) as s:
        while not s.execute(select(func.count()).select_from(Voucher)).scalar_one():
            assert time.monotonic() < deadline, (data_dir / "logs" / "worker-chain.log").read_text()[-3000:]
            time.sleep(0.5)
            s.rollback()
    engine.dispose()
    head = int(str(rpc_call(first.rpc_url(), "eth_blockNumber")), 16)
    head_hash = rpc_call(first.rpc_url(), "eth_getBlockByNumber", [hex(head), False])["hash"]  # type: ignore[index]
    deployment = (data_dir / "chain" / "deployment.json").read_text()

    assert first.interrupt() == 0, first.output()
    assert "stopped" in first.output()
    assert processes_using(data_dir) == {}
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for name in ("worker", "worker-chain"):
        assert "Warm shutdown" in (data_dir / "logs" / f"{name}.log").read_text(), name
    assert "Application shutdown complete" in (data_dir / "logs" / "api.log").read_text()

    second = Run(data_dir, port)
    runs.append(second)
    second.wait_up()
    out = second.output()
    assert "added the demo knowledge" not in out and "reusing deployment" in out, out
    assert (data_dir / "chain" / "deployment.json").read_text() == deployment
    # The same chain history, not a fresh chain with the same (deterministic) addresses.
    again = rpc_call(second.rpc_url(), "eth_getBlockByNumber", [hex(head), False])
    assert again and again["hash"] == head_hash  # type: ignore[index]

    with httpx.Client(base_url=second.url, headers={"Authorization": "Bearer oc-dev-key"}, timeout=60) as http:
        health = http.get("/healthz").json()
        assert health["status"] == "ok" and health["checks"]["chunks"] == str(len(load_demo())), health
        answer = http.get(f"/v1/answers/{meta['answer_id']}").json()
        assert answer["answer"] == text and answer["sources"][0]["contributor"] == DEMO_CONTRIBUTOR, answer
        assert answer["sources"][0]["payout_status"] in ("vouchered", "settled"), answer  # the ledger too
        conversation = http.get(f"/v1/conversations/{meta['conversation_id']}")
        assert conversation.status_code == 200 and text in conversation.text

    # A child dying on its own (SIGKILL: no cleanup) stops everything, says which, exit 1; the
    # killed prefork worker's pool processes are cleared with its process group.
    os.kill(second.pids()["worker"], signal.SIGKILL)
    assert second.proc.wait(timeout=120) == 1, second.output()
    assert "worker exited unexpectedly" in second.output()
    assert processes_using(data_dir) == {}
