"""Processes a dead `openchat run` left on its data dir, found by the lock file they hold open.

Every process `openchat run` starts (anvil, workers, beat, the API) inherits the descriptor of
``<data_dir>/supervisor.lock``, on which the supervisor holds an flock: the lock stays taken
while any process of that run lives, whoever of them dies first. A start that cannot take it
asks who holds the file open: the supervisor named in the file means a live run (refuse), any
other holder is a leftover of a run that died (stop it). The children also get SIGTERM when the
supervisor dies (payouts.lifetime), so leftovers are rare: a child that ignored or had not yet
acted on that signal (e.g. a stopped process, or one still in its warm shutdown).

psutil rather than walking /proc by hand: it reads each process's open files, and waits for a
set of processes, portably and without racing pid reuse.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil


def holders(path: Path) -> list[psutil.Process]:
    """Live processes, other than this one, that hold ``path`` open."""
    target = str(path.resolve())
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and any(f.path == target for f in proc.open_files()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def describe(procs: list[psutil.Process]) -> str:
    """``pid name, pid name`` for a message."""
    parts = []
    for proc in procs:
        try:
            parts.append(f"{proc.pid} {proc.name()}")
        except psutil.Error:
            parts.append(str(proc.pid))
    return ", ".join(parts)


def stop(procs: list[psutil.Process], timeout: float, last: Path | None = None) -> list[psutil.Process]:
    """SIGTERM (and SIGCONT, so a stopped process acts on it), wait, then SIGKILL. Holders of
    ``last`` go after the others (anvil: the workers may still be talking to it). Returns the
    processes still alive after all that."""
    late = {p.pid for p in holders(last)} if last is not None else set()
    alive: list[psutil.Process] = []
    for group in ([p for p in procs if p.pid not in late], [p for p in procs if p.pid in late]):
        for proc in group:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.send_signal(signal.SIGCONT)
            except psutil.NoSuchProcess:
                pass
        _, rest = psutil.wait_procs(group, timeout=timeout)
        for proc in rest:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        alive += psutil.wait_procs(rest, timeout=5)[1]
    return alive
