"""The negative-sampler protocol: which unobserved items a batch contrasts against.

A sampler proposes items for the softmax's candidate set and reports ``log q`` — the log
probability that one draw proposes each returned item — so the loss can correct for the
sampler's bias (sampled softmax; Jean et al. 2015, Yi et al. 2019).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self

    from contrec.data.interactions import Interactions

__all__ = ["Negatives", "NegativeSampler"]


@dataclass(frozen=True)
class Negatives:
    """Sampled candidates.

    Attributes:
        items: LongTensor ``[n]`` shared by the whole batch, or ``[B, n]`` one row per example.
        log_q: same shape; log of the per-draw proposal probability of each item.
    """

    items: Tensor
    log_q: Tensor

    def __post_init__(self) -> None:
        if self.items.shape != self.log_q.shape:
            raise ValueError(f"items {tuple(self.items.shape)} and log_q {tuple(self.log_q.shape)} differ in shape")


@runtime_checkable
class NegativeSampler(Protocol):
    """Chooses negatives; registered by ``name`` in `contrec.samplers.SAMPLERS`."""

    name: ClassVar[str]

    def fit(self, train: "Interactions") -> "Self":
        """Learn what sampling needs (catalogue size, popularity tables …); returns self."""
        ...

    def sample(self, users: Tensor, positives: Tensor, n: int, generator: torch.Generator) -> Negatives:
        """Draw ``n`` negatives for a batch of ``users`` ``[B]`` with ``positives`` ``[B]``."""
        ...

    def log_prob(self, users: Tensor, items: Tensor) -> Tensor:
        """Per-draw log proposal probability of ``items`` (``[M]`` or ``[B, M]``) for ``users`` ``[B]``.

        The trainer needs it for candidates the sampler did not draw (the batch's own
        positives) to compute each candidate's expected count in the candidate set.
        """
        ...

    def update(self, item_vectors: Tensor, step: int) -> None:
        """See the current item vectors (hard-negative samplers refresh on it); others ignore it."""
        ...
