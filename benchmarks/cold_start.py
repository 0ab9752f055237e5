"""Cold start: users who were not in training, and items nobody has interacted with yet.

**New users.** 10 % of the users (with their every positive) are held out of training.
Each held-out user's positives are split at random in half: the first half is what they
bring (their history), the second half is what we try to find. Methods:

- ``contrec history`` — ``ContrastiveRecommender(user_tower="history", history_dropout=0.5)``,
  `recommend_for_history` (the tower encodes the item list; no retraining);
- ``contrec history-attention`` — the same with attention pooling;
- ``ALS fold-in`` — implicit ALS (the comparison's tuned settings: 128 factors, reg 30,
  alpha 5, 30 iterations) with ``recalculate_user`` (one exact least-squares solve against
  the fixed item factors), through the same `recommend_for_history`;
- ``popularity`` — the most popular items not in the history.

NDCG@20 and Recall@20 on the hidden half, the history half filtered out, full catalogue.
contrec's epoch count is chosen by early stopping on a 20 % carve of the training users'
positives, then it is refitted on all of them (ALS needs no carve).

**New items.** 5 % of the items (with their every positive) are held out of training but
stay in the catalogue with their attributes (MovieLens genres and year). Every user with
a positive on a held-out item ranks the held-out items; Recall@k / NDCG@k of their
held-out positives within those items. ``contrec features`` (`item_tower="features"`:
held-out items are served from their attribute tokens alone) against ``random`` (the
exact expectation of a uniformly random order, computed from the hypergeometric law) and
against ``contrec id`` (ID tower: a held-out item's vector is its untrained
initialisation — a check that the features, not chance, do the work). Also reported: the
share of held-out positives that reach each user's top 20 of the *whole* catalogue
(train items filtered).

    CONTREC_DATA=../shared/datasets python benchmarks/cold_start.py --seeds 0 1 2
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).parent))
from _common import environment, mean_std, pin_threads, publish  # noqa: E402
from _common import parser as common_parser  # noqa: E402

import contrec  # noqa: E402
from contrec.evaluation import item_popularity, ranking_metrics  # noqa: E402
from contrec.experiments.config import BASELINE_DEFAULTS  # noqa: E402
from contrec.evaluation.protocol import EvaluationProtocol  # noqa: E402

K = 20
USER_SHARE, ITEM_SHARE = 0.10, 0.05
HISTORY_MODELS = {
    "contrec history": {"user_tower": "history", "history_dropout": 0.5},
    "contrec history-attention": {"user_tower": "history", "pooling": "attention", "history_dropout": 0.5},
}


def load(dataset: str) -> contrec.Interactions:
    p = EvaluationProtocol()
    return contrec.load_movielens(dataset, min_rating=p.min_rating).filter(min_user_interactions=p.min_user_positives)


def fit_contrec(params: dict[str, Any], train: contrec.Interactions, seed: int, threads: int
                ) -> tuple[contrec.ContrastiveRecommender, float, int]:
    """Early-stop on a carve of ``train`` to pick the epoch count, then refit on all of ``train``."""
    t0 = time.perf_counter()
    fit, carve = contrec.split_random(train, test_size=0.2, seed=seed)
    probe = contrec.ContrastiveRecommender(seed=seed, threads=threads, verbose=False, **params).fit(fit, carve)
    epochs = next(r["epoch"] for r in probe.history_ if r.get("best"))
    model = contrec.ContrastiveRecommender(seed=seed, threads=threads, verbose=False, epochs=epochs,
                                           **params).fit(train)
    return model, time.perf_counter() - t0, epochs


def metrics(ranked: np.ndarray, relevant: sp.csr_matrix, popularity: np.ndarray) -> dict[str, float]:
    rows, _ = ranking_metrics(ranked, relevant, [K], popularity)
    return {f"{r['metric']}@{K}": r["value"] for r in rows}


# ---------------------------------------------------------------------------------------------- new users
def cold_users(data: contrec.Interactions, seed: int, threads: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    cold = np.zeros(data.n_users, bool)
    cold[rng.choice(data.n_users, int(round(USER_SHARE * data.n_users)), replace=False)] = True
    rows = data.row_codes()
    train = data.subset(~cold[rows])  # same id space; held-out users have no training rows
    held = data.subset(cold[rows])
    # half of each held-out user's positives is the history, the rest is hidden
    key = rng.random(len(held))
    order = np.lexsort((key, held.row_codes()))
    rank = np.empty(len(held), np.int64)
    rank[order] = np.arange(len(held)) - np.repeat(held.matrix.indptr[:-1], np.diff(held.matrix.indptr))
    in_history = rank < (held.user_counts() // 2)[held.row_codes()]
    users = np.flatnonzero(cold)
    history, hidden = held.subset(in_history).matrix[users], held.subset(~in_history).matrix[users]
    history = (history > 0).astype(np.float32).tocsr()
    popularity = item_popularity(train)
    out = []

    def record(name: str, model: Any, fit_s: float, extra: dict[str, Any] | None = None) -> None:
        t0 = time.perf_counter()
        ranked, _ = model.top_k_for_histories(history, K)
        encode_s = time.perf_counter() - t0
        out.append({"part": "users", "seed": seed, "method": name, "fit_s": fit_s, "serve_s": encode_s,
                    "users": int(len(users)), **metrics(ranked, hidden, popularity), **(extra or {})})

    t0 = time.perf_counter()
    record("popularity", contrec.PopularityRecommender().fit(train), time.perf_counter() - t0)
    t0 = time.perf_counter()
    als = contrec.ImplicitALS(**BASELINE_DEFAULTS["als"], seed=seed, threads=threads).fit(train)
    record("ALS fold-in", als, time.perf_counter() - t0)
    for name, params in HISTORY_MODELS.items():
        model, fit_s, epochs = fit_contrec(params, train, seed, threads)
        record(name, model, fit_s, {"epochs": epochs})
    return out


# ---------------------------------------------------------------------------------------------- new items
def random_expectation(relevant_counts: np.ndarray, n_candidates: int) -> dict[str, float]:
    """Exact expected Recall@K and NDCG@K of a uniformly random order of the candidates.

    A random order puts each relevant item at each position with probability 1/n, so
    E[hits in top K] = K·r/n and E[DCG] = r/n · Σ_{p≤K} 1/log2(p+1).
    """
    k = min(K, n_candidates)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    r = relevant_counts.astype(np.float64)
    recall = (k * r / n_candidates) / np.minimum(r, k)
    ideal = np.array([discounts[:int(min(x, k))].sum() for x in r])
    ndcg = (r / n_candidates) * discounts.sum() / ideal
    return {f"recall@{K}": float(recall.mean()), f"ndcg@{K}": float(ndcg.mean())}


def cold_items(data: contrec.Interactions, seed: int, threads: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(1000 + seed)
    cold = np.zeros(data.n_items, bool)
    cold[rng.choice(data.n_items, int(round(ITEM_SHARE * data.n_items)), replace=False)] = True
    on_cold = cold[data.matrix.indices]
    train, test = data.subset(~on_cold), data.subset(on_cold)
    users = np.flatnonzero(test.user_counts() > 0)
    cold_idx = np.flatnonzero(cold)
    relevant = test.matrix[users][:, cold_idx].tocsr()  # positions within the held-out items
    out = [{"part": "items", "seed": seed, "method": "random", "users": int(len(users)), "items": int(cold.sum()),
            **random_expectation(np.diff(relevant.indptr), len(cold_idx))}]
    for name, params in {"contrec features": {"item_tower": "features"}, "contrec id": {}}.items():
        model, fit_s, epochs = fit_contrec(params, train, seed, threads)
        # rank only the held-out items: an exact inner-product / L2 ranking over them
        scores = _scores(model, users, cold_idx)
        ranked = np.argsort(-scores, axis=1, kind="stable")[:, :K]
        row = {"part": "items", "seed": seed, "method": name, "fit_s": fit_s, "epochs": epochs,
               "users": int(len(users)), "items": int(cold.sum()), **_hit_metrics(ranked, relevant)}
        # and in the whole catalogue, training items filtered: do held-out items reach the top 20?
        top, _ = model.top_k(users, K, exclude=train.matrix[users])
        row["catalogue_share"] = float(np.isin(top, cold_idx).sum() / max(len(users) * K, 1))
        row["catalogue_recall"] = float(test.matrix[users].multiply(_binary_rows(top, data.n_items)).sum()
                                        / test.matrix[users].sum())
        out.append(row)
    return out


def _scores(model: contrec.ContrastiveRecommender, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    u, v = model.user_vectors_[users], model.item_vectors_[items]
    if model._metric == "ip":
        return u @ v.T
    return -((u * u).sum(1)[:, None] + (v * v).sum(1)[None, :] - 2 * u @ v.T)


def _hit_metrics(ranked: np.ndarray, relevant: sp.csr_matrix) -> dict[str, float]:
    return metrics(ranked, relevant, np.zeros(relevant.shape[1]))


def _binary_rows(top: np.ndarray, n_items: int) -> sp.csr_matrix:
    rows = np.repeat(np.arange(len(top)), top.shape[1])
    cols = top.reshape(-1)
    keep = cols >= 0
    return sp.csr_matrix((np.ones(keep.sum()), (rows[keep], cols[keep])), shape=(len(top), n_items))


# ---------------------------------------------------------------------------------------------- report
def markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    lines = [f"### New users on {result['dataset']} ({100 * USER_SHARE:.0f} % of users held out; half of each "
             f"one's positives given, NDCG@{K} on the other half; seeds {', '.join(map(str, result['seeds']))}; "
             "mean ± std)", "",
             f"| method | NDCG@{K} | Recall@{K} | mean pop.@{K} | fit s | serve s (all held-out users) |",
             "|---|---:|---:|---:|---:|---:|"]
    users = [r for r in rows if r["part"] == "users"]
    for name in dict.fromkeys(r["method"] for r in users):
        rs = [r for r in users if r["method"] == name]
        lines.append(f"| {name} | {mean_std([r[f'ndcg@{K}'] for r in rs])} | "
                     f"{mean_std([r[f'recall@{K}'] for r in rs])} | "
                     f"{np.mean([r[f'mean_popularity@{K}'] for r in rs]):.4f} | "
                     f"{np.mean([r['fit_s'] for r in rs]):.1f} | {np.mean([r['serve_s'] for r in rs]):.3f} |")
    items = [r for r in rows if r["part"] == "items"]
    lines += ["", f"### New items on {result['dataset']} ({100 * ITEM_SHARE:.0f} % of items held out of training; "
              f"each user ranks the held-out items; seeds {', '.join(map(str, result['seeds']))})", "",
              f"| method | Recall@{K} | NDCG@{K} | held-out share of full top-{K} | held-out recall in full top-{K} |",
              "|---|---:|---:|---:|---:|"]
    for name in dict.fromkeys(r["method"] for r in items):
        rs = [r for r in items if r["method"] == name]
        share = "–" if "catalogue_share" not in rs[0] else f"{np.mean([r['catalogue_share'] for r in rs]):.4f}"
        crec = "–" if "catalogue_recall" not in rs[0] else f"{np.mean([r['catalogue_recall'] for r in rs]):.4f}"
        lines.append(f"| {name} | {mean_std([r[f'recall@{K}'] for r in rs])} | "
                     f"{mean_std([r[f'ndcg@{K}'] for r in rs])} | {share} | {crec} |")
    n_items = items[0]["items"] if items else 0
    lines += ["", f"Held-out items per seed: {n_items}; random = exact expectation of a uniform order. "
              f"Threads: {result['threads']}. Versions: {result['versions']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common_parser(__doc__)
    p.add_argument("--part", nargs="+", choices=["users", "items"], default=["users", "items"])
    args = p.parse_args(argv)
    pin_threads(args.threads)
    data = load(args.dataset)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for seed in args.seeds:
        if "users" in args.part:
            rows += cold_users(data, seed, args.threads)
        if "items" in args.part:
            rows += cold_items(data, seed, args.threads)
        print(f"seed {seed} done, {time.perf_counter() - t0:.0f}s", flush=True)
    result = {"dataset": args.dataset, "seeds": args.seeds, "rows": rows, "wall_s": time.perf_counter() - t0,
              **environment(args.threads)}
    return publish(f"cold_start_{args.dataset}", result, markdown(result), Path(args.out))


if __name__ == "__main__":
    main()
