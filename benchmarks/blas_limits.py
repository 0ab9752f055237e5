"""Which dense BLAS/LAPACK calls survive on this machine, by size, precision and thread count.

The OpenBLAS that numpy and scipy ship crashed the process (SIGSEGV) in multi-threaded
level-3 calls on large float64 matrices here; `contrec.runtime.blas.SAFE_THREADED_BYTES` is set
from this table. Each case runs in its own process, so a crash is a row (exit code −11),
not the end of the benchmark.

    python benchmarks/blas_limits.py            # the full table (~15 min on 2 cores)
    python benchmarks/blas_limits.py --quick    # two small cases
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

# what one case runs: a Gram product x.T @ x (gemm), or a Cholesky factor and inverse (potrf + potri)
_CASE = r"""
import sys, time
import numpy as np
from threadpoolctl import threadpool_limits
op, n, bits, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
dtype = np.float32 if bits == 32 else np.float64
rng = np.random.default_rng(0)
x = (rng.random((1892, n)) < 0.003).astype(dtype)
with threadpool_limits(threads, user_api="blas"):
    t = time.perf_counter()
    if op == "gemm":
        g = x.T @ x
    else:
        import scipy.linalg.lapack as la
        import scipy.sparse as sp
        xs = sp.csr_matrix(x)
        g = (xs.T @ xs).toarray().astype(dtype)
        g[np.diag_indices(n)] += 250.0
        t = time.perf_counter()
        potrf, potri = (la.spotrf, la.spotri) if bits == 32 else (la.dpotrf, la.dpotri)
        c, info = potrf(g.T, lower=1, overwrite_a=1, clean=0)
        p, info = potri(c, lower=1, overwrite_c=1)
    print(time.perf_counter() - t)
"""

FULL = [("gemm", 14000, 64, 2), ("gemm", 15500, 64, 2), ("gemm", 15500, 64, 1), ("gemm", 15500, 32, 2),
        ("potrf+potri", 14800, 64, 2), ("potrf+potri", 17632, 64, 2), ("potrf+potri", 17632, 32, 2),
        ("potrf+potri", 20000, 32, 2), ("potrf+potri", 20000, 32, 1), ("potrf+potri", 24000, 32, 2)]
QUICK = [("gemm", 4000, 64, 2), ("potrf+potri", 4000, 32, 2)]


def run(cases: list[tuple[str, int, int, int]]) -> list[dict]:
    rows = []
    for op, n, bits, threads in cases:
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _CASE, op.split("+")[0], str(n), str(bits), str(threads)],
                              capture_output=True, text=True)
        seconds = float(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else None
        row = {"op": op, "n": n, "dtype": f"float{bits}", "blas_threads": threads,
               "matrix_gb": round(n * n * bits / 8 / 1e9, 2), "exit_code": done.returncode,
               "outcome": "ok" if done.returncode == 0 else ("segmentation fault" if done.returncode == -11
                                                             else f"failed ({done.returncode})"),
               "seconds": None if seconds is None else round(seconds, 1),
               "wall_seconds": round(time.perf_counter() - t0, 1)}
        print(row, flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import numpy
    import scipy
    from threadpoolctl import threadpool_info

    rows = run(QUICK if args.quick else FULL)
    info = [{k: v for k, v in lib.items() if k in ("internal_api", "version", "architecture", "filepath")}
            for lib in threadpool_info() if lib.get("user_api") == "blas"]
    out = RESULTS / ("quick" if args.quick else "")
    out.mkdir(parents=True, exist_ok=True)
    (out / "blas_limits.json").write_text(json.dumps({"numpy": numpy.__version__, "scipy": scipy.__version__,
                                                      "blas": info, "rows": rows}, indent=2))
    lines = ["| op | n | dtype | BLAS threads | matrix GB | outcome | seconds |", "|---|---:|---|---:|---:|---|---:|"]
    lines += [f"| {r['op']} | {r['n']:,} | {r['dtype']} | {r['blas_threads']} | {r['matrix_gb']} | {r['outcome']} | "
              f"{'–' if r['seconds'] is None else r['seconds']} |" for r in rows]
    (out / "blas_limits.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
