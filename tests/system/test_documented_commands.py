"""Every shell command shown in README.md, docs/ and contracts/README.md runs as written.

The fenced blocks of those files are read; every command in them (a ``bash``/``sh`` block, or an
unlabelled block whose lines all start with a program) must appear in ``HOW`` below, which says
how it is checked, so a newly documented command fails here until someone decides:

- ``RUN``: run exactly as written, in a fresh checkout (a scratch directory of symlinks to this
  one, without its ``data/``), with a PATH that has no virtualenv on it (a fresh shell);
- ``LIVE``: run exactly as written against a live app (``localhost:8000`` and the dev key
  ``oc-dev-key`` are the app of this test's, started on a free port); the answer must be JSON and
  not an error, unless the entry names the error a fresh system answers;
- ``HELP``: a long-running or chain-needing command: its ``--help`` form must exit 0 (for Celery
  that loads the app) and list every option the documented command uses;
- ``CHECK``: a cheaper form that checks the same thing (``make -n``, ``pytest --collect-only``);
- ``SKIP``: not run, with the reason (``pytest -rs`` lists them).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.settings import load_settings
from retrieval.embedder import Embedder
from tests.conftest import LiveServer, start_server

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = ["README.md", "DEVELOPERS.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")),
             "contracts/README.md"]
DEV_KEY = "oc-dev-key"  # the key README's examples use (`make run`'s dev key)
FENCE = re.compile(r"^([ \t]*)```(\w*)[ \t]*\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
SHELL = {"bash", "sh", "shell", "console"}
# A line that starts one of these is a command (an unlabelled block of only such lines is shell).
PROGRAM = re.compile(r"^(\.venv/bin/\S+|make|curl|npm|npx|python3?|pip|pytest|celery|openchat|docker)(\s|$)")
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
# Seconds: a command here is a --help, a compile check or a small ingest.
TIMEOUT = 240

RUN, LIVE, HELP, CHECK, SKIP = "run", "live", "help", "check", "skip"
# Runs like RUN where the shared data sets sit beside the checkout (CI's layout); skipped without them.
RUN_ON_SHARED = "run on shared data"
SHARED = REPO.parent / "shared" / "data"
ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
PAYOUTS_HELP = ".venv/bin/python -m payouts.cli {} --help"

HOW: dict[str, tuple[str, str]] = {
    # README.md
    "make run": (CHECK, "make -n run"),  # serves until Ctrl-C; tests/system/test_faults.py runs the whole system
    "make test": (CHECK, "make -n test"),  # runs every test: this is one of them
    "curl -s localhost:8000/v1/chat/completions -H 'Authorization: Bearer oc-dev-key' -H 'content-type: application/json' "
    "-d '{\"model\": \"openchat-extractive\", \"messages\": [{\"role\": \"user\", \"content\": "
    "\"How many hearts does an octopus have?\"}]}'": (LIVE, ""),
    "curl -s localhost:8000/v1/contributions -H 'Authorization: Bearer oc-dev-key' -H 'content-type: application/json' "
    "-d '{\"text\": \"Octopuses have three hearts.\", \"title\": \"Octopus\", \"contributor\": "
    f"\"{ADDRESS}\"}}'": (LIVE, ""),
    "curl -s localhost:8000/v1/contributions -H 'Authorization: Bearer oc-dev-key' -H 'content-type: application/json' "
    "-d '{\"text\": \"I ran a 5K charity run yesterday.\", \"speaker\": \"Maria\", \"timestamp\": \"2023-05-08T13:56\", "
    f"\"contributor\": \"{ADDRESS}\"}}'": (LIVE, ""),
    f"curl -s localhost:8000/v1/datasets -H 'Authorization: Bearer oc-dev-key' -F file=@facts.jsonl -F contributor={ADDRESS}":
        (LIVE, ""),
    "curl -s localhost:8000/v1/search -H 'Authorization: Bearer oc-dev-key' -H 'content-type: application/json' "
    "-d '{\"query\": \"how many hearts does an octopus have\", \"top_k\": 5, \"filters\": {\"contributor\": "
    f"\"{ADDRESS}\"}}}}'": (LIVE, ""),
    f".venv/bin/openchat ingest facts.jsonl --contributor {ADDRESS}": (RUN, ""),
    f"curl -s localhost:8000/v1/contributors/{ADDRESS}": (LIVE, ""),
    # No voucher before a payout run: the system's worker makes them (tests/system runs it).
    f"curl -s localhost:8000/v1/contributors/{ADDRESS}/voucher": (LIVE, "no_voucher"),
    "curl -s localhost:8000/v1/contributions/1/proof": (LIVE, ""),
    "curl -s localhost:8000/v1/account -H 'Authorization: Bearer oc-dev-key'": (LIVE, ""),  # chunks "pending" until anchored
    ".venv/bin/openchat accounts key alice": (RUN, ""),
    ".venv/bin/openchat accounts fund alice 5000000": (RUN, ""),
    # DEVELOPERS.md
    "make local-llm": (CHECK, "make -n local-llm"),  # the first run builds llama-cpp-python (~8 min); `make test` runs it
    ".venv/bin/python -m pytest tests/assistant/test_llm_real_model.py -q":
        (CHECK, ".venv/bin/python -m pytest tests/assistant/test_llm_real_model.py -q --collect-only"),
    # docs/operations.md
    ".venv/bin/python -m pytest tests/system -q -s": (CHECK, ".venv/bin/python -m pytest tests/system -q --collect-only"),
    ".venv/bin/python bench/load.py [--clients 16] [--seconds 60] [--warmup 5]": (HELP, ".venv/bin/python bench/load.py --help"),
    # docs/retrieval.md
    ".venv/bin/python bench/sentence_vectors.py [--set hotpotqa-dev] [--docs 300] [--questions 100] [--repeats 3]":
        (HELP, ".venv/bin/python bench/sentence_vectors.py --help"),
    ".venv/bin/python bench/sentence_origin.py [--data ../shared/data] [--smoke]":
        (HELP, ".venv/bin/python bench/sentence_origin.py --help"),
    ".venv/bin/python bench/sentence_origin.py --stretches [--half even|odd] [--smoke] [--limit N] [--sizes 9,10,11] [--shares 0,0.5] [--longs 20] [--window 4] [--no-runs] [--answer-run 8]":
        (HELP, ".venv/bin/python bench/sentence_origin.py --help"),
    ".venv/bin/python bench/sentence_origin.py --paraphrases [--half even|odd] [--smoke] [--limit N]":
        (HELP, ".venv/bin/python bench/sentence_origin.py --help"),
    ".venv/bin/python bench/first_writer_cost.py [--set hotpotqa-dev] [--docs 300] [--questions 100] [--repeats 3]":
        (HELP, ".venv/bin/python bench/first_writer_cost.py --help"),
    # docs/payouts.md
    ".venv/bin/openchat payouts retire ID [--note TEXT] [--json]": (HELP, ".venv/bin/openchat payouts retire --help"),
    ".venv/bin/openchat payouts status": (HELP, ".venv/bin/openchat payouts status --help"),
    ".venv/bin/openchat payouts release 0xADDRESS [...] [--note \"hub funded\"]":
        (HELP, ".venv/bin/openchat payouts release --help"),
    ".venv/bin/celery -A payouts.worker worker -Q payouts -c 4": (HELP, ".venv/bin/celery -A payouts.worker worker --help"),
    ".venv/bin/celery -A payouts.worker worker -Q payouts.chain -c 1 -P solo":
        (HELP, ".venv/bin/celery -A payouts.worker worker --help"),
    ".venv/bin/celery -A payouts.worker beat": (HELP, ".venv/bin/celery -A payouts.worker beat --help"),
    ".venv/bin/python -m payouts.cli status [--contributor 0x…] [--json]": (HELP, PAYOUTS_HELP.format("status")),
    ".venv/bin/python -m payouts.cli reconcile [--ledger-only] [--json]": (HELP, PAYOUTS_HELP.format("reconcile")),
    ".venv/bin/python -m payouts.cli retire ID [--note TEXT] [--no-chain] [--json]": (HELP, PAYOUTS_HELP.format("retire")),
    ".venv/bin/python -m payouts.cli release 0x… [0x…] | --all [--note TEXT] [--json]": (HELP, PAYOUTS_HELP.format("release")),
    ".venv/bin/python bench/payout_figures.py [--compare 5 --no-chain]": (HELP, ".venv/bin/python bench/payout_figures.py --help"),
    ".venv/bin/python bench/deposit_lag.py [--confirmations 3] [--block-time 1] [--interval 1] [--deposits 8]":
        (HELP, ".venv/bin/python bench/deposit_lag.py --help"),
    ".venv/bin/celery -A assistant.worker worker -Q payouts -c 4": (HELP, ".venv/bin/celery -A assistant.worker worker --help"),
    ".venv/bin/celery -A assistant.worker worker -Q payouts.chain -c 1 -P solo":
        (HELP, ".venv/bin/celery -A assistant.worker worker --help"),
    ".venv/bin/celery -A assistant.worker beat": (HELP, ".venv/bin/celery -A assistant.worker beat --help"),
    ".venv/bin/celery -A assistant.worker worker -Q payouts,payouts.chain -P solo -c 1":
        (HELP, ".venv/bin/celery -A assistant.worker worker --help"),
    # contracts/README.md
    "npm ci --prefix contracts": (SKIP, ("`make install` runs it (a second run would replace contracts/node_modules "
                                         "under other tests using anvil)")),
    "npm run build --prefix contracts": (SKIP, ("rewrites the committed artifacts; `npm run check` (run here) "
                                                "does the same compile and compares")),
    "npm run check --prefix contracts": (RUN, ""),
    ".venv/bin/python -m payouts.localchain --data-dir data": (HELP, ".venv/bin/python -m payouts.localchain --help"),
    ".venv/bin/python -m payouts.deploy --data-dir data": (HELP, ".venv/bin/python -m payouts.deploy --help"),
    ".venv/bin/python bench/gas.py [--anvil]": (HELP, ".venv/bin/python bench/gas.py --help"),
    ".venv/bin/python bench/support_check.py --smoke": (RUN_ON_SHARED, ""),
    ".venv/bin/python bench/paid_delivery.py [--cases 20x1,50x5,50x25] [--smoke]":
        (CHECK, ".venv/bin/python bench/paid_delivery.py --smoke"),
    ".venv/bin/python bench/support_check.py [--baseline] [--errors 5]":
        (HELP, ".venv/bin/python bench/support_check.py --help"),
    ".venv/bin/python -m pytest tests/contracts": (CHECK, ".venv/bin/python -m pytest tests/contracts -q --collect-only"),
}


def _without_comment(line: str) -> str:
    """``line`` up to a ``#`` comment outside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def documented_commands() -> list[tuple[str, str]]:
    """(document, command) for each shell command in a fenced block, continuation lines joined."""
    found = []
    for doc in DOCUMENTS:
        for _, lang, body in FENCE.findall((REPO / doc).read_text()):
            joined = textwrap.dedent(body).replace("\\\n", " ")
            commands = [" ".join(c.split()) for c in map(_without_comment, joined.splitlines()) if c.strip()]
            if lang in SHELL or (not lang and commands and all(PROGRAM.match(c) for c in commands)):
                found += [(doc, c) for c in commands]
    return found


