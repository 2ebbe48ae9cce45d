"""Child processes that never outlive the process that started them (Linux).

A hard kill (SIGKILL, OOM) of a parent runs none of its cleanup, so its children would go on as
orphans: a second anvil on the same ``--state`` file, workers of a system nobody runs. The
kernel can tell the child instead: ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` in the child, between
fork and exec, signals it the moment its parent dies, however the parent died.

One libc call through ctypes rather than a package: the prctl wrappers on PyPI (python-prctl
needs libcap headers to build; pyprctl has seen no release since 2021) would add a dependency
for this single call, and neither closes the race below.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets ``sig`` when the process
    that calls this dies. A no-op where prctl does not exist (not Linux).

    The kernel ties the signal to the *thread* that forked, so call Popen from a thread that
    lives as long as the child should (the main thread here)."""
    parent = os.getpid()
    libc_name = ctypes.util.find_library("c") or "libc.so.6"

    def preexec() -> None:
        try:
            ctypes.CDLL(libc_name, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig))
        except (OSError, AttributeError):
            return
        # The parent may have died between fork and prctl: then no signal would ever come.
        if os.getppid() != parent:
            os._exit(1)

    return preexec
