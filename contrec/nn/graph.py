"""The graph tower: LightGCN propagation over the user–item graph of the training positives.

A user's vector is the mean of K + 1 layers ``e⁰, Âe⁰, …, Âᴷe⁰`` where ``e⁰`` are learned ID
vectors and ``Â = D^-½ A D^-½`` is the symmetric-normalised adjacency of the bipartite graph
(He et al., "LightGCN", SIGIR 2020); items alike. Propagation smooths each vector towards its
neighbours', which the softmax over IDs alone cannot do: a user with few positives borrows
from the items' other users.

The graph is bipartite, so one layer is two sparse products, ``users ← R̂ items`` and
``items ← R̂ᵀ users`` with ``R̂ = D_u^-½ R D_i^-½``. Both towers read the same propagated
tables: a `Propagation` computes them once per training step and hands each side its half.

A side that is not a graph tower (``item_tower="id"`` with ``user_tower="graph"``) still
lends its ID table as that side's layer 0 and is served unpropagated.

Example:
    >>> import numpy as np, scipy.sparse as sp
    >>> r = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    >>> g = torch.Generator().manual_seed(0)
    >>> users, items = GraphEncoder(2, 4, generator=g), GraphEncoder(3, 4, generator=g)
    >>> link_graph(users, items, r, layers=2)
    >>> users(torch.tensor([0, 1])).shape, items.encode_all().shape
    (torch.Size([2, 4]), torch.Size([3, 4]))
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from contrec.data.interactions import binary_matrix
from contrec.errors import ConfigError
from contrec.nn.encoders import Encoder, IdEncoder

__all__ = ["GraphEncoder", "Propagation", "link_graph", "normalized_adjacency"]


def normalized_adjacency(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """``D_u^-½ R D_i^-½`` of a binary users × items matrix (rows or columns without edges stay 0)."""
    r = binary_matrix(matrix)
    du = np.asarray(r.sum(axis=1)).ravel()
    di = np.asarray(r.sum(axis=0)).ravel()
    inv_u = np.where(du > 0, 1.0 / np.sqrt(np.maximum(du, 1.0)), 0.0).astype(np.float32)
    inv_i = np.where(di > 0, 1.0 / np.sqrt(np.maximum(di, 1.0)), 0.0).astype(np.float32)
    return sp.csr_matrix(sp.diags(inv_u) @ r @ sp.diags(inv_i), dtype=np.float32)


def _torch_csr(m: sp.csr_matrix) -> Tensor:
    with warnings.catch_warnings():  # "CSR support is in beta": the products used here are stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.from_numpy(m.indptr.astype(np.int64)),
                                       torch.from_numpy(m.indices.astype(np.int64)),
                                       torch.from_numpy(m.data.astype(np.float32)), size=m.shape,
                                       check_invariants=True)


class _SparseProduct(torch.autograd.Function):
    """``a @ x`` with the gradient ``aᵀ @ g`` from a stored transpose: torch's own CSR backward
    converts the matrix on every call (~40x slower on a MovieLens-sized graph)."""

    @staticmethod
    def forward(ctx, a: Tensor, a_t: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.a_t = a_t
        return a @ x

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor]:  # type: ignore[override]
        return None, None, ctx.a_t @ grad


class Propagation:
    """The propagated user and item tables of one graph, shared by both towers.

    Within a training step each side takes the tables once: the first side to ask computes them
    (with gradients), the other reuses them, so one step propagates once. Without gradients
    (serving, validation) the tables are reused while the weights are unchanged.
    """

    def __init__(self, matrix: sp.csr_matrix, layers: int) -> None:
        if layers < 1:
            raise ConfigError(f"graph_layers must be a positive integer (got {layers})")
        norm = normalized_adjacency(matrix)
        self.r, self.r_t = _torch_csr(norm), _torch_csr(norm.T.tocsr())
        self.n_users, self.n_items = norm.shape
        self.layers = int(layers)
        self.weights: tuple[Tensor, Tensor] | None = None
        self._cache: tuple[tuple[int, ...], Tensor, Tensor, set[str]] | None = None

    def to(self, device: torch.device) -> "Propagation":
        """Move the normalised graph where the towers train (`contrec.runtime.device`); returns self."""
        self.r, self.r_t = self.r.to(device), self.r_t.to(device)
        self._cache = None
        return self

    def bind(self, user_weight: Tensor, item_weight: Tensor) -> None:
        if user_weight.shape[0] != self.n_users or item_weight.shape[0] != self.n_items:
            raise ConfigError(f"the graph has {self.n_users} users × {self.n_items} items; the towers have "
                              f"{user_weight.shape[0]} × {item_weight.shape[0]}")
        self.weights = (user_weight, item_weight)

    def tables(self, side: str) -> Tensor:
        """The layer-mean vectors of every user (``side="user"``) or item, ``[n, dim]``."""
        if self.weights is None:
            raise ConfigError("a graph tower is used before link_graph connected it to the other tower")
        u0, i0 = self.weights
        key = (u0._version, i0._version, id(u0), id(i0), int(torch.is_grad_enabled()))
        cache = self._cache
        if cache is None or cache[0] != key or side in cache[3]:
            users, items = self._propagate(u0, i0)
            cache = self._cache = (key, users, items, set())
        if torch.is_grad_enabled():
            cache[3].add(side)  # taken by this side in this step: the next call of this side is a new step
        return cache[1] if side == "user" else cache[2]

    def _propagate(self, u: Tensor, i: Tensor) -> tuple[Tensor, Tensor]:
        sum_u, sum_i = u, i
        for _ in range(self.layers):
            u, i = (_SparseProduct.apply(self.r, self.r_t, i), _SparseProduct.apply(self.r_t, self.r, u))
            sum_u, sum_i = sum_u + u, sum_i + i
        scale = 1.0 / (self.layers + 1)
        return sum_u * scale, sum_i * scale


class GraphEncoder(IdEncoder):
    """ID vectors propagated over the user–item graph (LightGCN layer mean); see the module doc.

    Until `link_graph` connects it, it has no graph; the model does that when it builds both towers.
    """

    def __init__(self, n: int, dim: int, init_std: float = 0.1, generator: torch.Generator | None = None) -> None:
        super().__init__(n, dim, init_std=init_std, generator=generator)
        self.side = "user"
        self.propagation: Propagation | None = None  # a plain attribute: both towers share it

    def forward(self, ids: Tensor, exclude: Tensor | None = None) -> Tensor:
        if self.propagation is None:
            raise ConfigError("a graph tower is used before link_graph connected it to the other tower")
        # an embedding lookup, not tables[ids]: indexing's backward adds rows with atomics across threads
        # (last digits change from run to run); the embedding backward sums each row in a fixed order
        return torch.nn.functional.embedding(ids, self.propagation.tables(self.side))

    def encode_all(self, batch_size: int = 8192) -> Tensor:
        with torch.no_grad():
            return self.forward(torch.arange(self.n, device=self.device)).clone()


def link_graph(user_encoder: Encoder, item_encoder: Encoder, matrix: sp.csr_matrix, layers: int) -> None:
    """Connect graph towers to one `Propagation` over ``matrix`` (binary users × items).

    Nothing happens when neither tower is a graph tower. A graph tower needs the other side's
    ID table for its layer 0, so the other tower must be an ID or a graph tower.
    """
    user, item = user_encoder.without_head(), item_encoder.without_head()
    if not isinstance(user, GraphEncoder) and not isinstance(item, GraphEncoder):
        return
    for name, tower in (("user_tower", user), ("item_tower", item)):
        if not isinstance(tower, IdEncoder):
            raise ConfigError(f"a graph tower propagates over ID vectors: with a graph tower, {name} must be "
                              f"'id' or 'graph' (got a {type(tower).__name__})")
    propagation = Propagation(matrix, layers)
    propagation.bind(user.embedding.weight, item.embedding.weight)
    for side, tower in (("user", user), ("item", item)):
        if isinstance(tower, GraphEncoder):
            tower.side, tower.propagation = side, propagation
