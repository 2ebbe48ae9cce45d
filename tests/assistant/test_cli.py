"""`openchat ingest`: the API's intake from the command line, run as a real process."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import new_address


def run_cli(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENCHAT_DATA_DIR": str(data_dir)}
    env.pop("OPENCHAT_DATABASE_URL", None)
    env.pop("OPENCHAT_QDRANT_URL", None)
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], env=env, capture_output=True, text=True, timeout=300)


def test_ingest_reports_counts_and_bad_lines(tmp_path: Path) -> None:
    data = tmp_path / "facts.jsonl"
    data.write_text(
        json.dumps({"id": "a", "text": "Honey never spoils because of its low water content and acidity."}) + "\n"
        + "{oops\n"
        + json.dumps({"id": "b", "text": "Bananas are botanically berries, while strawberries are not."}) + "\n"
    )
    who = new_address()
    proc = run_cli(["ingest", str(data), "--contributor", who], tmp_path / "data")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["chunks_stored"] == 2 and summary["rows_rejected"] == 1
    assert "line 2: malformed JSON" in proc.stderr
    assert "facts.jsonl" in proc.stderr  # the progress bar
    again = run_cli(["ingest", str(data), "--contributor", who, "--quiet"], tmp_path / "data")
    assert json.loads(again.stdout.strip().splitlines()[-1])["chunks_duplicate"] == 2


def test_ingest_refuses_bad_arguments(tmp_path: Path) -> None:
    data = tmp_path / "x.pdf"
    data.write_bytes(b"%PDF-1.4")
    proc = run_cli(["ingest", str(data), "--contributor", new_address()], tmp_path / "data")
    assert proc.returncode == 2 and "cannot tell the format" in proc.stderr
    proc = run_cli(["ingest", str(data), "--contributor", "0xnope"], tmp_path / "data")
    assert proc.returncode == 2 and "not an Ethereum address" in proc.stderr
