"""Weights that count: ratings or play counts as weights, for ``positive_weights`` none/log1p/linear/capped.

MovieLens (``--dataset ml-100k``): every rating (1–5) is a training positive whose weight is the
rating (``load_movielens(min_rating=None, ratings_as_weights=True)``); the test set is the held-out
ratings ≥ 4 (what the user liked). A model that lets the weights count should rank liked items
above merely seen ones. ``--dataset playcount``: the Last.fm-shaped play-count log of
`contrec.data.synthetic_play_log` (seed 0; the README's new-user walk-through), every (user, artist)
pair a positive weighing its play count; the test set is every held-out pair — a listen is a
listen, as `contrec split` + `contrec evaluate` count it. Either way a per-user random 80/20 split
per seed; users with ≥ 5 positives; full ranking, train items excluded, k = 20. contrec's default
fit with only ``positive_weights`` changed; implicit ALS with its weights as confidence (the
setting compare starts ALS from) and without them (every weight 1), for reference.

    CONTREC_DATA=../shared/datasets python benchmarks/weights.py --dataset ml-100k --seeds 0 1 2
    python benchmarks/weights.py --dataset playcount --seeds 0 1 2
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).parent))
from _common import environment, mean_std, pin_threads, publish  # noqa: E402
from _common import parser as common_parser  # noqa: E402

import contrec  # noqa: E402
from contrec.data.interactions import Interactions, binary_matrix  # noqa: E402
from contrec.experiments.config import BASELINE_DEFAULTS  # noqa: E402
from contrec.training.weights import POSITIVE_WEIGHTS  # noqa: E402

K = 20


def liked(test: Interactions, at_least: float = 4.0) -> Interactions:
    """The test positives rated ≥ ``at_least``, in the same id space."""
    m = test.matrix.copy()
    m.data[m.data < at_least] = 0
    m.eliminate_zeros()
    return Interactions(matrix=sp.csr_matrix(m), users=test.users, items=test.items)


def weighted_data(dataset: str) -> Interactions:
    """The weighted positives of ``dataset`` ("playcount" or a MovieLens name), users with ≥ 5 of them."""
    if dataset == "playcount":
        from contrec.data.synthetic import synthetic_play_log

        frame = synthetic_play_log(seed=0).astype({"userID": str, "artistID": str})
        data = Interactions.from_frame(frame, user="userID", item="artistID", weight="weight")
    else:
        data = contrec.load_movielens(dataset, min_rating=None, ratings_as_weights=True)
    return data.filter(min_user_interactions=5)


def unweighted(data: Interactions) -> Interactions:
    return Interactions(matrix=binary_matrix(data.matrix), users=data.users, items=data.items)


def score(model, train: Interactions, test: Interactions) -> dict[str, float]:
    values = dict(zip(*contrec.evaluate(model, train, test, k=K)[["metric", "value"]].to_numpy().T))
    return {f"ndcg@{K}": float(values["ndcg"]), f"recall@{K}": float(values["recall"])}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = common_parser(__doc__).parse_args(argv)
    pin_threads(args.threads)
    rows = []
    for seed in args.seeds:
        train, test = contrec.split_random(weighted_data(args.dataset), test_size=0.2, seed=seed)
        target = test if args.dataset == "playcount" else liked(test)
        contestants = [(f"contrec positive_weights={w}", contrec.ContrastiveRecommender(
            positive_weights=w, seed=seed, threads=args.threads, verbose=False), train) for w in POSITIVE_WEIGHTS]
        als = BASELINE_DEFAULTS["als"]
        contestants += [("ALS, weights as confidence", contrec.ImplicitALS(**als, seed=seed, threads=args.threads),
                         train),
                        ("ALS, weights ignored", contrec.ImplicitALS(**als, seed=seed, threads=args.threads),
                         unweighted(train))]
        for name, model, fit_data in contestants:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # positive_weights='none' says it treats positives alike
                model.fit(fit_data)
            rows.append({"seed": seed, "model": name, "fit_s": time.perf_counter() - t0,
                         **score(model, fit_data, target)})
            print(f"seed {seed} {name:<36} NDCG@{K} {rows[-1][f'ndcg@{K}']:.4f}", flush=True)
    result = {"dataset": args.dataset, "seeds": args.seeds, "rows": rows, **environment(args.threads)}
    what = ("Play counts as weights on the synthetic play-count log (test: every held-out pair"
            if args.dataset == "playcount" else f"Ratings as weights on {args.dataset} (test: held-out ratings ≥ 4")
    lines = [f"### {what}; seeds {', '.join(map(str, args.seeds))}; mean ± std)", "",
             f"| model | NDCG@{K} | × none | Recall@{K} | fit s |", "|---|---:|---:|---:|---:|"]
    base = {r["seed"]: r[f"ndcg@{K}"] for r in rows if r["model"] == "contrec positive_weights=none"}
    for name in dict.fromkeys(r["model"] for r in rows):
        rs = [r for r in rows if r["model"] == name]
        ratio = np.mean([r[f"ndcg@{K}"] / base[r["seed"]] for r in rs])
        lines.append(f"| {name} | {mean_std([r[f'ndcg@{K}'] for r in rs])} | {ratio:.3f} | "
                     f"{mean_std([r[f'recall@{K}'] for r in rs])} | {np.mean([r['fit_s'] for r in rs]):.1f} |")
    lines += ["", f"Threads: {args.threads}. ALS settings: {BASELINE_DEFAULTS['als']} (compare's starting point)."]
    return publish(f"weights_{args.dataset}", result, "\n".join(lines) + "\n", Path(args.out))


if __name__ == "__main__":
    main()
