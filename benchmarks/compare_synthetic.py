"""The README's five-sampler comparison at MovieLens-1M size (issue 18: ≤ 60 minutes on 2 cores).

The log is the throughput benchmark's (`throughput.dataset`: 6,040 users × 3,700 items,
575,000 positives from the seeded power-law generator, 18 synthetic genres, 1–3 per item,
so the domain rule ``disjoint(genres)`` has something to read). It is written once as a CSV
and an item-attributes file — the way a user's own data enters `contrec compare` — and the
comparison runs with the README's settings: samplers uniform, popularity, hard, domain-rule
and mixed; baselines popularity, item-kNN, ALS, BPR and EASE; 3 seeds, per-seed tuning by
successive halving, 1 thread × 2 worker processes. The report (tables, tests, plots, the
tuning log, wall time in ``manifest.json``) goes to ``benchmarks/results/compare-synthetic``;
the cell cache makes an interrupted run resumable.

    python benchmarks/compare_synthetic.py                   # the full study (about 80 minutes)
    python benchmarks/compare_synthetic.py --precision bfloat16   # contrec's fits in bfloat16
    python benchmarks/compare_synthetic.py --seeds 1 --samplers uniform --baselines als   # a quick look
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS  # noqa: E402
from throughput import dataset  # noqa: E402

import contrec  # noqa: E402
from contrec.experiments.result import ComparisonResult  # noqa: E402

SAMPLERS = ["uniform", "popularity", "hard", "domain-rule", "mixed"]
BASELINES = ["popularity", "itemknn", "als", "bpr", "ease"]


def write_log(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """The synthetic log as ``interactions.csv`` (user, item) and ``items.csv`` (item, genres); reused when
    already written (the generator is seeded, so the files are the same)."""
    folder.mkdir(parents=True, exist_ok=True)
    log, items = folder / "interactions.csv", folder / "items.csv"
    if not (log.is_file() and items.is_file()):
        data = dataset(seed)
        users = data.users.ids[data.row_codes()]
        pd.DataFrame({"user": users, "item": data.items.ids[data.matrix.indices]}).to_csv(log, index=False)
        data.item_attributes.rename_axis("item").reset_index().to_csv(items, index=False)
    return log, items


def main(argv: list[str] | None = None) -> ComparisonResult:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samplers", nargs="+", default=SAMPLERS)
    p.add_argument("--baselines", nargs="+", default=BASELINES)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "contrec-synthetic-575k"),
                   help="where the log's two CSV files are written (and found again)")
    p.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                   help="contrec's score matmuls (bfloat16: ~1.4x faster fits on a CPU with AVX512-BF16)")
    p.add_argument("--out", help="report folder (default: benchmarks/results/compare-synthetic, "
                                 "with -bf16 appended for bfloat16)")
    args = p.parse_args(argv)
    out = args.out or str(RESULTS / ("compare-synthetic" + ("-bf16" if args.precision == "bfloat16" else "")))
    log, items = write_log(Path(args.data_dir))
    t0 = time.perf_counter()
    result = contrec.compare(data={"path": str(log), "user": "user", "item": "item",
                                   "item_attributes": str(items), "item_attributes_id": "item"},
                             samplers=args.samplers, baselines=args.baselines, seeds=args.seeds,
                             threads=args.threads, workers=args.workers, precision=args.precision, out=out,
                             command="python benchmarks/compare_synthetic.py " + " ".join(argv or sys.argv[1:]))
    print(f"compare-synthetic: {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    return result


if __name__ == "__main__":
    main()
