"""Towers that turn user or item ids into vectors. All share the `Encoder` interface so the
loss, the samplers and the index never need to know which tower produced a vector.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Encoder", "IdEncoder"]


class Encoder(nn.Module):
    """Base of every tower: ``forward(ids [B]) -> [B, dim]`` and ``encode_all()`` for the index."""

    dim: int
    n: int

    def encode_all(self, batch_size: int = 8192) -> Tensor:
        """Vectors of every entity, ``[n, dim]``, without gradients."""
        with torch.no_grad():
            parts = [self(torch.arange(s, min(s + batch_size, self.n))) for s in range(0, self.n, batch_size)]
        return torch.cat(parts) if parts else torch.empty(0, self.dim)


class IdEncoder(Encoder):
    """One learned embedding per id.

    Initialised from N(0, init_std²): small random vectors, so that early cosine scores
    are near zero and every item starts with a similar share of the softmax.

    Example:
        >>> enc = IdEncoder(5, 8, generator=torch.Generator().manual_seed(0))
        >>> enc(torch.tensor([0, 4])).shape
        torch.Size([2, 8])
    """

    def __init__(self, n: int, dim: int, init_std: float = 0.1, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.n, self.dim = int(n), int(dim)
        self.embedding = nn.Embedding(self.n, self.dim)
        with torch.no_grad():
            self.embedding.weight.normal_(0.0, init_std, generator=generator)

    def forward(self, ids: Tensor) -> Tensor:
        return self.embedding(ids)  # [B, dim]
