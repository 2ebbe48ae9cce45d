"""The C heap's policy for bulk embedding (glibc only; elsewhere these do nothing).

onnxruntime (arena off) mallocs every activation of a run and frees it after. glibc serves
blocks above its mmap threshold with mmap and returns them to the OS when freed, but after
the first such free it raises the threshold (up to 32 MB), so later activations come from the
heap and stay resident. Measured on `openchat ingest` (docs/retrieval.md, Memory): a fixed
1 MiB threshold plus a trim after each run hold the process at 350-400 MB where it swung
to 450-490. No maintained library exposes mallopt/malloc_trim; they are two libc calls.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

# glibc's mallopt parameter number of M_MMAP_THRESHOLD (malloc.h).
_M_MMAP_THRESHOLD = -3


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_LIBC = _libc()
_trim: Callable[[int], int] | None = _LIBC.malloc_trim if _LIBC is not None else None


def release_freed_memory() -> None:
    """Hand the heap pages freed since the last call back to the OS."""
    if _trim is not None:
        _trim(0)


def map_large_blocks(threshold: int = 1 << 20) -> bool:
    """Serve blocks of ``threshold`` bytes or more by mmap for the rest of the process.

    Meant for a bulk process (the CLI ingestion): each large activation then returns to the
    OS when freed. Returns whether the policy was applied.
    """
    return bool(_LIBC is not None and _LIBC.mallopt(_M_MMAP_THRESHOLD, threshold) == 1)
