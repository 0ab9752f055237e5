"""Uniform negatives: every catalogue item equally likely, q(j) = 1 / n_items."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from contrec.errors import NotFittedError
from contrec.samplers.base import Negatives

if TYPE_CHECKING:  # pragma: no cover
    from contrec.data.interactions import Interactions

__all__ = ["UniformSampler"]


class UniformSampler:
    """Draw ``n`` items uniformly with replacement, shared across the batch.

    Drawing with replacement keeps q exact and cheap; a drawn item that is a known positive
    of a row's user is masked by the loss (accidental hit), not re-drawn.

    Example:
        >>> import torch
        >>> from contrec.data.interactions import Interactions
        >>> import pandas as pd
        >>> train = Interactions.from_frame(pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"]}))
        >>> neg = UniformSampler().fit(train).sample(torch.tensor([0]), torch.tensor([0]), 4,
        ...                                          torch.Generator().manual_seed(0))
        >>> neg.items.shape, float(neg.log_q[0].exp())
        (torch.Size([4]), 0.5)
    """

    name: ClassVar[str] = "uniform"

    def __init__(self) -> None:
        self.n_items_: int | None = None

    def fit(self, train: "Interactions") -> "UniformSampler":
        self.n_items_ = train.n_items
        return self

    def sample(self, users: Tensor, positives: Tensor, n: int, generator: torch.Generator) -> Negatives:
        if self.n_items_ is None:
            raise NotFittedError("UniformSampler.sample called before fit")
        items = torch.randint(0, self.n_items_, (n,), generator=generator)  # [n]
        log_q = torch.full((n,), -math.log(self.n_items_))  # [n]
        return Negatives(items, log_q)

    def log_prob(self, users: Tensor, items: Tensor) -> Tensor:
        if self.n_items_ is None:
            raise NotFittedError("UniformSampler.log_prob called before fit")
        return torch.full(items.shape, -math.log(self.n_items_))

    def update(self, item_vectors: Tensor, step: int) -> None:
        return None

    def __repr__(self) -> str:
        return "UniformSampler()"
