"""Reading interaction logs: `contrec.read_interactions` against a bare `pandas.read_csv` of the same file.

A synthetic log per size (string user ids, integer item ids with a power-law popularity, a 1–5
rating, a Unix timestamp; about a third of the rows repeat a (user, item) pair, as real logs
do) is written as CSV, and as gzipped CSV, to a temporary folder. Timed, best of ``--repeats``:

- ``pandas.read_csv`` of the plain file with its own type inference: the floor, a parse with
  no validation, ids not kept as text (``"007"`` would become 7);
- ``read_interactions`` with ratings ≥ 4 as positives and timestamps (duplicates: the latest
  row of each pair, by time);
- the same with the ratings as weights and ``duplicates="sum"``;
- the same as the first, from the gzipped file.

    python benchmarks/reading.py --rows 1000000 5000000
"""

from __future__ import annotations

import gzip
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import environment, pin_threads, publish  # noqa: E402
from _common import parser as common_parser  # noqa: E402

import contrec  # noqa: E402


def synthetic_log(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, max(rows // 25, 1), rows)
    items = (rng.zipf(1.3, rows) - 1) % max(rows // 100, 10)
    return pd.DataFrame({"user": np.char.add("u", users.astype(str)), "item": items, "rating": rng.integers(1, 6, rows),
                         "timestamp": rng.integers(900_000_000, 1_600_000_000, rows)})


def best_of(repeats: int, call: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return min(times), result


def measure(rows: int, folder: Path, repeats: int) -> list[dict[str, Any]]:
    plain, packed = folder / f"log-{rows}.csv", folder / f"log-{rows}.csv.gz"
    synthetic_log(rows).to_csv(plain, index=False)
    packed.write_bytes(gzip.compress(plain.read_bytes(), compresslevel=1))
    cases: dict[str, Callable[[], Any]] = {
        "pandas.read_csv (floor: no validation, ids retyped)": lambda: pd.read_csv(plain),
        "read_interactions: rating ≥ 4, timestamps, latest duplicate": lambda: contrec.read_interactions(
            plain, rating="rating", min_rating=4, timestamp="timestamp"),
        "read_interactions: ratings as weights, duplicates summed": lambda: contrec.read_interactions(
            plain, weight="rating", timestamp="timestamp", duplicates="sum"),
        "read_interactions: rating ≥ 4, timestamps, from .csv.gz": lambda: contrec.read_interactions(
            packed, rating="rating", min_rating=4, timestamp="timestamp"),
    }
    out = []
    with warnings.catch_warnings():  # the duplicate counts are the point of the log, not news
        warnings.simplefilter("ignore", contrec.DuplicateRowsWarning)
        for name, call in cases.items():
            seconds, result = best_of(repeats, call)
            kept = len(result) if isinstance(result, contrec.Interactions) else None
            out.append({"rows": rows, "case": name, "seconds": seconds, "rows_per_s": rows / seconds,
                        "positives": kept, "file_mb": plain.stat().st_size / 2**20})
            print(f"{rows:,} rows, {name}: {seconds:.2f} s", flush=True)
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [f"### Reading interaction logs (best of {result['repeats']}; {result['threads']} threads)", "",
             "| rows | CSV MiB | case | s | rows / s | × pandas.read_csv | positives |",
             "|---:|---:|---|---:|---:|---:|---:|"]
    for r in result["rows"]:
        floor = next(x["seconds"] for x in result["rows"] if x["rows"] == r["rows"] and x["positives"] is None)
        kept = f"{r['positives']:,}" if r["positives"] is not None else "–"
        lines.append(f"| {r['rows']:,} | {r['file_mb']:.0f} | {r['case']} | {r['seconds']:.2f} | "
                     f"{r['rows_per_s']:,.0f} | {r['seconds'] / floor:.1f} | {kept} |")
    lines += ["", "Versions: " + str(result["versions"]) + f", pandas {pd.__version__}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common_parser(__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    pin_threads(args.threads)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.rows:
            rows += measure(n, Path(tmp), args.repeats)
    result = {"rows": rows, "repeats": args.repeats, **environment(args.threads)}
    return publish("reading", result, markdown(result), Path(args.out))


if __name__ == "__main__":
    main()
