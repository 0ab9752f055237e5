"""Towers that turn user or item ids into vectors.

Every tower is an `Encoder`: ``forward(ids, exclude=None) -> [B, dim]`` and ``encode_all()``
for the index, so the loss, the samplers and the index never need to know which tower
produced a vector. ``exclude`` lets a tower built from interactions leave one item out
(the history tower drops the row's own target from the user's history while training, or
the model would learn to find the target inside its input); ID towers ignore it.

Towers:
    `IdEncoder`       one learned vector per id.
    `FeatureEncoder`  item ID vector plus the mean of its attribute token vectors (genres,
                      year bucket, …); an item with no training interactions is its features
                      alone, so new items can be recommended.
    `HistoryEncoder`  a user is the pooled (mean or attention) vectors of the items they
                      interacted with, optionally plus a user ID vector; a user who was not
                      in training is encoded from any item list without retraining.
    `Projected`       an MLP projection head after any tower (used by the loss; retrieval can
                      use the head output or the tower output).

All randomness (initialisation, ID dropout, history dropout) comes from seeded generators,
so a fit is reproducible on CPU.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrec.errors import ConfigError
from contrec.nn.features import FeatureTokens
from contrec.registry import Registry

__all__ = ["Encoder", "IdEncoder", "FeatureEncoder", "HistoryEncoder", "Projected", "ENCODER_PRESETS",
           "segment_gather", "segment_sample", "serving_vectors", "history_tower"]

# Named tower combinations (model parameters they set), for `contrec fit --encoder` and `compare --encoders`.
ENCODER_PRESETS: Registry[dict[str, Any]] = Registry("encoder", {
    "id": {"user_tower": "id", "item_tower": "id"},
    "features": {"user_tower": "id", "item_tower": "features"},
    "history": {"user_tower": "history", "item_tower": "id", "pooling": "mean", "history_dropout": 0.5},
    "history-attention": {"user_tower": "history", "item_tower": "id", "pooling": "attention",
                          "history_dropout": 0.5},
    "history-features": {"user_tower": "history", "item_tower": "features", "pooling": "mean",
                         "history_dropout": 0.5},
    "history-ssl": {"user_tower": "history", "item_tower": "id", "pooling": "mean", "history_dropout": 0.5,
                    "ssl_weight": 0.1},
    "projection": {"user_tower": "id", "item_tower": "id", "projection": 128},
    "simplex": {"user_tower": "simplex", "item_tower": "id", "history_dropout": 0.5},
    "graph": {"user_tower": "graph", "item_tower": "graph"},
})


class Encoder(nn.Module):
    """Base of every tower: ``forward(ids [B], exclude=None) -> [B, dim]`` and ``encode_all()``.

    Everything the trainer and the model may call on a tower is declared here, with a default
    for towers that lack it (`tower_all`, `augmented_pair`, `history`).
    """

    dim: int
    n: int

    def forward(self, ids: Tensor, exclude: Tensor | None = None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        """Where the tower's tables live (`contrec.runtime.device`); a tower without parameters is on the CPU."""
        first = next(self.parameters(), None)
        return first.device if first is not None else torch.device("cpu")

    def encode_all(self, batch_size: int = 8192) -> Tensor:
        """Vectors of every entity, ``[n, dim]``, without gradients and without training noise, on the tower's device."""
        was_training = self.training
        self.eval()
        device = self.device
        try:
            with torch.no_grad():
                parts = [self(torch.arange(s, min(s + batch_size, self.n), device=device))
                         for s in range(0, self.n, batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(parts) if parts else torch.empty(0, self.dim, device=device)

    def tower_all(self, batch_size: int = 8192) -> Tensor:
        """The tower's own vectors before any projection head (`Projected`); here, `encode_all`."""
        return self.encode_all(batch_size)

    def augmented_pair(self, ids: Tensor, dropout: float) -> tuple[Tensor, Tensor]:
        """Two random views of each id (SSL); only towers built from histories have them."""
        raise ConfigError(f"{type(self).__name__} has no random views; ssl_weight needs user_tower='history'")

    def history(self) -> "HistoryEncoder | None":
        """The history tower inside this one (encodes users from item lists), or None."""
        return None

    def project(self, vectors: Tensor) -> Tensor:
        """The projection head applied to tower outputs ``[B, dim]``; no head: unchanged."""
        return vectors

    def without_head(self) -> "Encoder":
        """The tower itself, under any projection head (a graph tower is linked through it)."""
        return self

    def id_table(self) -> "nn.Embedding | None":
        """The one-vector-per-id table a spectral start may initialise; None for towers built otherwise."""
        return None

    def row_spaces(self) -> dict[str, str]:
        """Parameters with one row per entity, by state-dict name: ``"own"`` (this tower's users or items) or
        ``"item"`` (a table of items inside a user tower). A warm start (`contrec.models.warm`) maps their rows
        through the raw ids; every other parameter carries over as it is."""
        return {}


def serving_vectors(encoder: Encoder, serve_from: str = "head") -> Tensor:
    """The vectors retrieval uses: a projection head's output, or the tower's own with ``serve_from="tower"``."""
    return encoder.tower_all() if serve_from == "tower" else encoder.encode_all()


def cpu_rand(n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """``n`` uniform draws from a CPU generator, placed on ``device`` (a no-op on the CPU)."""
    return torch.rand(n, generator=generator).to(device, non_blocking=True)


def _normal(shape: tuple[int, ...], std: float, generator: torch.Generator | None) -> Tensor:
    return torch.empty(shape).normal_(0.0, std, generator=generator)


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
            self.embedding.weight.copy_(_normal((self.n, self.dim), init_std, generator))

    def forward(self, ids: Tensor, exclude: Tensor | None = None) -> Tensor:
        return self.embedding(ids)  # [B, dim]

    def id_table(self) -> nn.Embedding:
        return self.embedding

    def row_spaces(self) -> dict[str, str]:
        return {"embedding.weight": "own"}


def segment_gather(indptr: Tensor, indices: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    """The CSR entries of ``rows``, flattened: (values ``[T]``, segment = position in rows ``[T]``).

    Example:
        >>> indptr, indices = torch.tensor([0, 2, 2, 5]), torch.tensor([7, 8, 1, 2, 3])
        >>> [t.tolist() for t in segment_gather(indptr, indices, torch.tensor([2, 0, 1]))]
        [[1, 2, 3, 7, 8], [0, 0, 0, 1, 1]]
    """
    starts, ends = indptr[rows], indptr[rows + 1]
    lengths = ends - starts  # [B]
    device = indptr.device
    segment = torch.repeat_interleave(torch.arange(len(rows), device=device), lengths)  # [T]
    seg_start = torch.cumsum(lengths, 0) - lengths  # [B] where each row's block starts in the flat list
    positions = starts[segment] + torch.arange(len(segment), device=device) - seg_start[segment]
    return indices[positions], segment


def segment_sample(indptr: Tensor, indices: Tensor, rows: Tensor, cap: int, generator: torch.Generator
                   ) -> tuple[Tensor, Tensor]:
    """Like `segment_gather`, but a row with more than ``cap`` entries gives ``cap`` of them drawn at
    random (with replacement): a heavy user's history costs a training step no more than ``cap`` items.

    Example:
        >>> indptr, indices = torch.tensor([0, 2, 7]), torch.arange(7)
        >>> flat, seg = segment_sample(indptr, indices, torch.tensor([0, 1]), 3, torch.Generator().manual_seed(0))
        >>> flat[:2].tolist(), seg.tolist(), bool(((flat[2:] >= 2) & (flat[2:] < 7)).all())
        ([0, 1], [0, 0, 1, 1, 1], True)
    """
    starts, lengths = indptr[rows], indptr[rows + 1] - indptr[rows]
    take = lengths.clamp(max=cap)  # [B]
    device = indptr.device
    segment = torch.repeat_interleave(torch.arange(len(rows), device=device), take)  # [T]
    within = torch.arange(len(segment), device=device) - (torch.cumsum(take, 0) - take)[segment]
    long = lengths[segment] > cap
    # the noise comes from a CPU generator on every device: a seed draws the same sample everywhere
    drawn = (cpu_rand(len(segment), generator, device) * lengths[segment]).long()
    return indices[starts[segment] + torch.where(long, drawn, within)], segment


class FeatureEncoder(Encoder):
    """Item tower: ID vector + mean of the item's attribute token vectors.

    Items without training interactions (``known[i]`` False) never use their ID vector —
    it would be untrained noise — so their vector is their features alone. While
    training, each row's ID vector is also dropped with probability ``id_dropout``, so the
    feature part learns to stand in for the ID the way it must for a new item.

    Example:
        >>> import numpy as np
        >>> from contrec.nn.features import FeatureTokens
        >>> toks = FeatureTokens(np.array([0, 1, 3]), np.array([0, 0, 1]), ("g=a", "g=b"), ("g",))
        >>> enc = FeatureEncoder(2, 4, toks, known=np.array([True, False]), generator=torch.Generator().manual_seed(0))
        >>> enc(torch.tensor([0, 1])).shape
        torch.Size([2, 4])
    """

    def __init__(self, n: int, dim: int, tokens: FeatureTokens, known: np.ndarray, id_dropout: float = 0.2,
                 init_std: float = 0.1, generator: torch.Generator | None = None, seed: int = 0) -> None:
        super().__init__()
        if tokens.n_items != n:
            raise ConfigError(f"feature tokens cover {tokens.n_items} items, the catalogue has {n}")
        if not 0.0 <= id_dropout < 1.0:
            raise ConfigError(f"id_dropout must be in [0, 1) (got {id_dropout})")
        self.n, self.dim, self.id_dropout = int(n), int(dim), float(id_dropout)
        self.id = nn.Embedding(self.n, self.dim)
        self.tokens = nn.EmbeddingBag(max(len(tokens.vocabulary), 1), self.dim, mode="mean")
        with torch.no_grad():
            self.id.weight.copy_(_normal((self.n, self.dim), init_std, generator))
            self.tokens.weight.copy_(_normal(tuple(self.tokens.weight.shape), init_std, generator))
        self.register_buffer("indptr", torch.from_numpy(np.asarray(tokens.indptr, dtype=np.int64)), persistent=False)
        self.register_buffer("indices", torch.from_numpy(np.asarray(tokens.indices, dtype=np.int64)),
                             persistent=False)
        self.register_buffer("known", torch.from_numpy(np.asarray(known, dtype=bool)), persistent=False)
        self._noise = torch.Generator().manual_seed(int(seed) + 7919)

    def row_spaces(self) -> dict[str, str]:
        return {"id.weight": "own", "tokens.weight": "token"}

    def forward(self, ids: Tensor, exclude: Tensor | None = None) -> Tensor:
        flat, segment = segment_gather(self.indptr, self.indices, ids)
        offsets = torch.zeros(len(ids), dtype=torch.int64, device=ids.device)
        if len(ids) > 1:
            offsets[1:] = torch.cumsum(torch.bincount(segment, minlength=len(ids)), 0)[:-1]
        features = self.tokens(flat, offsets)  # [B, dim]; an item without tokens gets zeros
        keep = self.known[ids]
        if self.training and self.id_dropout > 0:
            keep = keep & (cpu_rand(len(ids), self._noise, ids.device) >= self.id_dropout)
        return features + self.id(ids) * keep[:, None].to(features.dtype)  # [B, dim]


class HistoryEncoder(Encoder):
    """User tower built from the items each user interacted with.

    ``u = pool({e_j : j in history(u)}) [+ user ID vector]`` with ``pool`` the mean or an
    attention pooling (softmax over ``e_j · w / √d`` with a learned w, so the tower can
    weight the informative items). The item input vectors ``e`` are the tower's own table.
    While training, the row's target item is left out of the history (``exclude``), and
    each history item is dropped with probability ``dropout`` (the tower then meets
    shorter histories like the ones new users bring).

    `encode_histories` encodes any item lists — users who were not in training.

    Example:
        >>> import scipy.sparse as sp, numpy as np
        >>> history = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 1]], dtype=np.float32))
        >>> enc = HistoryEncoder(history, 4, generator=torch.Generator().manual_seed(0))
        >>> enc(torch.tensor([0, 1])).shape
        torch.Size([2, 4])
    """

    def __init__(self, history: sp.csr_matrix, dim: int, pooling: str = "mean", user_id: bool = False,
                 dropout: float = 0.0, cap: int = 0, init_std: float = 0.1, generator: torch.Generator | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        if pooling not in ("mean", "attention"):
            raise ConfigError(f"pooling must be 'mean' or 'attention' (got {pooling!r})")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"history dropout must be in [0, 1) (got {dropout})")
        self.n, self.n_items = history.shape
        if not isinstance(cap, int) or cap < 0:
            raise ConfigError(f"history_cap must be a non-negative integer (got {cap!r})")
        self.dim, self.pooling, self.dropout, self.cap = int(dim), pooling, float(dropout), cap
        self.items = nn.Embedding(self.n_items, self.dim)
        with torch.no_grad():
            self.items.weight.copy_(_normal((self.n_items, self.dim), init_std, generator))
        self.query = nn.Parameter(_normal((self.dim,), 1.0 / math.sqrt(self.dim), generator)) \
            if pooling == "attention" else None
        self.user = None
        if user_id:
            self.user = nn.Embedding(self.n, self.dim)
            with torch.no_grad():
                self.user.weight.copy_(_normal((self.n, self.dim), init_std, generator))
        history = history.tocsr()
        self.register_buffer("indptr", torch.from_numpy(history.indptr.astype(np.int64)), persistent=False)
        self.register_buffer("indices", torch.from_numpy(history.indices.astype(np.int64)), persistent=False)
        self._noise = torch.Generator().manual_seed(int(seed) + 104729)

    def forward(self, ids: Tensor, exclude: Tensor | None = None) -> Tensor:
        return self._encode(ids, exclude, self.dropout if self.training else 0.0)

    def _encode(self, ids: Tensor, exclude: Tensor | None, dropout: float) -> Tensor:
        if self.training and self.cap:
            flat, segment = segment_sample(self.indptr, self.indices, ids, self.cap, self._noise)
        else:
            flat, segment = segment_gather(self.indptr, self.indices, ids)
        keep = torch.ones(len(flat), dtype=torch.bool, device=flat.device)
        if exclude is not None:
            keep &= flat != exclude[segment]
        if dropout > 0:
            keep &= cpu_rand(len(flat), self._noise, flat.device) >= dropout
        return self.combine(self.pool(flat[keep], segment[keep], len(ids)), ids)

    def combine(self, pooled: Tensor, ids: Tensor) -> Tensor:
        """The user vector from the pooled history ``[B, d]`` (plus the ID vector when the tower has one)."""
        return pooled if self.user is None else pooled + self.user(ids)

    def pool(self, items: Tensor, segment: Tensor, n_rows: int) -> Tensor:
        """Pool item input vectors per segment: ``[T] items, [T] segment -> [n_rows, dim]`` (empty → 0)."""
        if self.query is None:
            # one fused gather-and-mean (segments are in row order): ~12x faster than gathering [T, d] and
            # index_add on heavy histories, backward included; an empty bag is zeros
            count = torch.bincount(segment, minlength=n_rows)  # [n_rows]
            return F.embedding_bag(items, self.items.weight, torch.cumsum(count, 0) - count, mode="mean")
        e = self.items(items)  # [T, d]
        out = e.new_zeros(n_rows, self.dim)
        score = (e @ self.query) / math.sqrt(self.dim)  # [T]
        top = e.new_full((n_rows,), -math.inf).scatter_reduce(0, segment, score, "amax")
        w = torch.exp(score - top[segment].detach())  # [T], softmax numerators within each segment
        total = e.new_zeros(n_rows).index_add(0, segment, w).clamp(min=1e-12)
        return out.index_add(0, segment, e * (w / total[segment])[:, None])

    def history(self) -> "HistoryEncoder":
        return self

    def row_spaces(self) -> dict[str, str]:
        return {"items.weight": "item", **({"user.weight": "own"} if self.user is not None else {})}

    def encode_histories(self, history: sp.csr_matrix) -> Tensor:
        """Vectors for arbitrary item lists (rows of ``history`` ``[n, n_items]``); no user ID part."""
        history, device = history.tocsr(), self.device
        indptr = torch.from_numpy(history.indptr.astype(np.int64)).to(device)
        indices = torch.from_numpy(history.indices.astype(np.int64)).to(device)
        with torch.no_grad():
            flat, segment = segment_gather(indptr, indices, torch.arange(history.shape[0], device=device))
            return self.pool(flat, segment, history.shape[0])

    def augmented_pair(self, ids: Tensor, dropout: float) -> tuple[Tensor, Tensor]:
        """Two random views of each user's history (independent item dropout): an SSL positive pair."""
        return self._encode(ids, None, dropout), self._encode(ids, None, dropout)


class Projected(Encoder):
    """A tower followed by an MLP projection head ``Linear → ReLU → Linear``.

    The loss sees the head's output; `tower_all` gives the tower's own output, which
    retrieval may use instead (as SimCLR uses the representation before the head).

    Example:
        >>> enc = Projected(IdEncoder(5, 8), hidden=16, generator=torch.Generator().manual_seed(0))
        >>> enc(torch.tensor([1])).shape, enc.tower_all().shape
        (torch.Size([1, 8]), torch.Size([5, 8]))
    """

    def __init__(self, base: Encoder, hidden: int, out_dim: int | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.base, self.n = base, base.n
        self.dim = int(out_dim or base.dim)
        self.head = nn.Sequential(nn.Linear(base.dim, hidden), nn.ReLU(), nn.Linear(hidden, self.dim))
        with torch.no_grad():  # seeded He-uniform initialisation, as nn.Linear's default but reproducible
            for layer in (self.head[0], self.head[2]):
                bound = 1.0 / math.sqrt(layer.in_features)
                layer.weight.copy_(torch.empty(layer.weight.shape).uniform_(-bound, bound, generator=generator))
                layer.bias.copy_(torch.empty(layer.bias.shape).uniform_(-bound, bound, generator=generator))

    def forward(self, ids: Tensor, exclude: Tensor | None = None) -> Tensor:
        return self.head(self.base(ids, exclude))

    def tower_all(self, batch_size: int = 8192) -> Tensor:
        return self.base.encode_all(batch_size)

    def augmented_pair(self, ids: Tensor, dropout: float) -> tuple[Tensor, Tensor]:
        a, b = self.base.augmented_pair(ids, dropout)
        return self.head(a), self.head(b)

    def history(self) -> "HistoryEncoder | None":
        return self.base.history()

    def project(self, vectors: Tensor) -> Tensor:
        return self.head(vectors)

    def without_head(self) -> Encoder:
        return self.base

    def row_spaces(self) -> dict[str, str]:
        return {f"base.{name}": space for name, space in self.base.row_spaces().items()}


def history_tower(encoder: Encoder) -> HistoryEncoder | None:
    """The `HistoryEncoder` inside ``encoder`` (possibly under a projection head), else None."""
    return encoder.history()
