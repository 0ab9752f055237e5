"""Data-parallel training (torchrun, gloo, DDP) against one process: quality and throughput.

Every contestant trains the same model for the same number of epochs on the protocol split
(80/20 per user, seed 0) with the same *global* batch and candidate list: one process with
batch 1,024 and 1,024 sampled negatives, or W processes with 1,024 / W rows and 1,024 / W
draws each — every rank's softmax sees all 1,024 in-batch positives and all 1,024 draws.
Contestants:

- one process with all the threads (what contrec does by default),
- one process with one thread (the per-core baseline),
- W processes (``torchrun --standalone --nproc-per-node W``) sharing the threads,
- implicit ALS (the comparison's tuned settings) with all the threads, for scale.

Reported: NDCG@20 / Recall@20 on the test part (mean ± std over seeds), seconds per epoch,
interactions per second, and fit seconds (process start and data loading excluded).

    CONTREC_DATA=../shared/datasets python benchmarks/distributed.py --seeds 0 1 2
    python benchmarks/distributed.py --synthetic 1000000 --epochs 1 --seeds 0 --optimizers adam sparse-adam
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import environment, mean_std, pin_threads, write  # noqa: E402
from _common import parser as common_parser  # noqa: E402
from ddp_fit import split  # noqa: E402

WORKER = Path(__file__).with_name("ddp_fit.py")


def contrec_run(dataset: str, seed: int, processes: int, threads: int, epochs: int, extra: list[str]
                ) -> dict[str, Any]:
    launcher = [sys.executable] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run([*launcher, str(WORKER), "--out", out, "--dataset", dataset, "--seed", str(seed),
                        "--epochs", str(epochs), "--threads", str(threads), *extra], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        return json.loads(Path(out, "result.json").read_text())


def als_run(dataset: str, seed: int, threads: int, synthetic: int | None) -> dict[str, Any]:
    import contrec
    from contrec.models.baselines import make_baseline
    from contrec.experiments.config import BASELINE_DEFAULTS

    pin_threads(threads)
    train, test = split(dataset, synthetic)
    t0 = time.perf_counter()
    model = make_baseline("als", **BASELINE_DEFAULTS["als"], seed=seed, threads=threads).fit(train)
    seconds = time.perf_counter() - t0
    table = contrec.evaluate(model, train, test, k=20)
    return {"fit_seconds": seconds, "metrics": {m: float(v) for m, k, v in table.itertuples(index=False)}}


def main() -> int:
    p = common_parser(__doc__)
    p.add_argument("--processes", type=int, nargs="+", default=[2])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--synthetic", type=int, help="train on a seeded power-law log of this many interactions "
                                                  "(e.g. 1000000) instead of --dataset")
    p.add_argument("--optimizers", nargs="+", default=["adam"], choices=["adam", "sparse-adam"])
    args = p.parse_args()
    T = args.threads
    contestants: dict[str, tuple[int, int, str]] = {}
    for opt in args.optimizers:
        tag = "" if args.optimizers == ["adam"] else f", {opt}"
        contestants[f"contrec, 1 process × {T} threads{tag}"] = (1, T, opt)
        contestants[f"contrec, 1 process × 1 thread{tag}"] = (1, 1, opt)
        for w in args.processes:
            per = max(1, T // w)
            contestants[f"contrec, {w} processes × {per} thread{'s' * (per > 1)} (DDP){tag}"] = (w, per, opt)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in [*contestants, f"implicit ALS, {T} threads"]}
    data_flags = ["--synthetic", str(args.synthetic)] if args.synthetic else []
    for seed in args.seeds:
        for name, (w, threads, opt) in contestants.items():
            runs[name].append(contrec_run(args.dataset, seed, w, threads, args.epochs,
                                          [*data_flags, "--optimizer", opt]))
            r = runs[name][-1]
            print(f"seed {seed} {name}: NDCG@20 {r['metrics']['ndcg']:.4f}, {np.mean(r['epoch_seconds']):.2f} s/epoch",
                  flush=True)
        runs[f"implicit ALS, {T} threads"].append(als_run(args.dataset, seed, T, args.synthetic))
    rows = []
    one = float(np.mean([np.mean(r["epoch_seconds"]) for r in runs[next(iter(contestants))]]))
    for name, rs in runs.items():
        epoch = [float(np.mean(r["epoch_seconds"])) for r in rs if "epoch_seconds" in r]
        rows.append({
            "contestant": name, "ndcg@20": [r["metrics"]["ndcg"] for r in rs],
            "recall@20": [r["metrics"]["recall"] for r in rs], "fit_seconds": [r["fit_seconds"] for r in rs],
            "epoch_seconds": epoch, "epochs": args.epochs if epoch else None,
            "interactions_per_s": [float(np.mean(r["interactions_per_s"])) for r in rs if "interactions_per_s" in r],
            "epoch_time_vs_one_process": float(np.mean(epoch)) / one if epoch else None,
        })
    name = f"synthetic-{args.synthetic:,}".replace(",", "_") if args.synthetic else args.dataset
    lines = [f"# Distributed training on {name} ({args.epochs} epoch{'s' * (args.epochs > 1)}, seeds {args.seeds}, "
             f"{os.cpu_count()} cores)", "",
             "Same global batch (1,024) and candidate list (1,024 in-batch + 1,024 sampled) for every contrec row.", "",
             "| contestant | NDCG@20 | Recall@20 | s / epoch | × one process | interactions / s | fit s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        epoch = f"{np.mean(r['epoch_seconds']):.2f}" if r["epoch_seconds"] else "–"
        ratio = f"{r['epoch_time_vs_one_process']:.2f}" if r["epoch_time_vs_one_process"] else "–"
        ips = f"{np.mean(r['interactions_per_s']):,.0f}" if r["interactions_per_s"] else "–"
        lines.append(f"| {r['contestant']} | {mean_std(r['ndcg@20'])} | {mean_std(r['recall@20'])} | {epoch} | "
                     f"{ratio} | {ips} | {np.mean(r['fit_seconds']):.1f} |")
    write(f"distributed_{name}", {"environment": environment(T), "epochs": args.epochs, "seeds": args.seeds,
                                         "rows": rows}, "\n".join(lines) + "\n", Path(args.out))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
