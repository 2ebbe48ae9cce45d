"""One short run of bench/deposit_lag.py: it runs as documented and prints its figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from payouts.localchain import LocalChainError, find_anvil

ROOT = Path(__file__).resolve().parents[2]


def test_deposit_lag_bench_runs_and_prints_lag_and_bound() -> None:
    try:
        find_anvil()
    except LocalChainError as exc:
        pytest.skip(str(exc))
    done = subprocess.run([sys.executable, "bench/deposit_lag.py", "--deposits", "2", "--confirmations", "2",
                           "--block-time", "0.5", "--interval", "0.5"], cwd=ROOT, check=False,
                          capture_output=True, text=True, timeout=300)
    assert "median" in done.stdout and "max / bound" in done.stdout, done.stdout + done.stderr
