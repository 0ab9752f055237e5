"""Seeded synthetic interaction logs with power-law item popularity and user activity.

For benchmarks of speed and scale at sizes no bundled dataset has (1M, 5M, 25M
interactions), with the shape real logs have: a few items and users account for much of
the traffic. Item j's popularity weight is ``(j + 1)^−item_exponent`` and user u's
activity weight ``(u + 1)^−user_exponent`` (Zipf-like; MovieLens-1M is close to
item_exponent 0.8, user_exponent 0.6), each shuffled over the ids. To give models
something to learn, users and items fall into ``n_clusters`` taste groups and a share
``affinity`` of each user's draws come from their own group's items (popularity-weighted
within it); the rest from the whole catalogue.

Every pair is drawn vectorized (no Python loop per interaction or per user); duplicates
are removed, so the result has exactly ``n_interactions`` distinct (user, item) pairs.

Example:
    >>> data = synthetic_interactions(n_users=200, n_items=100, n_interactions=2_000, seed=0)
    >>> data.shape, len(data)
    ((200, 100), 2000)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from contrec.data.interactions import IdMap, Interactions
from contrec.errors import ConfigError

__all__ = ["synthetic_interactions", "synthetic_play_log"]


def synthetic_interactions(n_users: int, n_items: int, n_interactions: int, *, item_exponent: float = 0.8,
                           user_exponent: float = 0.6, n_clusters: int = 20, affinity: float = 0.7,
                           seed: int = 0) -> Interactions:
    """A seeded power-law log of ``n_interactions`` distinct (user, item) positives.

    Args:
        n_users, n_items: id space sizes (every user and item id exists, even without rows).
        n_interactions: distinct positives; at most half of n_users·n_items.
        item_exponent, user_exponent: Zipf exponents of item popularity and user activity.
        n_clusters: taste groups shared by users and items.
        affinity: share of draws from the user's own group.
        seed: the generator seed; same arguments → same data.
    """
    if min(n_users, n_items, n_interactions) < 1:
        raise ConfigError("n_users, n_items and n_interactions must be ≥ 1")
    if n_interactions > n_users * n_items // 2:
        raise ConfigError(f"{n_interactions} interactions do not fit sparsely in {n_users} × {n_items}; "
                          "ask for at most half of the matrix")
    if not 0.0 <= affinity <= 1.0 or n_clusters < 1:
        raise ConfigError("affinity must be in [0, 1] and n_clusters ≥ 1")
    rng = np.random.default_rng(seed)
    item_w = rng.permutation((np.arange(1, n_items + 1, dtype=np.float64)) ** -item_exponent)
    user_w = rng.permutation((np.arange(1, n_users + 1, dtype=np.float64)) ** -user_exponent)
    item_cluster = rng.integers(0, n_clusters, n_items)
    user_cluster = rng.integers(0, n_clusters, n_users)
    # items of each cluster, contiguous, with their cumulative popularity for inverse-CDF draws
    order = np.argsort(item_cluster, kind="stable")
    bounds = np.searchsorted(item_cluster[order], np.arange(n_clusters + 1))
    cum_in = np.cumsum(item_w[order])
    cum_all = np.cumsum(item_w)
    user_p = user_w / user_w.sum()

    keys = np.zeros(0, dtype=np.int64)
    needed = n_interactions
    while needed > 0:  # a few rounds at most: each draws with headroom for duplicates
        m = int(needed * 1.3) + 1024
        users = rng.choice(n_users, size=m, p=user_p)
        own = rng.random(m) < affinity
        items = np.empty(m, dtype=np.int64)
        # global draws: inverse CDF over all items
        g = ~own
        items[g] = np.searchsorted(cum_all, rng.random(int(g.sum())) * cum_all[-1], side="right")
        # in-cluster draws: inverse CDF within the cluster's slice of the sorted order
        c = user_cluster[users[own]]
        lo, hi = bounds[c], bounds[c + 1]
        empty = hi == lo  # a cluster without items falls back to the whole catalogue
        base = np.where(lo > 0, cum_in[np.maximum(lo - 1, 0)], 0.0)
        top = np.where(hi > 0, cum_in[np.maximum(hi - 1, 0)], 0.0)
        target = base + rng.random(len(c)) * (top - base)
        pos = np.clip(np.searchsorted(cum_in, target, side="right"), lo, np.maximum(hi - 1, lo))
        picked = order[np.minimum(pos, n_items - 1)]
        picked[empty] = np.searchsorted(cum_all, rng.random(int(empty.sum())) * cum_all[-1], side="right")
        items[own] = picked
        items = np.minimum(items, n_items - 1)
        keys = np.unique(np.concatenate([keys, users.astype(np.int64) * n_items + items]))
        needed = n_interactions - len(keys)
    keys = rng.choice(keys, n_interactions, replace=False) if len(keys) > n_interactions else keys
    keys.sort()
    user_codes, item_codes = keys // n_items, keys % n_items
    width_u, width_i = len(str(n_users - 1)), len(str(n_items - 1))
    users_map = IdMap(np.char.add("u", np.char.zfill(np.arange(n_users).astype(str), width_u)))
    items_map = IdMap(np.char.add("i", np.char.zfill(np.arange(n_items).astype(str), width_i)))
    return Interactions.from_codes(user_codes, item_codes, users_map, items_map)


def synthetic_play_log(n_users: int = 1892, n_items: int = 17632, n_rows: int = 92834, *, seed: int = 0
                       ) -> pd.DataFrame:
    """A play-count log shaped like Last.fm's ``user_artists.dat``: numeric ids, heavy-tailed counts.

    The defaults are that file's shape (1,892 users, 17,632 artists, 92,834 rows). Pairs come
    from `synthetic_interactions`; play counts are log-normal (median ≈ 250, a long tail into
    the hundreds of thousands, as in the real file). Ids are integers with gaps, as there.

    Returns:
        DataFrame with columns userID, artistID, weight (int64), one row per pair.

    Example:
        >>> log = synthetic_play_log(50, 200, 1000, seed=1)
        >>> list(log.columns), len(log)
        (['userID', 'artistID', 'weight'], 1000)
    """
    pairs = synthetic_interactions(n_users, n_items, n_rows, seed=seed)
    rng = np.random.default_rng([seed, 1])
    user_ids = np.sort(rng.choice(np.arange(2, 2 + 2 * n_users), n_users, replace=False))
    item_ids = np.sort(rng.choice(np.arange(1, 1 + 2 * n_items), n_items, replace=False))
    plays = np.maximum(1, np.round(np.exp(rng.normal(5.5, 1.6, len(pairs))))).astype(np.int64)
    return pd.DataFrame({"userID": user_ids[pairs.row_codes()], "artistID": item_ids[pairs.matrix.indices],
                         "weight": plays})
