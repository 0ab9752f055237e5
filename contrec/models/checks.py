"""Checks on the data a `ContrastiveRecommender` is fitted on: one-line errors and the ignored-weights warning."""

from __future__ import annotations

import numpy as np

from contrec.data.interactions import Interactions
from contrec.errors import DataError

__all__ = ["WEIGHTS_IGNORED", "IgnoredWeightsWarning", "weighted", "check_data"]

WEIGHTS_IGNORED = ("the interactions carry weights (e.g. play counts), but ContrastiveRecommender with "
                   "positive_weights='none' treats every positive alike; set positive_weights='log1p' (or "
                   "'linear', 'capped') to draw heavier positives more often — measure it: it helped with ratings "
                   "as weights and hurt with play counts (README, Weights that count)")


class IgnoredWeightsWarning(UserWarning):
    """Weights were given to a model that does not use them."""


def weighted(data: Interactions) -> bool:
    """Whether any positive has a weight other than 1 (a weight column, or duplicates summed)."""
    return bool(len(data.matrix.data)) and not bool(np.all(data.matrix.data == 1.0))


def check_data(train: Interactions, validation: Interactions | None) -> None:
    if not isinstance(train, Interactions):
        raise DataError(f"fit expects Interactions (got {type(train).__name__}); read data with "
                        "Interactions.from_csv / from_frame")
    if len(train) == 0:
        raise DataError("the training data has no positives")
    if validation is not None and not train.same_space(validation):
        raise DataError("validation does not share the training data's id maps; carve it with split_random")
