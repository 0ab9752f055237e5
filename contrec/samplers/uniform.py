"""Uniform negatives: every catalogue item equally likely, q(j) = 1 / n_items."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from contrec.samplers.base import BaseSampler

if TYPE_CHECKING:  # pragma: no cover
    pass

__all__ = ["UniformSampler"]


class UniformSampler(BaseSampler):
    """Draw items uniformly with replacement, shared across the batch.

    Drawing with replacement keeps q exact and cheap; a drawn item that is a known positive
    of a row's user is masked by the loss (accidental hit). With ``exclude_positives=True``
    each row draws uniformly from its user's non-positives instead: q(j | u) = 1/(n − |P_u|).

    Example:
        >>> import pandas as pd, torch
        >>> from contrec.data.interactions import Interactions
        >>> train = Interactions.from_frame(pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"]}))
        >>> neg = UniformSampler().fit(train).sample(torch.tensor([0]), torch.tensor([0]), 4,
        ...                                          torch.Generator().manual_seed(0))
        >>> neg.items.shape, float(neg.log_q[0].exp())
        (torch.Size([4]), 0.5)
    """

    name: ClassVar[str] = "uniform"

    def _item_log_q(self) -> Tensor:
        return torch.full((self.n_items_,), -math.log(self.n_items_), dtype=torch.float64)

    def _draw(self, users: Tensor, positives: Tensor, n: int, generator: torch.Generator) -> Tensor:
        return torch.randint(0, self.n_items_, (n,), generator=generator)  # [n]

    def _base_log_prob(self, users: Tensor, items: Tensor, positives: Tensor | None) -> Tensor:
        return torch.full(items.shape, -math.log(self.n_items_), dtype=torch.float64)
