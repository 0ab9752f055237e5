"""Full-ranking evaluation: every user is ranked against the whole catalogue minus their train items.

Never sampled candidates (Krichene & Rendle 2020): a sampled metric can reorder models.
Users count only when they have at least one held-out positive.

Example:
    >>> table = evaluate(model, train, test, k=(10, 20))  # doctest: +SKIP
    >>> table.pivot(index="metric", columns="k", values="value")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from contrec.data.interactions import IdMap, Interactions, binary_matrix
from contrec.errors import ConfigError, DataError
from contrec.evaluation.metrics import METRICS, coverage, mean_popularity
from contrec.serving.recommender import FactorRecommender, ensure_same_space

__all__ = ["evaluate", "ranking_metrics", "item_popularity"]


def _ks(k: "int | Sequence[int]") -> list[int]:
    ks = [k] if isinstance(k, (int, np.integer)) else list(k)
    if not ks or any(not isinstance(x, (int, np.integer)) or isinstance(x, bool) or x < 1 for x in ks):
        raise ConfigError(f"k must be a positive integer or a list of them (got {k!r})")
    return sorted(set(int(x) for x in ks))


def item_popularity(train: Interactions) -> np.ndarray:
    """Share of training users who interacted with each item, ``[n_items]`` in [0, 1]."""
    active = max(int((train.user_counts() > 0).sum()), 1)
    return train.item_counts() / active


def ranking_metrics(ranked: np.ndarray, relevant: sp.csr_matrix, ks: Sequence[int], popularity: np.ndarray,
                    ) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Means (tidy rows) and per-user arrays of every metric at every k for ranked lists."""
    rows: list[dict[str, Any]] = []
    per_user: dict[str, np.ndarray] = {}
    n_items = relevant.shape[1]
    for k in ks:
        for name, fn in METRICS.items():
            values = fn(ranked, relevant, k)
            per_user[f"{name}@{k}"] = values
            rows.append({"metric": name, "k": k, "value": float(np.nanmean(values))})
        pop = mean_popularity(ranked, popularity, k)
        per_user[f"mean_popularity@{k}"] = pop
        rows.append({"metric": "mean_popularity", "k": k, "value": float(np.nanmean(pop))})
        rows.append({"metric": "coverage", "k": k, "value": coverage(ranked, n_items, k)})
    return rows, per_user


def evaluate(model: FactorRecommender, train: Interactions, test: Interactions, k: "int | Sequence[int]" = (10, 20),
             *, per_user: bool = False, overlap: Literal["error", "drop"] = "error",
             exclude: Literal["known", "train"] = "known") -> "pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]":
    """Full-ranking metrics of a fitted model on held-out positives.

    Every item the model knows for a user — ``train`` and whatever else it was given (a
    validation set passed to ``fit``) — is left out of that user's ranking. Test positives
    on items the model cannot know (``test``'s item map may extend the model's, as
    ``contrec evaluate`` reads a file) stay relevant and count as misses: they are relevant
    items the model cannot retrieve.

    Args:
        model: a fitted contrec model or baseline (anything with ``top_k``).
        train: the positives the model was fitted on; excluded from every user's ranking.
        test: held-out positives in the same id space (from `split_random` / `split_temporal`).
        k: one cutoff or several.
        per_user: also return a per-user DataFrame (index: raw user id; columns "ndcg@10" …).
        overlap: test pairs the model already knows can never be recommended, so they would
            sit in the denominators as unretrievable: ``"error"`` refuses them (default),
            ``"drop"`` leaves them out (their number is ``.attrs["n_overlap_dropped"]``).
        exclude: ``"known"`` leaves out everything the model knows (default); ``"train"`` only
            ``train`` — to score a model on the validation set it early-stopped on (tuning).

    Returns:
        A tidy DataFrame with columns metric, k, value (mean over evaluated users): ndcg,
        recall, precision, map, mrr, hit_rate, mean_popularity, coverage. ``.attrs["n_users"]``
        is the number of users evaluated, ``.attrs["n_unknown_item_positives"]`` the test
        positives on items outside the model's catalogue.

    Example:
        >>> table = evaluate(model, train, test, k=(10, 20))  # doctest: +SKIP
    """
    ks = _ks(k)
    if exclude not in ("known", "train"):
        raise ConfigError(f"exclude={exclude!r} is not valid; choose 'known' or 'train'")
    if overlap not in ("error", "drop"):
        raise ConfigError(f"overlap={overlap!r} is not valid; choose 'error' or 'drop'")
    if not (train.users == test.users and _extends(test.items, train.items)):
        raise DataError("train and test do not share id maps; make both with split_random / split_temporal "
                        "from the same Interactions")
    ensure_same_space(model, train, "the train data")
    if max(ks) > train.n_items:
        raise ConfigError(f"k={max(ks)} is larger than the catalogue ({train.n_items} items); ask for at most "
                          f"{train.n_items}", cli=f"k={max(ks)} is larger than the catalogue ({train.n_items} items); "
                          f"pass -k {train.n_items} or less")
    known = binary_matrix(train.matrix + model.seen_ if exclude == "known" else train.matrix)
    relevant = test.matrix.tocsr()
    n_items = train.n_items
    shared = known.multiply(relevant[:, :n_items] if relevant.shape[1] > n_items else relevant).tocsr()
    n_overlap = int(shared.nnz)
    if n_overlap:
        if overlap == "error":
            what = (f"{n_overlap} test (user, item) pairs are also known to the model (in train or its validation "
                    "data); they can never be recommended, so they are refused: evaluate on held-out pairs, or drop "
                    "them with")
            raise DataError(f"{what} overlap='drop'", cli=f"{what} --drop-overlap")
        pad = sp.csr_matrix((shared.data, shared.indices, shared.indptr), shape=relevant.shape)
        relevant = (binary_matrix(relevant) - binary_matrix(pad)).tocsr()
        relevant.eliminate_zeros()
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    if len(users) == 0:
        raise DataError("the test set has no positives; nothing to evaluate")
    ranked, _ = model.top_k(users, max(ks), exclude=known[users])
    rows, arrays = ranking_metrics(ranked, relevant[users], ks, item_popularity(train))
    table = pd.DataFrame(rows, columns=["metric", "k", "value"])
    table.attrs["n_users"] = int(len(users))
    table.attrs["n_overlap_dropped"] = n_overlap
    table.attrs["n_unknown_item_positives"] = int((relevant.indices >= n_items).sum())
    if not per_user:
        return table
    frame = pd.DataFrame(arrays, index=pd.Index(train.users.ids[users], name="user"))
    return table, frame


def _extends(items: IdMap, base: IdMap) -> bool:
    """``items`` is ``base`` followed by zero or more ids the model never saw."""
    if items is base or items == base:
        return True
    n = len(base)
    return len(items) > n and bool(np.array_equal(items.ids[:n], base.ids))
