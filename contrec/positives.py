"""Known-positive lookups shared by the trainer (accidental-hit masks) and the samplers (exclusion)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

__all__ = ["PositiveLookup"]


class PositiveLookup:
    """Is item j a known training positive of user u? Vectorized over whole batches.

    Example:
        >>> import scipy.sparse as sp, numpy as np, torch
        >>> lookup = PositiveLookup(sp.csr_matrix(np.array([[0, 1, 1], [1, 0, 0]])))
        >>> lookup.rowwise(torch.tensor([0, 1]), torch.tensor([[1, 0], [1, 0]])).tolist()
        [[True, False], [False, True]]
    """

    def __init__(self, matrix: sp.csr_matrix) -> None:
        self.matrix = sp.csr_matrix(matrix, dtype=np.float32)
        self.matrix.sort_indices()
        self.n_items = self.matrix.shape[1]
        rows = np.repeat(np.arange(self.matrix.shape[0], dtype=np.int64), np.diff(self.matrix.indptr))
        self._keys = torch.from_numpy(rows * self.n_items + self.matrix.indices.astype(np.int64))  # sorted
        self.counts = torch.from_numpy(np.diff(self.matrix.indptr).astype(np.int64))  # [n_users]

    def shared(self, users: Tensor, items: Tensor) -> Tensor:
        """``[B] × [M] -> [B, M]`` bool, via a CSR row/column slice (fast for shared candidates)."""
        sub = self.matrix[users.numpy()][:, items.numpy()]  # [B, M] sparse
        return torch.from_numpy(sub.toarray() > 0)

    def rowwise(self, users: Tensor, items: Tensor) -> Tensor:
        """``[B] × [B, M] -> [B, M]`` bool, via binary search of sorted user·n+item keys."""
        if len(self._keys) == 0:
            return torch.zeros(items.shape, dtype=torch.bool)
        query = users[:, None] * self.n_items + items  # [B, M]
        pos = torch.searchsorted(self._keys, query).clamp(max=len(self._keys) - 1)
        return self._keys[pos] == query

    def row_mass(self, item_probs: Tensor) -> Tensor:
        """Σ of ``item_probs`` ``[n_items]`` over each user's positives, ``[n_users]`` float64."""
        values = self.matrix.copy()
        values.data[:] = 1.0
        return torch.from_numpy(values.astype(np.float64) @ item_probs.double().numpy())
