"""BLAS thread settings that keep large dense solves alive.

The OpenBLAS that numpy and scipy ship (0.3.31 here) crashes the process with a
segmentation fault in multi-threaded level-3 calls on large float64 matrices on this
project's machines: ``x.T @ x`` at 15,500 × 15,500 and ``dpotrf`` (the Cholesky step of
scipy's ``cho_factor``) at 17,632 × 17,632, both with 2 threads; the same calls with one
thread, and float32 ``spotrf``/``spotri`` with 2 threads up to 22,000 × 22,000, finish
(``benchmarks/blas_limits.py`` reproduces the measurements). contrec's dense solves run in
float32, and above `SAFE_THREADED_BYTES` a matrix is solved with one BLAS thread: at 20k
items that was as fast as two (62 s either way; the solve is memory-bound), and no size we
tried crashes with one thread.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

__all__ = ["SAFE_THREADED_BYTES", "safe_blas_threads"]

# the largest matrix seen solved safely with 2 OpenBLAS threads, with a margin below the
# smallest one seen crash (float64 15,500² = 1.9 GB)
SAFE_THREADED_BYTES = 1_500_000_000


@contextmanager
def safe_blas_threads(matrix_bytes: int) -> Iterator[None]:
    """One BLAS thread for dense level-3 work on a matrix of ``matrix_bytes`` above the safe size."""
    if matrix_bytes <= SAFE_THREADED_BYTES:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield
