"""Popularity negatives: q(j) ∝ (count_j + smoothing)^α."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from contrec.errors import ConfigError
from contrec.samplers.base import BaseSampler

if TYPE_CHECKING:  # pragma: no cover
    from contrec.data.interactions import Interactions

__all__ = ["PopularitySampler"]


class PopularitySampler(BaseSampler):
    """Draw items in proportion to a power of their training popularity, shared across the batch.

    α = 0 is uniform, α = 0.75 the word2vec-style default, α = 1 the unigram distribution.
    ``smoothing`` (default 1) keeps items without training positives drawable. Popular items
    are more often true negatives for a user who has not chosen them, and more informative;
    the logQ correction keeps the softmax an unbiased estimate despite the skew.

    Example:
        >>> PopularitySampler(alpha=1.0)
        PopularitySampler(alpha=1.0)
    """

    name: ClassVar[str] = "popularity"

    def __init__(self, alpha: float = 0.75, smoothing: float = 1.0, exclude_positives: bool = False) -> None:
        super().__init__(exclude_positives)
        if not np.isfinite(alpha) or alpha < 0:
            raise ConfigError(f"popularity sampler: alpha must be ≥ 0 (got {alpha})")
        if not np.isfinite(smoothing) or smoothing < 0:
            raise ConfigError(f"popularity sampler: smoothing must be ≥ 0 (got {smoothing})")
        self.alpha, self.smoothing = float(alpha), float(smoothing)

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"alpha": self.alpha}
        if self.smoothing != 1.0:
            out["smoothing"] = self.smoothing
        return {**out, **super().params()}

    def _fit(self, train: "Interactions") -> None:
        weights = (train.item_counts().astype(np.float64) + self.smoothing) ** self.alpha
        weights[(train.item_counts() + self.smoothing) == 0] = 0.0  # 0^0 would count an unseen item
        if weights.sum() <= 0:
            raise ConfigError("popularity sampler: every item has zero weight; use smoothing > 0")
        probs = weights / weights.sum()
        self._log_q = torch.from_numpy(np.log(probs))  # [n_items] float64, −inf for weight 0
        self._cdf = torch.from_numpy(np.cumsum(probs))  # [n_items]
        self._cdf[-1] = 1.0

    def _item_log_q(self) -> Tensor:
        return self._log_q

    def _draw(self, users: Tensor, positives: Tensor, n: int, generator: torch.Generator) -> Tensor:
        u = torch.rand(n, generator=generator, dtype=torch.float64)  # inverse CDF: O(n log n_items)
        return torch.searchsorted(self._cdf, u, right=True).clamp(max=self.n_items_ - 1)

    def _base_log_prob(self, users: Tensor, items: Tensor, positives: Tensor | None) -> Tensor:
        return self._log_q[items]
