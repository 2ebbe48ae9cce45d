"""One smoke run of bench/bounded_inputs.py: it runs as documented and prints its figures (it
prints figures, it does not judge them: tests never time themselves)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_smoke_run_prints_the_ratio_and_what_each_load_got() -> None:
    done = subprocess.run([sys.executable, "bench/bounded_inputs.py", "--smoke"], cwd=ROOT, check=False,
                          capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert re.search(r"normal question, median of 5: quiet [\d.]+ ms, .* ratio [\d.]+", out), out
    # Each worst input got the answer its bound gives it.
    statuses = dict(re.findall(r"^    (\S.*?\S)\s+(\{.*\})$", out, re.MULTILINE))
    assert set(ast.literal_eval(statuses["1 MiB question"])) == {400}
    assert set(ast.literal_eval(statuses["anonymous 8 MiB upload"])) <= {401, 429, -1}
    assert set(ast.literal_eval(statuses["longest question #1"])) == {200}
    assert set(ast.literal_eval(statuses["longest history"])) == {200}
    assert re.search(r"upload: \d+ rows, \d+ chunks stored, 0 rows rejected", out), out
