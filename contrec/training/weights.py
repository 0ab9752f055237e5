"""Weights that count: how often each positive is drawn in an epoch, as a function of its weight.

A log with weights (play counts, ratings taken as confidence) says some positives matter more.
With ``positive_weights`` other than ``"none"``, each epoch draws its N training rows with
replacement, row r with probability ∝ f(w_r):

    none     f(w) = 1             every positive once per epoch (a shuffle, the default)
    log1p    f(w) = log(1 + w)    heavy-tailed counts, tempered
    linear   f(w) = w             as often as the weight says
    capped   f(w) = min(w, q95)   linear up to the 95th percentile of the weights, so a handful of
                                  huge counts cannot take over the epoch

Drawing (not loss weighting) keeps every loss and sampler as it is; the in-batch candidates'
log q follows the draw (an item's batch frequency is its rows' share of f), so the correction
stays exact.

Example:
    >>> import numpy as np
    >>> draw_weights(np.array([1.0, 3.0, 1000.0]), "log1p").round(3).tolist()
    [0.693, 1.386, 6.909]
    >>> draw_weights(np.array([1.0, 1.0]), "none") is None
    True
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from contrec.errors import DataError

__all__ = ["POSITIVE_WEIGHTS", "draw_weights", "weighted_draw"]

POSITIVE_WEIGHTS = ("none", "log1p", "linear", "capped")


def draw_weights(weights: np.ndarray, how: str) -> np.ndarray | None:
    """f(w) per training row (float64), or None when every row is drawn once (``"none"``)."""
    if how == "none":
        return None
    w = np.asarray(weights, dtype=np.float64)
    if len(w) and (not np.isfinite(w).all() or (w <= 0).any()):
        raise DataError("positive_weights needs positive, finite weights (found "
                        f"{int((~np.isfinite(w) | (w <= 0)).sum())} that are not)")
    if how == "log1p":
        return np.log1p(w)
    if how == "capped" and len(w):
        return np.minimum(w, np.quantile(w, 0.95))
    return w


def weighted_draw(cdf: Tensor, n: int, generator: torch.Generator) -> Tensor:
    """``n`` row indices drawn with replacement from the cumulative weights ``cdf`` (float64, increasing)."""
    u = torch.rand(n, generator=generator, dtype=torch.float64) * cdf[-1]
    return torch.searchsorted(cdf, u, right=True).clamp_(max=len(cdf) - 1)
