"""Updating a model with a week of new interactions vs refitting it: ml-100k split by time.

ml-100k's positives (rating ≥ 4) split at two dates: everything before 1998-03-30 is what
the model was first fitted on (``base``); the week 1998-03-30 … 04-05 (4,817 positives,
the busiest week of the log, new users included) arrives next (``week``); everything from
1998-04-06 on is the test. Every method knows base ∪ week when it is scored (known
positives are never recommended), and is scored on every test user known after the week,
full ranking, NDCG@20 / Recall@20:

- ``stale``: the base model, not updated (users who arrived in the week cannot be served: 0);
- ``update (union)``: ``fit(week, warm_start=True)`` — the saved towers continue on base ∪ week
  for a quarter of the first fit's epochs;
- ``update (week only)``: ``train_on="new"``: only the week's positives are trained on;
- ``refit``: a default fit on base ∪ week from scratch (validation carve included), what an
  update is meant to replace;
- ``ALS refit``: implicit ALS (factors 128, regularization 10, alpha 1, 15 iterations) on
  base ∪ week, for scale.

Seconds are the fit (or update) alone, 2 threads; 3 seeds.

    CONTREC_DATA=../shared/datasets python benchmarks/update.py     # about 5 min on 2 cores
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import environment, mean_std, pin_threads, publish  # noqa: E402
from _common import parser as common_parser  # noqa: E402

import contrec  # noqa: E402
from contrec.data.interactions import Interactions, read_interactions  # noqa: E402
from contrec.evaluation.full_ranking import evaluate  # noqa: E402

WEEK = ("1998-03-30", "1998-04-06")
K = 20


def split(data_dir: str | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    full = contrec.load_movielens("ml-100k", data_dir, min_rating=4)
    frame = full.to_frame()
    when = pd.to_datetime(frame["timestamp"], unit="s")
    start, end = pd.Timestamp(WEEK[0]), pd.Timestamp(WEEK[1])
    return frame[when < start], frame[(when >= start) & (when < end)], frame[when >= end], full.item_attributes


def score(model: Any, test: pd.DataFrame, users: np.ndarray) -> dict[str, float]:
    """NDCG@K / Recall@K over ``users`` (raw ids); a user the model cannot serve scores 0."""
    known = Interactions(model.seen_, model.users_, model.items_)
    import warnings

    with warnings.catch_warnings():  # test users the model cannot know are dropped here, scored 0 below
        warnings.simplefilter("ignore")
        held = read_interactions(test[["user", "item"]], users=model.users_, items=model.items_, unknown="drop",
                                 unknown_items="extend")
    _, per_user = evaluate(model, known, held, K, per_user=True, overlap="drop")
    per_user = per_user.reindex(pd.Index(users, dtype=object)).fillna(0.0)
    return {"ndcg": float(per_user[f"ndcg@{K}"].mean()), "recall": float(per_user[f"recall@{K}"].mean())}


def run_seed(seed: int, data_dir: str | None, threads: int) -> list[dict[str, Any]]:
    import warnings

    base, week, test, attributes = split(data_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the frames carry no weights; the readers' notes are not the point
        base_i = Interactions.from_frame(base[["user", "item"]], item_attributes=attributes)
        week_i = Interactions.from_frame(week[["user", "item"]], item_attributes=attributes)
        union_i = Interactions.from_frame(pd.concat([base, week])[["user", "item"]].drop_duplicates(),
                                          item_attributes=attributes)
    users = np.intersect1d(test["user"].astype(str).unique(), union_i.users.ids.astype(str))
    settings = {"seed": seed, "threads": threads, "verbose": False}
    rows: list[dict[str, Any]] = []

    def record(name: str, model: Any, seconds: float) -> None:
        rows.append({"method": name, "seed": seed, "seconds": seconds, **score(model, test, users)})
        print(f"seed {seed} {name}: NDCG@{K} {rows[-1]['ndcg']:.4f} in {seconds:.1f}s", flush=True)

    t0 = time.perf_counter()
    first = contrec.ContrastiveRecommender(**settings).fit(base_i)
    base_s = time.perf_counter() - t0
    path = Path(f"/tmp/contrec-update-{seed}.contrec")
    first.save(path)
    stale = contrec.ContrastiveRecommender.load(path)
    record("stale (base model)", stale, base_s)
    for name, train_on in (("update (union)", "union"), ("update (week only)", "new")):
        model = contrec.ContrastiveRecommender.load(path)
        t0 = time.perf_counter()
        model.fit(week_i, warm_start=True, train_on=train_on)
        record(name, model, time.perf_counter() - t0)
    t0 = time.perf_counter()
    refit = contrec.ContrastiveRecommender(**settings).fit(union_i)
    record("refit (defaults)", refit, time.perf_counter() - t0)
    t0 = time.perf_counter()
    als = contrec.ImplicitALS(factors=128, regularization=10.0, alpha=1.0, iterations=15, seed=seed,
                              threads=threads).fit(union_i)
    record("ALS refit", als, time.perf_counter() - t0)
    path.unlink(missing_ok=True)
    return rows


def markdown(result: dict[str, Any]) -> str:
    frame = pd.DataFrame(result["rows"])
    refit = frame[frame["method"] == "refit (defaults)"]
    lines = [f"### Update vs refit: ml-100k split by time, a week of new interactions ({len(result['seeds'])} seeds, "
             f"{result['threads']} threads)", "",
             f"Base: {result['sizes']['base']:,} positives before {WEEK[0]}; the week: {result['sizes']['week']:,} "
             f"positives ({result['sizes']['new_users']} new users, {result['sizes']['new_items']} new items); test: "
             f"{result['sizes']['test']:,} positives from {WEEK[1]} on, {result['sizes']['test_users']} users.", "",
             f"| method | NDCG@{K} | Recall@{K} | × refit NDCG | seconds | × refit time |",
             "|---|---:|---:|---:|---:|---:|"]
    for name in dict.fromkeys(frame["method"]):
        part = frame[frame["method"] == name]
        lines.append(f"| {name} | {mean_std(part['ndcg'])} | {mean_std(part['recall'])} | "
                     f"{part['ndcg'].mean() / refit['ndcg'].mean():.3f} | {part['seconds'].mean():.1f} | "
                     f"{part['seconds'].mean() / refit['seconds'].mean():.2f} |")
    lines += ["", "Stale: the base model's fit time. Seconds: the fit or update alone. "
              f"Versions: {result['versions']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common_parser(__doc__)
    p.add_argument("--data-dir", default=None)
    args = p.parse_args(argv)
    pin_threads(args.threads)
    base, week, test, _ = split(args.data_dir)
    known_users, known_items = set(base["user"]), set(base["item"])
    union_users = set(base["user"]) | set(week["user"])
    sizes = {"base": len(base), "week": len(week), "test": len(test),
             "new_users": len(set(week["user"]) - known_users), "new_items": len(set(week["item"]) - known_items),
             "test_users": int(test["user"].isin(union_users).groupby(test["user"]).any().sum())}
    rows: list[dict[str, Any]] = []
    for seed in args.seeds:
        rows += run_seed(seed, args.data_dir, args.threads)
    result = {"rows": rows, "seeds": args.seeds, "sizes": sizes, **environment(args.threads)}
    return publish("update_ml-100k", result, markdown(result), Path(args.out))


if __name__ == "__main__":
    main()
