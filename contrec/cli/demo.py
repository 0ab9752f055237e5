"""`contrec demo`: the main job on real data in one command.

Loads MovieLens (ml-100k by default) under the standard protocol (contrec.evaluation.protocol), fits
contrec with its default settings and a popularity baseline on the same split, prints
their full-ranking metrics side by side, and shows a few users' recommendations with
movie titles next to movies they liked. Same seed → the same numbers as
``benchmarks/quality.py`` reports for that seed.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

import numpy as np
import pandas as pd

from contrec.evaluation import evaluate
from contrec.evaluation.protocol import EvaluationProtocol, protocol_split
from contrec.models.baselines import PopularityRecommender
from contrec.models.contrastive import ContrastiveRecommender

__all__ = ["run_demo"]

_SHOWN = [("ndcg", 10), ("ndcg", 20), ("recall", 10), ("recall", 20), ("map", 20), ("mrr", 20),
          ("hit_rate", 20), ("coverage", 20), ("mean_popularity", 20)]


def run_demo(dataset: str = "ml-100k", seed: int = 0, data_dir: "str | os.PathLike[str] | None" = None,
             n_users: int = 3, threads: int | None = None, verbose: bool = True,
             out: TextIO | None = None) -> pd.DataFrame:
    """Run the demo, print its report to ``out`` (stdout) and return the metrics table."""
    out = out or sys.stdout
    protocol = EvaluationProtocol()
    t_start = time.perf_counter()
    train, test = protocol_split(dataset, seed, data_dir, protocol)
    print(f"{dataset}: {train.n_users} users × {train.n_items} items; ratings ≥ {protocol.min_rating:g} are positives, "
          f"users with ≥ {protocol.min_user_positives} positives; per-user random split (seed {seed}): "
          f"{len(train)} train / {len(test)} test positives", file=out)

    results = {}
    fit_seconds = {}
    models = {
        "contrec (defaults)": ContrastiveRecommender(seed=seed, threads=threads, verbose=verbose),
        "popularity": PopularityRecommender(),
    }
    for name, model in models.items():
        t0 = time.perf_counter()
        model.fit(train)
        fit_seconds[name] = time.perf_counter() - t0
        table = evaluate(model, train, test, k=(10, 20))
        results[name] = {(m, k): v for m, k, v in table.itertuples(index=False)}

    rows = []
    for metric, k in _SHOWN:
        rows.append({"metric": f"{metric}@{k}", **{name: results[name][(metric, k)] for name in models}})
    rows.append({"metric": "fit seconds", **fit_seconds})
    table = pd.DataFrame(rows).set_index("metric")
    print(f"\nFull-ranking metrics on {table.columns.size} models (train items excluded, "
          f"{int((test.user_counts() > 0).sum())} test users):", file=out)
    print(table.to_string(float_format=lambda v: f"{v:.4f}"), file=out)

    model = models["contrec (defaults)"]
    titles = train.item_attributes["title"] if train.item_attributes is not None else None
    rng = np.random.default_rng(seed)
    active = np.flatnonzero(test.user_counts() > 0)
    chosen = np.sort(rng.choice(active, size=min(n_users, len(active)), replace=False))
    recs = model.recommend(train.users.ids[chosen], k=5)
    for u in chosen:
        uid = train.users.ids[u]
        liked = train.items.ids[train.matrix[u].indices[:3]]
        held_out = set(test.items.ids[test.matrix[u].indices])
        print(f"\nuser {uid} liked: {'; '.join(_title(titles, i) for i in liked)}", file=out)
        for r in recs[recs["user"] == uid].itertuples(index=False):
            mark = "  ✓ (held-out positive)" if r.item in held_out else ""
            print(f"  {r.rank}. {_title(titles, r.item)}  [{r.score:.3f}]{mark}", file=out)
    top = recs[recs["user"] == train.users.ids[chosen[0]]].iloc[0]
    user, item = str(top["user"]), str(top["item"])
    why = model.explain(user, item, k=3)
    print(f"\nwhy {_title(titles, item)} for user {user}? the liked items closest to it "
          f"({why['method'].iloc[0]}): " + "; ".join(f"{_title(titles, h)} [{e:.3f}]"
                                                     for h, e in zip(why["history_item"], why["effect"])), file=out)
    print(f"\ndemo finished in {time.perf_counter() - t_start:.1f}s", file=out)
    return table


def _title(titles: "pd.Series | None", item: str) -> str:
    if titles is None or item not in titles.index or pd.isna(titles.loc[item]):
        return f"item {item}"
    return str(titles.loc[item])
