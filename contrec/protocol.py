"""The evaluation protocol shared by `contrec demo`, the benchmarks and the comparison.

Positives are ratings ≥ ``min_rating``; users with fewer than ``min_user_positives`` are
dropped; each remaining user's positives are split at random, ``test_size`` held out,
with a fixed seed. Calling `protocol_split` with the same arguments anywhere gives the
same train/test pair, so the demo's numbers and the benchmark's can be compared.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from contrec.data.interactions import Interactions
from contrec.data.movielens import load_movielens
from contrec.data.splits import split_random

__all__ = ["Protocol", "protocol_split"]


@dataclass(frozen=True)
class Protocol:
    """The standard settings (see the module docstring)."""

    min_rating: float = 4.0
    min_user_positives: int = 5
    test_size: float = 0.2
    k: int = 20


def protocol_split(dataset: str = "ml-100k", seed: int = 0, data_dir: "str | os.PathLike[str] | None" = None,
                   protocol: Protocol = Protocol()) -> tuple[Interactions, Interactions]:
    """Load ``dataset`` and return (train, test) under ``protocol`` for one split seed."""
    data = load_movielens(dataset, data_dir, min_rating=protocol.min_rating)
    data = data.filter(min_user_interactions=protocol.min_user_positives)
    return split_random(data, test_size=protocol.test_size, seed=seed)
