"""A spectral start: ID vectors initialised from the top singular vectors of the interaction graph.

Contrastive learning on a similarity graph is spectral clustering in disguise (Tan et al., ICLR
2024): the InfoNCE optimum's directions are close to the top eigenvectors of the normalised
graph. Starting the ID tables there — users at ``U·√Σ``, items at ``V·√Σ`` of the truncated SVD
of ``D_u^-½ R D_i^-½`` (binary R, as LightGCN normalises it) — skips the epochs a random start
spends finding those directions; InfoNCE then refines them. The SVD is randomised (a few
sparse products with the matrix), so its cost grows with the number of interactions.

Example:
    >>> import numpy as np, scipy.sparse as sp
    >>> r = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]], dtype=np.float32))
    >>> users, items = spectral_vectors(r, 2, seed=0)
    >>> users.shape, items.shape
    ((3, 2), (4, 2))
    >>> bool(abs(users[0] @ users[1]) > 0.4 and abs(users[0] @ users[2]) < 1e-6)  # same taste, same direction
    True
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

__all__ = ["spectral_vectors", "spectral_start", "randomized_svd"]


def randomized_svd(matrix: sp.csr_matrix, k: int, seed: int, oversample: int = 10, power: int = 4
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top-``k`` singular triplets (U ``[m, k]``, S ``[k]``, Vt ``[k, n]``) of a sparse matrix.

    Halko, Martinsson & Tropp (2011): a random range, sharpened by ``power`` iterations, then an
    exact SVD of the small projected matrix. Deterministic for a seed.
    """
    m, n = matrix.shape
    width = min(k + oversample, m, n)
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(matrix @ rng.standard_normal((n, width)))
    for _ in range(power):  # orthonormalise each pass: the spectrum's decay would drown the small directions
        q, _ = np.linalg.qr(matrix.T @ q)
        q, _ = np.linalg.qr(matrix @ q)
    small = np.asarray((matrix.T @ q).T)  # [width, n]
    u_small, s, vt = np.linalg.svd(small, full_matrices=False)
    return (q @ u_small)[:, :k], s[:k], vt[:k]


def spectral_vectors(matrix: sp.csr_matrix, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Users' and items' spectral coordinates ``U·√Σ`` ``[n_users, k]`` and ``V·√Σ`` ``[n_items, k]``,
    k = min(dim, n_users, n_items), of the symmetric-normalised binary interaction matrix; users and
    items without interactions are all-zero rows."""
    binary = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    binary.data[:] = 1.0
    user_degree = np.asarray(binary.sum(axis=1)).ravel()
    item_degree = np.asarray(binary.sum(axis=0)).ravel()
    scale_u = np.divide(1.0, np.sqrt(user_degree), out=np.zeros_like(user_degree), where=user_degree > 0)
    scale_i = np.divide(1.0, np.sqrt(item_degree), out=np.zeros_like(item_degree), where=item_degree > 0)
    normalised = sp.csr_matrix(sp.diags(scale_u) @ binary @ sp.diags(scale_i))
    u, s, vt = randomized_svd(normalised, min(dim, *binary.shape), seed)
    root = np.sqrt(s)
    users, items = u * root, vt.T * root
    users[user_degree == 0] = 0.0  # exactly: the QR leaves rounding noise where the graph has nothing
    items[item_degree == 0] = 0.0
    return users, items


def spectral_start(table: nn.Embedding, vectors: np.ndarray) -> None:
    """Overwrite the rows of ``table`` that have a spectral position with ``vectors``, scaled to the
    table's current mean row norm (the random start's: the optimiser's steps keep their size). Rows
    without interactions — all-zero in ``vectors`` — and columns beyond the SVD's rank keep their
    random start."""
    weight = table.weight
    start = torch.as_tensor(vectors, dtype=weight.dtype)  # [n, k]
    rows = torch.nonzero(start.abs().sum(1) > 0).squeeze(1)
    if len(rows) == 0:
        return
    start = start[rows]
    norms = start.norm(dim=1).mean()
    start = start * (weight.detach()[rows].norm(dim=1).mean() / norms)
    with torch.no_grad():
        weight[rows, :start.shape[1]] = start
