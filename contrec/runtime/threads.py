"""How many threads a fit uses when the user does not say: the CPUs that are free now.

torch's OpenMP threads spin at their barriers; on a machine where another process keeps
a core busy, a fit that still runs one thread per core waits on the slowest thread at
every step. Measured here (2 cores, ml-100k default fit, ``benchmarks/threads_under_load.py``):
with the machine to itself 2 threads took 15.6 s and 1 thread 24.9 s; beside one busy
process 2 threads took 50.0 s (3.2× slower) while 1 thread took 23.2 s, and the default
chose 1 thread there (23.1 s). So the default counts the CPUs this process may
run on (its affinity mask, which containers and ``taskset`` set) and leaves out the ones
other processes kept busy over a short look at ``/proc/stat``.

A fit's thread count can change its last floating-point digits: for bit-for-bit
repeatable runs on a shared machine, pass ``threads=N`` (``--threads N``).

Example:
    >>> n = default_threads()  # doctest: +SKIP
    >>> 1 <= n <= os.cpu_count()  # doctest: +SKIP
    True
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator

__all__ = ["usable_cpus", "busy_cpus", "default_threads", "pinned_threads"]

_LOOK_SECONDS = 0.1


def usable_cpus() -> int:
    """CPUs this process may run on (affinity mask; ``os.cpu_count`` where there is none)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            fields = [float(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _own_ticks() -> float:
    """CPU time of every thread of this process so far, in /proc/stat's ticks."""
    times = os.times()
    return (times.user + times.system) * os.sysconf("SC_CLK_TCK")


def busy_cpus(seconds: float = _LOOK_SECONDS) -> float:
    """How many CPUs other processes kept busy over ``seconds``. This process's own threads are left out: its
    caller sleeps, but the OpenMP workers of a fit that has just ended spin for a while — counted, they made the
    default fit's refit, right after its carve fits, take one thread of two on an idle machine."""
    first, own = _cpu_times(), _own_ticks()
    time.sleep(seconds)
    second, own = _cpu_times(), _own_ticks() - own
    if first is None or second is None or second[1] <= first[1]:
        return 0.0
    share = max(0.0, second[0] - first[0] - own) / (second[1] - first[1])
    return share * (os.cpu_count() or 1)


def default_threads() -> int:
    """The usable CPUs less the ones busy elsewhere (rounded, so a short blip does not count), at least 1."""
    return max(1, min(usable_cpus(), round(usable_cpus() - busy_cpus())))


@contextmanager
def pinned_threads(n: int | None, blas: bool = False) -> Iterator[None]:
    """torch and FAISS (and with ``blas`` the BLAS / OpenMP pools numpy and implicit use) run ``n``
    threads inside the block; what was set before comes back after. ``n=None`` changes nothing.

    The one place contrec pins threads: a fit, serving, a comparison (the same count for every
    contestant) and the benchmarks all go through it.

    Example:
        >>> with pinned_threads(1):  # doctest: +SKIP
        ...     model.fit(train)
    """
    if n is None:
        yield
        return
    import faiss
    import torch

    before, before_faiss = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)
    try:
        if blas:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(n):
                yield
        else:
            yield
    finally:
        torch.set_num_threads(before)
        faiss.omp_set_num_threads(before_faiss)
