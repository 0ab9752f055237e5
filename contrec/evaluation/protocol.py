"""The evaluation protocol shared by `contrec demo`, the benchmarks and `contrec compare`.

Positives are ratings ≥ ``min_rating``; users with fewer than ``min_user_positives`` are
dropped; each remaining user's positives are split at random (``split="random"``, fixed
seed) or by time (``"temporal"``: each user's latest), ``test_size`` held out; metrics are
reported at every cutoff in ``k``. The same protocol and seed give the same train/test
pair everywhere, so the demo's numbers, the benchmarks' and a comparison's can be compared.

Example:
    >>> EvaluationProtocol()
    EvaluationProtocol(min_rating=4.0, min_user_positives=5, test_size=0.2, split='random', k=(10, 20))
    >>> EvaluationProtocol(split="by-user")
    Traceback (most recent call last):
    ...
    contrec.errors.ConfigError: protocol.split must be 'random' or 'temporal' (got 'by-user')
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from contrec.data import splits
from contrec.data.interactions import Interactions
from contrec.data.movielens import load_movielens
from contrec.errors import ConfigError, DataError

__all__ = ["EvaluationProtocol", "protocol_split", "SPLITS"]

SPLITS = ("random", "temporal")


@dataclass(frozen=True)
class EvaluationProtocol:
    """The standard settings (see the module docstring); validated when built."""

    min_rating: float | None = 4.0
    min_user_positives: int = 5
    test_size: float = 0.2
    split: str = "random"
    k: tuple[int, ...] = (10, 20)

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ConfigError(f"protocol.split must be 'random' or 'temporal' (got {self.split!r})")
        if not 0 < float(self.test_size) < 1:
            raise ConfigError(f"protocol.test_size must be a fraction in (0, 1) (got {self.test_size!r})")
        if not isinstance(self.min_user_positives, int) or self.min_user_positives < 2:
            raise ConfigError("protocol.min_user_positives must be an integer ≥ 2 (one to train on, one to test)")
        if not self.k or any(not isinstance(k, int) or k < 1 for k in self.k):
            raise ConfigError(f"protocol.k must be a list of positive integers (got {list(self.k)!r})")

    @property
    def headline_k(self) -> int:
        """The cutoff a single number is quoted at (NDCG@20 by default): the largest of ``k``."""
        return max(self.k)

    def eligible(self, data: Interactions, label: str = "the data") -> Interactions:
        """``data`` without the users who have too few positives; a one-line error if none is left."""
        kept = data.filter(min_user_interactions=self.min_user_positives)
        if len(kept) == 0:
            raise DataError(f"{label}: no user has ≥ {self.min_user_positives} positives; "
                            "lower protocol.min_user_positives")
        if self.split == "temporal" and kept.timestamps is None:
            raise DataError(f"{label}: a temporal split needs a timestamp column (data: timestamp: …)")
        return kept

    def split_data(self, data: Interactions, seed: int = 0) -> tuple[Interactions, Interactions]:
        """(train, test) of already `eligible` data for one split seed."""
        if self.split == "temporal":
            return splits.split_temporal(data, self.test_size)
        return splits.split_random(data, self.test_size, seed)


def protocol_split(dataset: str = "ml-100k", seed: int = 0, data_dir: "str | os.PathLike[str] | None" = None,
                   protocol: EvaluationProtocol = EvaluationProtocol()) -> tuple[Interactions, Interactions]:
    """Load ``dataset`` and return (train, test) under ``protocol`` for one split seed."""
    data = load_movielens(dataset, data_dir, min_rating=protocol.min_rating)
    return protocol.split_data(protocol.eligible(data, dataset), seed)
