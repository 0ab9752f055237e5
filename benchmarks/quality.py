"""Quality benchmark: contrec's defaults and its best tuned setting vs tuned implicit ALS and tuned EASE.

Protocol (contrec.evaluation.protocol): MovieLens ratings ≥ 4 are positives, users with ≥ 5 positives,
per-user random 80/20 split, full ranking over the catalogue excluding train items, k = 20,
one row per split seed. Every contestant sees the same splits in the same run.

* contrec (defaults): ``ContrastiveRecommender(seed=seed)`` — nothing tuned here; the default fit
  early-stops on its own 10 % carve of the training split and then trains on all of it. The defaults
  themselves were chosen on validation carves of ml-100k and ml-latest-small seed-0 training splits
  (docs/encoders.md), never on a test split.
* ALS, EASE and contrec (tuned): each tuned on a validation split carved from the training split
  (10 % of each user's train positives, seed + 1000) over the grids below, then refitted on the whole
  training split with the chosen setting.
* popularity: most-interacted items.

``--dataset play-log`` runs the same protocol on a log that is not MovieLens: the README walk-through's
synthetic play-count log (`contrec.data.synthetic_play_log`, seed 3; 1,892 users × ~16k artists, every
row a positive, the counts ignored), which no default was chosen on.

Writes ``benchmarks/results/quality_<dataset>.json``, ``.md`` and ``.png``.

    CONTREC_DATA=../shared/datasets python benchmarks/quality.py --dataset ml-100k --seeds 0 1 2
    CONTREC_DATA=../shared/datasets python benchmarks/quality.py --dataset ml-latest-small --seeds 0 1 2
    python benchmarks/quality.py --dataset play-log --seeds 0 1 2
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
    "factors": [64, 128, 256],
    "regularization": [1.0, 10.0, 30.0, 100.0, 300.0],  # chosen values sit inside (30 on both datasets)
    "alpha": [1.0, 5.0, 20.0],
    "iterations": [30],  # 30 beat 15 on 5 of 6 seed carves of a wider grid (both datasets)
}
EASE_GRID = {"l2": [10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0]}
# contrec's tuned contestant: a few settings around the defaults (each still early-stops on its own carve)
CONTREC_GRID = {"dim": [128, 256], "user_tower,item_tower": [("id", "id"), ("graph", "graph")]}
K = EvaluationProtocol().headline_k


def split(dataset: str, seed: int):
    """(train, test) of one split seed: MovieLens through its loader, the play-count log built here."""
    if dataset != "play-log":
        return protocol_split(dataset, seed)
    from contrec.data.synthetic import synthetic_play_log

    frame = synthetic_play_log(seed=3).rename(columns={"userID": "user", "artistID": "item"})
    data = contrec.Interactions.from_frame(frame[["user", "item"]].astype(str))
    protocol = EvaluationProtocol()
    return protocol.split_data(protocol.eligible(data, dataset), seed)


def ndcg(model, train, test) -> dict[str, float]:
    table = contrec.evaluate(model, train, test, k=K)
    values = dict(zip(table["metric"], table["value"]))
    return {f"{m}@{K}": values[m] for m in ("ndcg", "recall", "map", "mrr", "hit_rate", "coverage",
                                            "mean_popularity")}


def settings(grid: dict[str, list]) -> list[dict]:
    """Every combination of a grid; a key "a,b" with tuple values sets several parameters together."""
    out = []
    for values in itertools.product(*grid.values()):
        combo: dict = {}
        for key, value in zip(grid, values):
            combo.update(zip(key.split(","), value) if "," in key else {key: value})
        out.append(combo)
    return out


def tune(make, grid: dict[str, list], train, seed: int) -> tuple[dict, float, float]:
    """The grid setting with the best NDCG@K on a 10 % per-user carve of ``train`` (never the test split)."""
    fit_part, valid = contrec.split_random(train, test_size=0.1, seed=seed + 1000)
    best, best_score, started = None, -1.0, time.perf_counter()
    for params in settings(grid):
        score = ndcg(make(params).fit(fit_part), fit_part, valid)[f"ndcg@{K}"]
        if score > best_score:
            best, best_score = params, score
    return best, best_score, time.perf_counter() - started


def _row(seed: int, name: str, model, train, test, params: dict, **extra) -> dict:
    t0 = time.perf_counter()
    model.fit(train)
    row = {"seed": seed, "model": name, "fit_s": time.perf_counter() - t0, "params": params, **extra,
           **ndcg(model, train, test)}
    print(f"  {name:<22} NDCG@{K} {row[f'ndcg@{K}']:.4f}  Recall@{K} {row[f'recall@{K}']:.4f}  "
          f"fit {row['fit_s']:.1f}s", flush=True)
    return row


def run(dataset: str, seeds: list[int], threads: int) -> dict:
    pin_threads(threads)
    rows = []

    def als(params):
        return contrec.ImplicitALS(**params, seed=seed, threads=threads)

    def ease(params):
        return contrec.EASE(**params)

    def contrastive(params):
        return contrec.ContrastiveRecommender(**params, seed=seed, threads=threads, verbose=False)

    for seed in seeds:
        train, test = split(dataset, seed)
        print(f"[seed {seed}] {train!r}; test {len(test)} positives", flush=True)
        model = contrastive({})
        rows.append(_row(seed, "contrec (defaults)", model, train, test, {}))
        rows[-1]["best_epoch"], rows[-1]["user_tower"] = model.best_epoch_, model.user_tower_
        for name, make, grid in (("contrec (tuned)", contrastive, CONTREC_GRID),
                                 ("implicit ALS (tuned)", als, ALS_GRID), ("EASE (tuned)", ease, EASE_GRID)):
            params, val_score, tune_s = tune(make, grid, train, seed)
            rows.append(_row(seed, name, make(params), train, test, params, tune_s=tune_s,
                             validation_ndcg=val_score))
        rows.append(_row(seed, "popularity", contrec.PopularityRecommender(), train, test, {}))
    return {"benchmark": "quality", "dataset": dataset, "seeds": seeds, "k": K,
            "protocol": dataclasses.asdict(EvaluationProtocol()),
            "grids": {"contrec": CONTREC_GRID, "als": ALS_GRID, "ease": EASE_GRID}, **environment(threads),
            "rows": rows}


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
    for name, key in (("contrec (tuned)", "contrec"), ("implicit ALS (tuned)", "als"), ("EASE (tuned)", "ease")):
        chosen = [r["params"] for r in result["rows"] if r["model"] == name]
        lines += ["", f"{name}: grid {_plain(result['grids'][key])}; chosen per seed: {chosen}."]
    epochs = [r.get("best_epoch") for r in result["rows"] if r["model"] == "contrec (defaults)"]
    towers = [r.get("user_tower", "id") for r in result["rows"] if r["model"] == "contrec (defaults)"]
    lines += ["", f"contrec (defaults): epochs chosen on its own 10 % carve, per seed: {epochs}; "
              f"user tower chosen there (user_tower='auto'): {towers}.",
              f"Threads: {result['threads']}. Versions: {result['versions']}."]
    return "\n".join(lines) + "\n"


def _plain(grid: dict) -> str:
    return "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in grid.items())


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
