"""The SimpleX user tower: a learned gate between the user's ID vector and the pooled history.

``u = g ⊙ e_u + (1 − g) ⊙ W·pool(history)`` with ``g = σ(a·[e_u; p] + b)`` one gate per user
(Mao et al., "SimpleX", CIKM 2021, use a fixed mixing weight; here the tower learns how much
each user's own vector is worth against what their items say — little for a user with a short,
noisy training history, more for one whose taste the items alone describe poorly).

A user who was not in training has no ID vector: `encode_histories` gives ``W·pool(items)``.

Example:
    >>> import numpy as np, scipy.sparse as sp
    >>> history = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 1]], dtype=np.float32))
    >>> enc = SimplexEncoder(history, 4, generator=torch.Generator().manual_seed(0))
    >>> enc(torch.tensor([0, 1])).shape, enc.encode_histories(history).shape
    (torch.Size([2, 4]), torch.Size([2, 4]))
"""

from __future__ import annotations

import scipy.sparse as sp
import torch
from torch import Tensor, nn

from contrec.nn.encoders import HistoryEncoder

__all__ = ["SimplexEncoder"]


class SimplexEncoder(HistoryEncoder):
    """ID vector and transformed mean-pooled history, mixed by a learned per-user gate (see the module doc)."""

    def __init__(self, history: sp.csr_matrix, dim: int, dropout: float = 0.0, cap: int = 0, init_std: float = 0.1,
                 generator: torch.Generator | None = None, seed: int = 0) -> None:
        super().__init__(history, dim, pooling="mean", user_id=True, dropout=dropout, cap=cap, init_std=init_std,
                         generator=generator, seed=seed)
        self.transform = nn.Linear(self.dim, self.dim, bias=False)
        self.gate = nn.Linear(2 * self.dim, 1)
        with torch.no_grad():
            # start as an even mix of the ID vector and the untransformed history mean
            self.transform.weight.copy_(torch.eye(self.dim))
            self.gate.weight.zero_()
            self.gate.bias.zero_()

    def combine(self, pooled: Tensor, ids: Tensor) -> Tensor:
        assert self.user is not None
        own, said = self.user(ids), self.transform(pooled)  # [B, d] each
        g = torch.sigmoid(self.gate(torch.cat([own, said], dim=1)))  # [B, 1]
        return g * own + (1.0 - g) * said

    def encode_histories(self, history: sp.csr_matrix) -> Tensor:
        with torch.no_grad():
            return self.transform(super().encode_histories(history))
