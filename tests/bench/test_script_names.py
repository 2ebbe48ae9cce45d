"""Scripts in bench/ run as ``python bench/x.py``, which puts bench/ first on sys.path: a script
named like a package (``payouts``, ``retrieval``, a library) would shadow it for every import."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "bench").glob("*.py"))


def test_there_are_scripts() -> None:
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_no_script_shadows_an_importable_module(script: Path) -> None:
    # bench/ is not on this process's path, so whatever is found is what the script would hide.
    assert importlib.util.find_spec(script.stem) is None, f"bench/{script.name} shadows the module {script.stem!r}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_imports_when_run_as_documented(script: Path) -> None:
    # --help imports everything the script imports at its top, then exits 0.
    done = subprocess.run([sys.executable, str(script.relative_to(ROOT)), "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
