"""Full-ranking top-k metrics in pure numpy, one value per user.

Inputs everywhere: ``recommended`` ``[U, ≥k]`` int item indices, best first, −1 where a
list ran short; ``relevant`` ``[U, n_items]`` CSR whose stored entries are the user's
held-out positives (binary relevance). Users without relevant items get NaN; `evaluate`
leaves them out before averaging.

Definitions (|R| = number of relevant items, hits_i = 1 if the item at rank i is relevant):

- Precision@k = Σ_{i≤k} hits_i / k
- Recall@k    = Σ_{i≤k} hits_i / min(k, |R|)        (reaches 1 when the list is perfect)
- NDCG@k      = Σ_{i≤k} hits_i / log2(i+1)  /  Σ_{i≤min(k,|R|)} 1 / log2(i+1)
- MAP@k       = Σ_{i≤k} hits_i · Precision@i / min(k, |R|)
- MRR@k       = 1 / (rank of the first hit), 0 without a hit in the top k
- HitRate@k   = 1 if any of the top k is relevant

Example:
    >>> import numpy as np, scipy.sparse as sp
    >>> rec = np.array([[3, 1, 2]])                    # ranks: item 3, item 1, item 2
    >>> rel = sp.csr_matrix(np.array([[0, 1, 0, 0]]))  # only item 1 is relevant
    >>> float(ndcg_at_k(rec, rel, 3)[0])               # hit at rank 2: (1/log2 3) / (1/log2 2)
    0.6309297535714575
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from contrec.errors import ConfigError

__all__ = ["hits", "precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "mrr_at_k", "hit_rate_at_k",
           "coverage", "mean_popularity", "METRICS"]


def _check(recommended: np.ndarray, relevant: sp.spmatrix, k: int) -> np.ndarray:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"k must be a positive integer (got {k!r})")
    recommended = np.asarray(recommended)
    if recommended.ndim != 2:
        raise ConfigError(f"recommended must be a 2-d [users, k] array (got shape {recommended.shape})")
    if recommended.shape[1] < k:
        raise ConfigError(f"recommended lists have {recommended.shape[1]} columns, fewer than k={k}")
    if relevant.shape[0] != recommended.shape[0]:
        raise ConfigError(f"recommended has {recommended.shape[0]} rows but relevant has {relevant.shape[0]}")
    return recommended[:, :k]


def hits(recommended: np.ndarray, relevant: sp.spmatrix, k: int) -> np.ndarray:
    """``[U, k]`` bool: is the item at each rank relevant. Vectorized via sorted row·n+item keys."""
    rec = _check(recommended, relevant, k)
    rel = sp.csr_matrix(relevant)
    n = rel.shape[1]
    rows = np.repeat(np.arange(rel.shape[0], dtype=np.int64), np.diff(rel.indptr))
    keys = np.sort(rows * n + rel.indices)
    query = np.arange(len(rec), dtype=np.int64)[:, None] * n + rec
    if len(keys) == 0:
        return np.zeros(rec.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return (keys[pos] == query) & (rec >= 0)


def _n_relevant(relevant: sp.spmatrix) -> np.ndarray:
    return np.diff(sp.csr_matrix(relevant).indptr).astype(np.float64)


def _per_user(values: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    out = values.astype(np.float64)
    out[n_rel == 0] = np.nan
    return out


def precision_at_k(recommended: np.ndarray, relevant: sp.spmatrix, k: int) -> np.ndarray:
    h = hits(recommended, relevant, k)
    return _per_user(h.sum(1) / k, _n_relevant(relevant))


def recall_at_k(recommended: np.ndarray, relevant: sp.spmatrix, k: int) -> np.ndarray:
    h = hits(recommended, relevant, k)
    n_rel = _n_relevant(relevant)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _per_user(h.sum(1) / np.minimum(k, n_rel), n_rel)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def ndcg_at_k(recommended: np.ndarray, relevant: sp.spmatrix, k: int) -> np.ndarray:
    h = hits(recommended, relevant, k)
    n_rel = _n_relevant(relevant)
    disc = _discounts(k)
    ideal = np.concatenate([[0.0], np.cumsum(disc)])[np.minimum(k, n_rel).astype(np.int64)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return _per_user((h * disc).sum(1) / ideal, n_rel)


def map_at_k(recommended: np.ndarray, relevant: sp.spmatrix, k: int) -> np.ndarray:
    h = hits(recommended, relevant, k)
    n_rel = _n_relevant(relevant)
    precision_at_i = np.cumsum(h, axis=1) / np.arange(1, k + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _per_user((precision_at_i * h).sum(1) / np.minimum(k, n_rel), n_rel)


def mrr_at_k(recommended: np.ndarray, relevant: sp.spmatrix, k: int) -> np.ndarray:
    h = hits(recommended, relevant, k)
    first = np.argmax(h, axis=1)
    return _per_user(np.where(h.any(1), 1.0 / (first + 1), 0.0), _n_relevant(relevant))


def hit_rate_at_k(recommended: np.ndarray, relevant: sp.spmatrix, k: int) -> np.ndarray:
    h = hits(recommended, relevant, k)
    return _per_user(h.any(1).astype(np.float64), _n_relevant(relevant))


def coverage(recommended: np.ndarray, n_items: int, k: int) -> float:
    """Share of the catalogue that appears in at least one user's top k."""
    rec = np.asarray(recommended)[:, :k]
    return float(len(np.unique(rec[rec >= 0])) / n_items) if n_items else 0.0


def mean_popularity(recommended: np.ndarray, item_popularity: np.ndarray, k: int) -> np.ndarray:
    """Per user, the mean popularity of the recommended items (popularity bias).

    ``item_popularity`` ``[n_items]`` is typically the share of training users who
    interacted with each item, so values are in [0, 1] and comparable across models.
    """
    rec = np.asarray(recommended)[:, :k]
    pop = np.asarray(item_popularity, dtype=np.float64)[np.maximum(rec, 0)]
    valid = rec >= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pop * valid).sum(1) / valid.sum(1)


METRICS = {
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "precision": precision_at_k,
    "map": map_at_k,
    "mrr": mrr_at_k,
    "hit_rate": hit_rate_at_k,
}
