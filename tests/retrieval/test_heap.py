"""The heap policy of bulk embedding, on this machine's libc."""

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_accepts_the_policy() -> None:
    # In a child process: the policy is process-wide and the test session should keep glibc's.
    code = "from retrieval.heap import map_large_blocks, release_freed_memory; release_freed_memory(); print(map_large_blocks())"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True"
