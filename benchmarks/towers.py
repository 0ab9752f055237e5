"""Towers side by side: ID, history, SimpleX and graph (LightGCN) — quality and cost per epoch.

Two settings:

* MovieLens (``--dataset``): the standard protocol (contrec.evaluation.protocol), each tower with
  every other setting at its default (the default fit: early stopping on its own 10 % carve, then
  all positives), 3 seeds. Reported: NDCG@20, its ratio to the ID tower's on the same seeds, the
  final fit's seconds per epoch, the whole fit's seconds.
* A dense synthetic log with heavy users (``--synthetic N``): N interactions, 6,040 users and
  3,706 items (MovieLens-1M's shape) with a steep user-activity power law, so a few users have
  thousands of positives; a per-user random 80/20 split; each tower trains ``--epochs`` epochs
  (no carve) — the cost per epoch, and the quality those epochs reach.

    CONTREC_DATA=../shared/datasets python benchmarks/towers.py --dataset ml-100k --seeds 0 1 2
    CONTREC_DATA=../shared/datasets python benchmarks/towers.py --dataset ml-latest-small --seeds 0 1 2
    python benchmarks/towers.py --synthetic 1000000 --epochs 2 --seeds 0
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import environment, mean_std, pin_threads, publish  # noqa: E402
from _common import parser as common_parser  # noqa: E402

import contrec  # noqa: E402
from contrec.data.synthetic import synthetic_interactions  # noqa: E402
from contrec.evaluation.protocol import EvaluationProtocol, protocol_split  # noqa: E402
from contrec.nn.encoders import ENCODER_PRESETS  # noqa: E402

K = EvaluationProtocol().headline_k
TOWERS = ["id", "history", "simplex", "graph"]


def synthetic_split(n: int, seed: int) -> tuple[contrec.Interactions, contrec.Interactions]:
    data = synthetic_interactions(6040, 3706, n, user_exponent=1.0, seed=seed)
    return contrec.split_random(data, test_size=0.2, seed=seed)


def run(tower: str, train: contrec.Interactions, test: contrec.Interactions, seed: int, threads: int,
        epochs: int | None) -> dict[str, Any]:
    fixed = {} if epochs is None else {"epochs": epochs, "validation_size": 0}
    t0 = time.perf_counter()
    model = contrec.ContrastiveRecommender(**ENCODER_PRESETS[tower], seed=seed, threads=threads, verbose=False,
                                           **fixed).fit(train)
    fit_s = time.perf_counter() - t0
    values = dict(zip(*contrec.evaluate(model, train, test, k=K)[["metric", "value"]].to_numpy().T))
    return {"seed": seed, "tower": tower, f"ndcg@{K}": float(values["ndcg"]), f"recall@{K}": float(values["recall"]),
            "fit_s": fit_s, "epoch_s": float(np.mean([r["seconds"] for r in model.history_])),
            "epochs": len(model.history_)}


def markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    base = {r["seed"]: r[f"ndcg@{K}"] for r in rows if r["tower"] == "id"}
    base_epoch = np.mean([r["epoch_s"] for r in rows if r["tower"] == "id"])
    how = (f"{result['epochs']} epochs each, no carve" if result["epochs"] else
           "the default fit (early stopping on a 10 % carve, then all positives)")
    lines = [f"### Towers on {result['dataset']} (seeds {', '.join(map(str, result['seeds']))}; {how})", "",
             f"| tower | NDCG@{K} | × ID | Recall@{K} | s / epoch | × ID epoch | fit s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for tower in dict.fromkeys(r["tower"] for r in rows):
        rs = [r for r in rows if r["tower"] == tower]
        ratio = np.mean([r[f"ndcg@{K}"] / base[r["seed"]] for r in rs])
        epoch = np.mean([r["epoch_s"] for r in rs])
        lines.append(f"| {tower} | {mean_std([r[f'ndcg@{K}'] for r in rs])} | {ratio:.3f} | "
                     f"{mean_std([r[f'recall@{K}'] for r in rs])} | {epoch:.2f} | {epoch / base_epoch:.2f} | "
                     f"{np.mean([r['fit_s'] for r in rs]):.1f} |")
    lines += ["", f"Threads: {result['threads']}. Tower presets: "
              + "; ".join(f"{t}: {ENCODER_PRESETS[t]}" for t in dict.fromkeys(r['tower'] for r in rows)) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common_parser(__doc__)
    parser.add_argument("--towers", nargs="+", default=TOWERS)
    parser.add_argument("--synthetic", type=int, default=0, help="interactions of a synthetic heavy-user log")
    parser.add_argument("--epochs", type=int, default=None, help="fixed epochs, no carve (default: the default fit)")
    args = parser.parse_args(argv)
    pin_threads(args.threads)
    name = f"synthetic-{args.synthetic:_}" if args.synthetic else args.dataset
    rows = []
    for seed in args.seeds:
        train, test = synthetic_split(args.synthetic, seed) if args.synthetic else protocol_split(args.dataset, seed)
        heaviest = int(np.diff(train.matrix.indptr).max())
        print(f"[seed {seed}] {train!r}; heaviest user {heaviest} positives", flush=True)
        for tower in args.towers:
            rows.append(run(tower, train, test, seed, args.threads, args.epochs))
            r = rows[-1]
            print(f"  {tower:<8} NDCG@{K} {r[f'ndcg@{K}']:.4f}  {r['epoch_s']:.2f}s/epoch  fit {r['fit_s']:.0f}s",
                  flush=True)
    result = {"dataset": name, "seeds": args.seeds, "epochs": args.epochs, "rows": rows,
              **environment(args.threads)}
    return publish(f"towers_{name}", result, markdown(result), Path(args.out))


if __name__ == "__main__":
    main()
