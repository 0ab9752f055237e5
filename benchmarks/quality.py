"""Quality benchmark: contrec defaults vs tuned implicit ALS vs popularity, same splits, same run.

Protocol (contrec.evaluation.protocol): MovieLens ratings ≥ 4 are positives, users with ≥ 5 positives,
per-user random 80/20 split, full ranking over the catalogue excluding train items, k = 20,
one row per split seed.

* contrec: ``ContrastiveRecommender(seed=seed)`` — defaults, no tuning, no validation.
* ALS: implicit's AlternatingLeastSquares tuned on a validation split carved from train
  (10 % of each user's train positives, seed + 1000) over the grid below, then refitted on
  the whole train split with the chosen setting.
* popularity: most-interacted items.

Writes ``benchmarks/results/quality_<dataset>.json`` and ``.md``.

    CONTREC_DATA=../shared/datasets python benchmarks/quality.py --dataset ml-100k --seeds 0 1 2
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import environment, mean_std, pin_threads, pyplot, save_figure, publish  # noqa: E402
from _common import parser as common_parser  # noqa: E402

import contrec  # noqa: E402
from contrec.evaluation.protocol import EvaluationProtocol, protocol_split  # noqa: E402

ALS_GRID = {
    "factors": [32, 64, 128, 256],
    "regularization": [0.01, 0.1, 1.0, 10.0, 30.0, 100.0],  # as wide as compare's ALS space (to 100)
    "alpha": [1.0, 5.0, 20.0, 50.0],
    "iterations": [15, 30],
}
K = EvaluationProtocol().headline_k


def ndcg(model, train, test) -> dict[str, float]:
    table = contrec.evaluate(model, train, test, k=K)
    values = dict(zip(table["metric"], table["value"]))
    return {f"{m}@{K}": values[m] for m in ("ndcg", "recall", "map", "mrr", "hit_rate", "coverage",
                                            "mean_popularity")}


def tune_als(train, seed: int, threads: int) -> tuple[dict, float, float]:
    fit_part, valid = contrec.split_random(train, test_size=0.1, seed=seed + 1000)
    best, best_score, started = None, -1.0, time.perf_counter()
    for values in itertools.product(*ALS_GRID.values()):
        params = dict(zip(ALS_GRID, values))
        model = contrec.ImplicitALS(**params, seed=seed, threads=threads).fit(fit_part)
        score = ndcg(model, fit_part, valid)[f"ndcg@{K}"]
        if score > best_score:
            best, best_score = params, score
    return best, best_score, time.perf_counter() - started


def run(dataset: str, seeds: list[int], threads: int) -> dict:
    pin_threads(threads)
    rows = []
    for seed in seeds:
        train, test = protocol_split(dataset, seed)
        print(f"[seed {seed}] {train!r}; test {len(test)} positives", flush=True)

        t0 = time.perf_counter()
        model = contrec.ContrastiveRecommender(seed=seed, threads=threads, verbose=False).fit(train)
        rows.append({"seed": seed, "model": "contrec (defaults)", "fit_s": time.perf_counter() - t0,
                     "params": {k: v for k, v in model.get_params().items() if k not in ("verbose", "threads")},
                     **ndcg(model, train, test)})

        params, val_score, tune_s = tune_als(train, seed, threads)
        t0 = time.perf_counter()
        als = contrec.ImplicitALS(**params, seed=seed, threads=threads).fit(train)
        rows.append({"seed": seed, "model": "implicit ALS (tuned)", "fit_s": time.perf_counter() - t0,
                     "tune_s": tune_s, "validation_ndcg": val_score, "params": params, **ndcg(als, train, test)})

        t0 = time.perf_counter()
        pop = contrec.PopularityRecommender().fit(train)
        rows.append({"seed": seed, "model": "popularity", "fit_s": time.perf_counter() - t0, "params": {},
                     **ndcg(pop, train, test)})
        for r in rows[-3:]:
            print(f"  {r['model']:<22} NDCG@{K} {r[f'ndcg@{K}']:.4f}  Recall@{K} {r[f'recall@{K}']:.4f}  "
                  f"fit {r['fit_s']:.1f}s", flush=True)
    return {"benchmark": "quality", "dataset": dataset, "seeds": seeds, "k": K, "protocol": dataclasses.asdict(EvaluationProtocol()),
            "als_grid": ALS_GRID, **environment(threads), "rows": rows}


def markdown(result: dict) -> str:
    metrics = [f"ndcg@{K}", f"recall@{K}", f"map@{K}", f"mrr@{K}", f"coverage@{K}", f"mean_popularity@{K}"]
    models = list(dict.fromkeys(r["model"] for r in result["rows"]))
    lines = [f"### Quality on {result['dataset']} (seeds {', '.join(map(str, result['seeds']))}; "
             f"mean ± std over seeds)", "",
             "| model | " + " | ".join(m.replace("_", " ") for m in metrics) + " | fit s |",
             "|---|" + "---:|" * (len(metrics) + 1)]
    for name in models:
        rs = [r for r in result["rows"] if r["model"] == name]
        cells = [mean_std([r[m] for r in rs]) for m in metrics] + [f"{np.mean([r['fit_s'] for r in rs]):.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    chosen = [r["params"] for r in result["rows"] if r["model"] == "implicit ALS (tuned)"]
    lines += ["", f"ALS grid: {result['als_grid']}; chosen per seed: {chosen}.",
              f"Threads: {result['threads']}. Versions: {result['versions']}."]
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    """Bar chart of NDCG@k and Recall@k per model, mean with min–max over seeds."""
    plt = pyplot()
    models = list(dict.fromkeys(r["model"] for r in result["rows"]))
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=120)
    width = 0.38
    for j, metric in enumerate([f"ndcg@{K}", f"recall@{K}"]):
        values = [np.array([r[metric] for r in result["rows"] if r["model"] == m]) for m in models]
        means = np.array([v.mean() for v in values])
        err = np.array([[v.mean() - v.min() for v in values], [v.max() - v.mean() for v in values]])
        x = np.arange(len(models)) + (j - 0.5) * width
        label = {"ndcg": "NDCG", "recall": "Recall"}[metric.split("@")[0]] + f"@{K}"
        bars = ax.bar(x, means, width, yerr=err, capsize=3, label=label)
        ax.bar_label(bars, labels=[f"{m:.3f}" for m in means], fontsize=7, padding=2)
    ax.set_xticks(np.arange(len(models)), models, fontsize=8)
    ax.set_ylabel("full-ranking metric")
    ax.set_title(f"{result['dataset']}: {len(result['seeds'])} split seeds (bars: mean, whiskers: min–max)",
                 fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_ylim(0, max(0.5, ax.get_ylim()[1]))
    save_figure(fig, path)


def main() -> None:
    parser = common_parser(__doc__)
    args = parser.parse_args()
    result = run(args.dataset, args.seeds, args.threads)
    publish(f"quality_{args.dataset}", result, markdown(result), Path(args.out), plot)


if __name__ == "__main__":
    main()