COMMANDS = documented_commands()


def test_every_documented_command_is_classified() -> None:
    documented = {c for _, c in COMMANDS}
    assert documented - HOW.keys() == set(), "documented commands this test does not know how to check"
    assert HOW.keys() - documented == set(), "commands no longer documented"
    assert len(COMMANDS) >= 30  # the extraction still finds the blocks


def fresh_env() -> dict[str, str]:
    """The environment of a fresh shell: no virtualenv on PATH, no OPENCHAT_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCHAT_") and k != "VIRTUAL_ENV"}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return env


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh checkout: this one's files by symlink, without its data/; plus README's facts.jsonl."""
    root = tmp_path_factory.mktemp("checkout")
    for entry in REPO.iterdir():
        if entry.name not in {"data", "test-output", ".pytest_cache", ".git"}:
            (root / entry.name).symlink_to(entry)
    rows = [{"text": "The octopus has blue blood because its blood carries copper-based haemocyanin.", "id": "f1",
             "title": "Octopus blood"},
            {"text": "I fed the neighbour's cat twice this week.", "id": "f2", "speaker": "Maria",
             "timestamp": "2023-05-09T09:10"}]
    (root / "facts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture(scope="module")
def live(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app README's curl examples talk to (they name localhost:8000 and the dev key)."""
    settings = load_settings(data_dir=tmp_path_factory.mktemp("live"), dev_api_key=DEV_KEY)
    server = start_server(settings, embedder)
    yield server
    server.stop()


_helps: dict[str, subprocess.CompletedProcess[str]] = {}


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``command`` in a fresh shell in ``cwd``; a --help form runs once (several commands share one)."""
    if command.endswith(" --help") and command in _helps:
        return _helps[command]
    result = subprocess.run(["bash", "-c", command], cwd=cwd, env=fresh_env(), capture_output=True, text=True,
                            timeout=TIMEOUT, check=False)
    if command.endswith(" --help"):
        _helps[command] = result
    return result


def on(server: LiveServer, command: str) -> str:
    """``command`` pointed at ``server`` instead of the default localhost:8000."""
    return re.sub(r"(https?://)?(localhost|127\.0\.0\.1):8000", server.url, command)


@pytest.mark.parametrize(("doc", "command"), COMMANDS, ids=[c[:70] for _, c in COMMANDS])
def test_documented_command_runs(doc: str, command: str, checkout: Path, request: pytest.FixtureRequest) -> None:
    how, arg = HOW[command]
    if how == SKIP:
        pytest.skip(f"{doc}: `{command}`: {arg}")
    if how == RUN_ON_SHARED:
        if not SHARED.is_dir():
            pytest.skip(f"{doc}: `{command}` reads {SHARED}, which is missing")
        how = RUN
    if how == LIVE:
        result = run(on(request.getfixturevalue("live"), command), checkout)
        assert result.returncode == 0, result.stderr
        body = json.loads(result.stdout)
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}  # an OpenAI-shaped error, not a report's null
        assert error.get("code") == (arg or None), body
        return
    result = run(command if how == RUN else arg, checkout)
    assert result.returncode == 0, f"{doc}: `{command}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    if how == HELP:
        shown, prefix = result.stdout + result.stderr, arg.removesuffix(" --help")
        assert command.startswith(prefix), f"`{arg}` is not the help of `{command}`"
        for option in OPTION.findall(command[len(prefix):]):
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", shown), f"{option} of `{command}` is not in `{arg}`"


def test_readme_python_example_runs(live: LiveServer) -> None:
    """README's OpenAI-SDK example, pointed at the live app, prints an answer and its citations."""
    blocks = [body for _, lang, body in FENCE.findall((REPO / "README.md").read_text()) if lang == "python"]
    assert len(blocks) == 1
    with live.client(key=DEV_KEY) as c:
        resp = c.post("/v1/contributions", json={"text": "Octopuses have three hearts and blue blood.",
                                                 "contributor": ADDRESS})
        assert resp.status_code in (201, 409), resp.text  # 409: the curl example stored it already
    code = on(live, textwrap.dedent(blocks[0]))
    result = subprocess.run([str(REPO / ".venv/bin/python"), "-c", code], env=fresh_env(), capture_output=True,
                            text=True, timeout=TIMEOUT, check=False)
    assert result.returncode == 0, result.stderr
    first, citations, answer_id = result.stdout.splitlines()[:3]
    assert "three hearts" in first and "chunk_id" in citations and answer_id
