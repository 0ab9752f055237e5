"""Negative samplers compared on one budget: quality, false negatives, popularity bias, cost.

Protocol (contrec.evaluation.protocol): MovieLens ratings ≥ 4 are positives, users with ≥ 5 positives,
per-user random 80/20 split per seed, full ranking excluding train items, k = 20.

Every row trains ``ContrastiveRecommender`` with the default settings (dim 128, cosine,
τ 0.2, 1,024 sampled negatives per batch of 1,024 plus in-batch, logQ on, lr 0.01, epochs
chosen by early stopping on its own 10 % carve, then a refit on every positive) and changes
only the sampler (and, in the last row, logQ). Recorded per seed:
NDCG@20, Recall@20, mean popularity and coverage of the top 20, the false-negative rate
(share of sampled negatives that are known positives of the row's user), the fit time,
the share of training time spent in the sampler, and for hard samplers the cost of
each refresh.

    CONTREC_DATA=../shared/datasets python benchmarks/samplers.py --seeds 0 1 2
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import environment, mean_std, pin_threads, pyplot, save_figure, publish  # noqa: E402
from _common import parser as common_parser  # noqa: E402

import contrec  # noqa: E402
from contrec.evaluation.protocol import EvaluationProtocol, protocol_split  # noqa: E402
from contrec.experiments.config import SAMPLER_DEFAULTS  # noqa: E402

K = EvaluationProtocol().headline_k
HARD = SAMPLER_DEFAULTS["hard"]  # top-100, ε 0.5, refreshed every 200 steps: what compare uses
SAMPLERS = {
    "uniform": {"sampler": "uniform"},
    "popularity α=0.75": {"sampler": "popularity", "sampler_params": {"alpha": 0.75}},
    "hard (top-100, ε=0.5)": {"sampler": "hard", "sampler_params": HARD},
    "hard (top-100, ε=0.5), per row": {"sampler": "hard", "sampler_params": {**HARD, "shared": False}},
    "dynamic-hard (pool 2048)": {"sampler": "dynamic-hard", "sampler_params": {"pool_size": 2048}},
    "domain-rule disjoint(genres)": {"sampler": "domain-rule", "sampler_params": {"rule": "disjoint(genres)"}},
    "domain-rule disjoint(genres), per-row": {"sampler": "domain-rule",
                                              "sampler_params": {"rule": "disjoint(genres)", "draw": "per-row"}},
    "domain-rule disjoint(genres), mask in-batch": {
        "sampler": "domain-rule", "sampler_params": {"rule": "disjoint(genres)", "mask_in_batch": True}},
    "mixed (50% pop, 30% unif, 20% hard)": {
        "sampler": "mixed",
        "sampler_params": {"components": [{"name": "popularity", "weight": 0.5},
                                          {"name": "uniform", "weight": 0.3},
                                          {"name": "hard", "weight": 0.2, "top_m": 100, "refresh_every": 200}]}},
    "uniform, logQ off": {"sampler": "uniform", "logq": False},
}


def run_one(name: str, settings: dict, train, test, seed: int, threads: int) -> dict:
    model = contrec.ContrastiveRecommender(seed=seed, threads=threads, verbose=False, **settings)
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0
    table = contrec.evaluate(model, train, test, k=K)
    values = dict(zip(table["metric"], table["value"]))
    h = model.history_
    seconds = sum(r["seconds"] for r in h)
    refreshes = sum(r["refreshes"] for r in h)
    n_steps = len(h) * int(np.ceil(len(train) / model.batch_size))
    return {
        "seed": seed, "sampler": name, "settings": settings, "fit_s": fit_s,
        f"ndcg@{K}": values["ndcg"], f"recall@{K}": values["recall"],
        f"mean_popularity@{K}": values["mean_popularity"], f"coverage@{K}": values["coverage"],
        "false_negative_rate": float(np.mean([r["false_negative_rate"] for r in h])),
        "masked_share": float(np.mean([r["masked_share"] for r in h])),
        "sampler_share": sum(r["sampler_seconds"] for r in h) / seconds,
        "step_ms": 1000 * seconds / n_steps,
        "refreshes": refreshes,
        "refresh_s_each": (sum(r["refresh_seconds"] for r in h) / refreshes) if refreshes else None,
        "refresh_share": sum(r["refresh_seconds"] for r in h) / seconds,
        "sampler_stats": {k: float(v) for k, v in getattr(model.sampler_, "stats_", {}).items()},
    }


def markdown(result: dict) -> str:
    rows = result["rows"]
    names = list(dict.fromkeys(r["sampler"] for r in rows))
    lines = [f"### Negative samplers on {result['dataset']} (seeds {', '.join(map(str, result['seeds']))}; "
             "mean ± std over seeds; same budget for all)", "",
             f"| sampler | NDCG@{K} | Recall@{K} | false-neg. rate | mean pop.@{K} | coverage@{K} | fit s | "
             "ms/step | sampler share | refresh s (share) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in names:
        rs = [r for r in rows if r["sampler"] == name]
        refresh = rs[0]["refresh_s_each"]
        refresh_cell = (f"{np.mean([r['refresh_s_each'] for r in rs]):.3f} "
                        f"({100 * np.mean([r['refresh_share'] for r in rs]):.1f} %)") if refresh else "–"
        lines.append(
            f"| {name} | {mean_std([r[f'ndcg@{K}'] for r in rs])} | {mean_std([r[f'recall@{K}'] for r in rs])} | "
            f"{np.mean([r['false_negative_rate'] for r in rs]):.4f} | "
            f"{np.mean([r[f'mean_popularity@{K}'] for r in rs]):.4f} | {np.mean([r[f'coverage@{K}'] for r in rs]):.3f} | "
            f"{np.mean([r['fit_s'] for r in rs]):.1f} | {np.mean([r['step_ms'] for r in rs]):.1f} | "
            f"{100 * np.mean([r['sampler_share'] for r in rs]):.1f} % | {refresh_cell} |")
    lines += ["", f"Threads: {result['threads']}. Versions: {result['versions']}.",
              "Sampler share: time in `sample` + `log_prob` over training time. Refresh: FAISS top-M for every "
              "user, seconds per refresh and share of training time."]
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    plt = pyplot()
    rows = result["rows"]
    names = list(dict.fromkeys(r["sampler"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=120)
    for ax, metric, label in [(axes[0], f"ndcg@{K}", f"NDCG@{K}"), (axes[1], "false_negative_rate",
                                                                     "false-negative rate")]:
        values = [np.array([r[metric] for r in rows if r["sampler"] == n]) for n in names]
        means, stds = [v.mean() for v in values], [v.std() for v in values]
        ax.barh(np.arange(len(names)), means, xerr=stds, capsize=3, color="#4C72B0")
        for y, (m, sd) in enumerate(zip(means, stds)):
            ax.text(m + sd, y, f"  {m:.3f}", va="center", fontsize=7)
        ax.set_yticks(np.arange(len(names)), names if ax is axes[0] else [""] * len(names), fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(label)
    axes[0].set_xlim(min(min(r[f"ndcg@{K}"] for r in rows) * 0.9, 0.3), None)
    fig.suptitle(f"{result['dataset']}: negative samplers, {len(result['seeds'])} seeds", fontsize=9)
    save_figure(fig, path)


def main() -> None:
    parser = common_parser(__doc__)
    parser.add_argument("--only", nargs="*", help="run only these sampler rows (names as in the table)")
    args = parser.parse_args()
    pin_threads(args.threads)
    rows = []
    for seed in args.seeds:
        train, test = protocol_split(args.dataset, seed)
        for name, settings in SAMPLERS.items():
            if args.only and name not in args.only:
                continue
            row = run_one(name, settings, train, test, seed, args.threads)
            rows.append(row)
            print(f"[seed {seed}] {name:<38} NDCG@{K} {row[f'ndcg@{K}']:.4f}  FN {row['false_negative_rate']:.4f}  "
                  f"fit {row['fit_s']:.1f}s  sampler {100 * row['sampler_share']:.1f}%", flush=True)
    result = {"benchmark": "samplers", "dataset": args.dataset, "seeds": args.seeds, "k": K,
              "protocol": dataclasses.asdict(EvaluationProtocol()), **environment(args.threads), "rows": rows}
    publish(f"samplers_{args.dataset}", result, markdown(result), Path(args.out), plot)


if __name__ == "__main__":
    main()
