"""A default fit on ml-100k with the machine to itself and beside one busy process, by thread policy.

Each fit runs `contrec fit` in its own process (the README's protocol data, default
settings); the busy neighbour is a second Python process spinning on one core. Rows:
threads 1, 2 and the default (the free CPUs, `contrec.runtime.threads.default_threads`).

    CONTREC_DATA=../shared/datasets python benchmarks/threads_under_load.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS  # noqa: E402

_SPIN = "import time\nend = time.time() + 600\nwhile time.time() < end: pass\n"


def fit_seconds(train_csv: Path, threads: int | None, out: Path) -> float:
    command = [sys.executable, "-m", "contrec", "fit", str(train_csv), "-o", str(out), "-q"]
    if threads is not None:
        command += ["--threads", str(threads)]
    t0 = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - t0


def main() -> None:
    from contrec.evaluation.protocol import protocol_split

    data_dir = os.environ.get("CONTREC_DATA")
    train, _ = protocol_split("ml-100k", 0, data_dir)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "train.csv"
        train.to_frame()[["user", "item"]].to_csv(csv, index=False)
        for load in (False, True):
            spinner = subprocess.Popen([sys.executable, "-c", _SPIN]) if load else None
            try:
                time.sleep(1.0 if load else 0.0)
                for threads in (2, 1, None):
                    seconds = fit_seconds(csv, threads, Path(tmp) / "m.contrec")
                    rows.append({"busy_neighbour": load, "threads": "default" if threads is None else threads,
                                 "fit_seconds": round(seconds, 1)})
                    print(rows[-1], flush=True)
            finally:
                if spinner is not None:
                    spinner.kill()
    alone = {r["threads"]: r["fit_seconds"] for r in rows if not r["busy_neighbour"]}
    lines = ["| threads | machine to itself, s | one busy process beside it, s | slowdown |", "|---|---:|---:|---:|"]
    for r in (r for r in rows if r["busy_neighbour"]):
        base = alone[r["threads"]]
        lines.append(f"| {r['threads']} | {base} | {r['fit_seconds']} | {r['fit_seconds'] / base:.1f}× |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "threads_under_load.json").write_text(json.dumps({"cpu_count": os.cpu_count(), "rows": rows}, indent=2))
    (RESULTS / "threads_under_load.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
