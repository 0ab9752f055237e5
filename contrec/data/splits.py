"""Per-user train/test splits that keep one id space, so results line up row by row.

Each user's positives are divided on their own (a user in train is a user in test), with
at least one positive left in train. Splits are vectorized and deterministic for a seed.
To carve a validation set from train, split train again:

    >>> train, test = split_random(data, test_size=0.2, seed=0)      # doctest: +SKIP
    >>> fit_part, validation = split_random(train, test_size=0.1, seed=1)  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from contrec.data.interactions import Interactions
from contrec.errors import ConfigError, DataError

__all__ = ["split_random", "split_temporal"]


def split_random(data: Interactions, test_size: float | int = 0.2, seed: int = 0
                 ) -> tuple[Interactions, Interactions]:
    """Hold out a random share of each user's positives.

    Args:
        data: the positives to split.
        test_size: a fraction in (0, 1) — each user with n positives gets ``round(n · test_size)``
            held out — or an int count per user (1 = leave-one-out).
        seed: numpy seed; the same seed gives the same split.

    Returns:
        (train, test) with the id maps of ``data``. A user always keeps ≥ 1 positive in
        train, so users with a single positive contribute nothing to test.

    Example:
        >>> import pandas as pd
        >>> d = Interactions.from_frame(pd.DataFrame({"user": list("aaaaabbbbb"), "item": list("vwxyzvwxyz")}))
        >>> train, test = split_random(d, test_size=0.2, seed=0)
        >>> len(train), len(test)
        (8, 2)
    """
    rng = np.random.default_rng(seed)
    return _split(data, test_size, rng.random(len(data)))


def split_temporal(data: Interactions, test_size: float | int = 0.2) -> tuple[Interactions, Interactions]:
    """Hold out each user's most recent positives (ties broken by item order).

    Same ``test_size`` rules as `split_random`; ``test_size=1`` is leave-last-one-out.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"user": ["a"] * 3, "item": ["x", "y", "z"], "t": [3, 1, 2]})
        >>> train, test = split_temporal(Interactions.from_frame(df, timestamp="t"), test_size=1)
        >>> test.to_frame()["item"].tolist()
        ['x']
    """
    if data.timestamps is None:
        raise DataError("split_temporal needs timestamps: read the data with timestamp='<column>' "
                        "(--timestamp), or use split_random")
    # Sort key: older first, so the newest land at the end of each user's run.
    return _split(data, test_size, -data.timestamps.astype(np.float64))


def _split(data: Interactions, test_size: float | int, key: np.ndarray) -> tuple[Interactions, Interactions]:
    counts = data.user_counts()
    if isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
        if test_size < 1:
            raise ConfigError(f"test_size must be ≥ 1 when it is a count (got {test_size})")
        n_test = np.full(len(counts), int(test_size))
    else:
        if not 0.0 < float(test_size) < 1.0:
            raise ConfigError(f"test_size must be a fraction in (0, 1) or a count ≥ 1 (got {test_size})")
        # floor(x + 0.5): half-up rounding, the same on every platform (np.round is half-to-even).
        n_test = np.floor(counts * float(test_size) + 0.5).astype(np.int64)
    n_test = np.minimum(n_test, np.maximum(counts - 1, 0))
    rows = data.row_codes()
    order = np.lexsort((key, rows))  # within each user, ascending key: the first n_test go to test
    starts = np.repeat(data.matrix.indptr[:-1], counts)
    rank = np.empty(len(data), dtype=np.int64)
    rank[order] = np.arange(len(data)) - starts
    in_test = rank < n_test[rows]
    return data.subset(~in_test), data.subset(in_test)
