"""Serving-time candidates and rules: what an allow-list, exclusions and a domain rule cost.

One synthetic catalogue of 1,000,000 items (dim 64, clustered unit vectors as in
`benchmarks/retrieval.py`), 2,000 query users with 200 seen items each (every item seen by
someone, so every item is in the catalogue), and two item attributes: ``brand`` (5,000
values) and ``category`` (40 values). Each line is one `recommend` call for every user,
top-20, seen items filtered, through the public API (`FactorRecommender.recommend`, the
path contrec and the baselines share), timed after a warm-up call:

- ``seen only``: the plain recommend-all (FAISS flat, exact) — the reference;
- ``10 % allow-list``: ``items=`` 100,000 random items (an exact search over just those);
- ``exclusions, 1,000 for everyone``: ``exclude=`` a list of 1,000 items;
- ``exclusions, 100 per user``: ``exclude=`` a mapping user → 100 items;
- ``rule never_same(brand)``: nothing of a brand the user already has (history-relative);
- ``rule not has(category, c7)``: a plain attribute filter;
- ``10 % allow-list + rule``: both.

Each line says the seconds, the ratio to ``seen only`` and that every user got k items.

    python benchmarks/serving.py                       # about 3 min on 2 cores
    python benchmarks/serving.py --items 200000 --users 1000    # quicker
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import environment, pin_threads, publish  # noqa: E402
from _common import parser as common_parser  # noqa: E402

from contrec.data.interactions import Interactions  # noqa: E402
from contrec.serving.recommender import FactorRecommender  # noqa: E402

K = 20
DIM = 64


class Served(FactorRecommender):
    """A factor model with given vectors: serving alone, without a fit."""

    def __init__(self, train: Interactions, users: np.ndarray, items: np.ndarray, threads: int) -> None:
        self._threads = threads
        self._set_state(train, users, items)


def clustered(n: int, rng: np.random.Generator, centres: np.ndarray, noise: float = 0.6) -> np.ndarray:
    x = centres[rng.integers(0, len(centres), n)] + rng.normal(0.0, noise / np.sqrt(DIM), (n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def world(n_items: int, n_users: int, seed: int, threads: int) -> Served:
    rng = np.random.default_rng(seed)
    per_user = max(1, n_items // n_users)
    items = rng.permutation(n_items)[: per_user * n_users]  # every item seen by exactly one user
    frame = pd.DataFrame({"user": np.repeat(np.arange(n_users), per_user).astype(str), "item": items.astype(str)})
    names = np.arange(n_items).astype(str)
    attrs = pd.DataFrame({"brand": rng.integers(0, 5000, n_items).astype(str),
                          "category": np.char.add("c", rng.integers(0, 40, n_items).astype(str))}, index=names)
    train = Interactions.from_frame(frame, item_attributes=attrs)
    centres = rng.normal(size=(256, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return Served(train, clustered(train.n_users, rng, centres), clustered(train.n_items, rng, centres), threads)


def cases(model: Served, seed: int) -> dict[str, Callable[[], pd.DataFrame]]:
    rng = np.random.default_rng(seed + 1)
    ids = model.items_.ids
    allow = list(rng.choice(ids, len(ids) // 10, replace=False))
    everyone = list(rng.choice(ids, 1000, replace=False))
    per_user = {u: list(rng.choice(ids, 100, replace=False)) for u in model.users_.ids}
    return {
        "seen only": lambda: model.recommend(None, K),
        "10 % allow-list": lambda: model.recommend(None, K, items=allow),
        "exclusions, 1,000 for everyone": lambda: model.recommend(None, K, exclude=everyone),
        "exclusions, 100 per user": lambda: model.recommend(None, K, exclude=per_user),
        "rule never_same(brand)": lambda: model.recommend(None, K, rule="never_same(brand)"),
        "rule not has(category, c7)": lambda: model.recommend(None, K, rule="not has(category, c7)"),
        "10 % allow-list + rule": lambda: model.recommend(None, K, items=allow, rule="never_same(brand)"),
    }


def run(n_items: int, n_users: int, seed: int, threads: int, repeats: int) -> list[dict[str, Any]]:
    t0 = time.perf_counter()
    model = world(n_items, n_users, seed, threads)
    print(f"catalogue built in {time.perf_counter() - t0:.1f}s", flush=True)
    calls = cases(model, seed)
    got = {name: call() for name, call in calls.items()}  # warm-up: page in the vectors, fill the caches
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):  # the cases interleaved, so a slow spell of the machine hits them alike
        for name, call in calls.items():
            t0 = time.perf_counter()
            got[name] = call()
            times[name].append(time.perf_counter() - t0)
    rows: list[dict[str, Any]] = []
    for name in calls:
        full = int((got[name].groupby("user").size() == K).sum())
        rows.append({"case": name, "seconds": float(np.median(times[name])), "users_with_k": full,
                     "users": int(n_users), "items": int(n_items)})
        print(f"{name}: {rows[-1]['seconds']:.2f}s, {full}/{n_users} users with {K} items", flush=True)
    base = rows[0]["seconds"]
    for r in rows:
        r["ratio"] = r["seconds"] / base
    return rows


def markdown(result: dict[str, Any]) -> str:
    first = result["rows"][0]
    lines = [f"### Serving rules: recommend-all, top-{K}, {first['users']:,} users × {first['items']:,} items "
             f"(dim {DIM}, {result['threads']} threads)", "",
             "| case | seconds | × seen only | users with k items |", "|---|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['case']} | {r['seconds']:.2f} | {r['ratio']:.2f}× | "
                     f"{r['users_with_k']:,} / {r['users']:,} |")
    lines += ["", f"Median of {result['repeats']} calls per case after a warm-up call (cases interleaved); "
              "the rule's attribute table is built in the warm-up and kept by the model, as in a server. "
              f"Versions: {result['versions']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common_parser(__doc__)
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    pin_threads(args.threads)
    rows = run(args.items, args.users, args.seeds[0], args.threads, args.repeats)
    result = {"rows": rows, "seed": args.seeds[0], "repeats": args.repeats, **environment(args.threads)}
    return publish("serving", result, markdown(result), Path(args.out))


if __name__ == "__main__":
    main()
