"""Keep freed memory in the process while training, so a step's large buffers are not page-faulted anew.

A training step allocates and frees several ``[batch, candidates]`` buffers (8 MB each at the
defaults: logits, masks, the softmax). glibc's malloc hands blocks of that size back to the
operating system when they are freed (``munmap``, or a trim of the heap's top), and the next
step's allocation of the same size then faults in and zeroes every page again: on a
MovieLens-1M-sized log that cost ~20 % of an epoch (one thread, 1,024 + 1,024 candidates —
docs/performance.md). Inside `retained_heap` blocks up to `MMAP_THRESHOLD` come from the heap and
freed memory stays there up to `TRIM_THRESHOLD`, so a step reuses the previous step's pages; on
leaving, the free memory is returned (``malloc_trim``) and the thresholds are set to where glibc's own
dynamic adjustment settles in a process that frees large arrays (`AFTER_MMAP_THRESHOLD`, twice that
to trim). Setting them once turns that adjustment off for the process, so going back to the
128 KiB start values would make the user's later large numpy allocations fault in anew each time.

Only glibc is tuned (Linux); elsewhere, or when the user set ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TRIM_THRESHOLD_`` themselves (their choice wins) or ``CONTREC_RETAIN_HEAP=0``, the block
changes nothing. Nested blocks (a carve fit inside a fit) tune once.

Example:
    >>> with retained_heap():  # doctest: +SKIP
    ...     train_two_tower(...)
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["retained_heap", "MMAP_THRESHOLD", "TRIM_THRESHOLD", "AFTER_MMAP_THRESHOLD"]

MMAP_THRESHOLD = 1 << 28  # 256 MiB: larger blocks are still mapped (and unmapped) on their own
TRIM_THRESHOLD = 1 << 30  # 1 GiB of free heap kept while training
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
# glibc raises its mmap threshold to the size of each freed mapped block, up to 32 MiB on 64-bit systems
# (DEFAULT_MMAP_THRESHOLD_MAX), and keeps the trim threshold at twice it: the state left behind
AFTER_MMAP_THRESHOLD = 32 << 20

_lock = threading.Lock()
_depth = 0


def _libc() -> "ctypes.CDLL | None":
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or os.environ.get("CONTREC_RETAIN_HEAP") == "0":
        return None
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return None
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:  # pragma: no cover - a Linux without a loadable libc
        return None


@contextmanager
def retained_heap() -> Iterator[bool]:
    """Inside the block, glibc keeps freed memory for reuse; yields whether it was tuned."""
    global _depth
    libc = _libc()
    with _lock:
        outermost = _depth == 0
        _depth += 1
        tuned = libc is not None and outermost
        if tuned and libc is not None:
            libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    try:
        yield libc is not None
    finally:
        with _lock:
            _depth -= 1
            if tuned and libc is not None:
                libc.mallopt(_M_MMAP_THRESHOLD, AFTER_MMAP_THRESHOLD)
                libc.mallopt(_M_TRIM_THRESHOLD, 2 * AFTER_MMAP_THRESHOLD)
                libc.malloc_trim(0)
