"""In-batch negatives as a sampler: draws among the batch's own positives.

Batch positives are themselves drawn from the training interactions, so an item's chance
of being proposed is its share of training positives, p(j) = count_j / N — the "batch
frequency" the trainer also uses for its built-in in-batch candidates. As a sampler it
lets a `MixedSampler` give in-batch items an explicit share of the negatives budget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import Tensor

from contrec.errors import ConfigError
from contrec.samplers.base import BaseSampler

if TYPE_CHECKING:  # pragma: no cover
    from contrec.data.interactions import Interactions

__all__ = ["InBatchSampler"]


class InBatchSampler(BaseSampler):
    """Draw uniformly among the batch's positives; q(j) = p(j), the item's share of positives."""

    name: ClassVar[str] = "in-batch"

    def __init__(self) -> None:
        super().__init__(exclude_positives=False)

    def _fit(self, train: "Interactions") -> None:
        counts = train.item_counts().astype(np.float64)
        with np.errstate(divide="ignore"):
            self._log_q = torch.from_numpy(np.log(counts / counts.sum()))  # −inf: never a positive

    def _item_log_q(self) -> Tensor:
        return self._log_q

    def _draw(self, users: Tensor, positives: Tensor, n: int, generator: torch.Generator) -> Tensor:
        if len(positives) == 0:
            raise ConfigError("in-batch sampler needs a non-empty batch")
        return positives[torch.randint(0, len(positives), (n,), generator=generator)]  # [n]

    def _base_log_prob(self, users: Tensor, items: Tensor, positives: Tensor | None) -> Tensor:
        return self._log_q[items]
