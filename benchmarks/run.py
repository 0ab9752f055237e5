"""Run every benchmark (or a quick subset) one after another, each in its own process.

    CONTREC_DATA=../shared/datasets python benchmarks/run.py            # everything (about 1.6 h on 2 cores)
    CONTREC_DATA=../shared/datasets python benchmarks/run.py --quick    # a quick subset (about 6 min)

Results land in benchmarks/results/ (JSON + markdown, PNG where the script plots; the quick
subset in benchmarks/results/quick/). Runs are
sequential on purpose: benchmarks sharing the CPU would distort each other's timings.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
FULL = [
    ["quality.py", "--seeds", "0", "1", "2"],
    ["samplers.py", "--seeds", "0", "1", "2"],
    ["cold_start.py", "--seeds", "0", "1", "2"],
    ["projection.py", "--seeds", "0", "1", "2"],
    ["time_to_quality.py"],
    ["throughput.py"],
    ["retrieval.py"],
    ["scale.py"],
    ["reading.py"],
    ["distributed.py", "--seeds", "0", "1", "2"],
]
QUICK = [
    ["time_to_quality.py", "--datasets", "ml-100k"],
    ["throughput.py", "--quick"],
    ["retrieval.py", "--catalogues", "ml-100k", "ml-1m-size", "synthetic-100k"],
    ["scale.py", "--sizes", "1000000"],
    ["reading.py", "--rows", "1000000", "--repeats", "1"],
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the quick subset")
    p.add_argument("--threads", default="2")
    p.add_argument("--out", help="results folder (default: benchmarks/results, or benchmarks/results/quick "
                                 "for --quick, so a quick run never replaces the full tables)")
    args = p.parse_args()
    args.out = args.out or str(HERE / "results" / ("quick" if args.quick else ""))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for job in QUICK if args.quick else FULL:
        t0 = time.perf_counter()
        print(f"== {' '.join(job)}", flush=True)
        code = subprocess.call([sys.executable, str(HERE / job[0]), *job[1:], "--threads", args.threads,
                                "--out", args.out])
        print(f"== {job[0]}: exit {code}, {time.perf_counter() - t0:.0f} s", flush=True)
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
