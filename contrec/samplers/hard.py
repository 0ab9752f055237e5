"""Hard negatives: items the current model ranks high for the user.

Two variants:

* ``hard`` (`HardNegativeSampler`): every ``refresh_every`` steps (and at each epoch end)
  a FAISS index over the current item vectors gives every user's top-M items that are not
  known positives — exact top-M, positives excluded, users in batches. A draw then takes one
  of the row user's M candidates uniformly with probability 1 − ε, or a uniform catalogue
  item with probability ε (``uniform_share``, so training cannot collapse onto a few items):

      q(j | u) = (1 − ε) · [j ∈ H_u] / M + ε / n_items

  This q is exact for the candidate table in force, and the loss's logQ correction uses it.
  Before the first refresh (random vectors), draws are uniform.
* ``dynamic-hard`` (`DynamicHardSampler`, DNS, Zhang et al. 2013): each row scores a fresh
  uniform pool of C items with the current model and keeps its n highest-scoring
  non-positives. Keeping the top of a pool is a deterministic choice given the pool, so
  there is no per-draw proposal probability to correct; log q reports the pool's uniform
  proposal, −log n_items, so logQ corrects nothing and the hardness bias stays — on
  purpose: that bias is what a hard sampler is for.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from contrec.data.positives import RowSets
from contrec.errors import ConfigError, NotFittedError
from contrec.samplers.base import BaseSampler, ModelSnapshot, Scorer

if TYPE_CHECKING:  # pragma: no cover
    from contrec.data.interactions import Interactions

__all__ = ["HardNegativeSampler", "DynamicHardSampler"]


class HardNegativeSampler(BaseSampler):
    """Draw from each user's current top-M non-positive items, mixed with uniform draws.

    Args:
        top_m: candidates kept per user at each refresh.
        refresh_every: training steps between refreshes (epoch ends refresh too).
        uniform_share: ε, the share of draws taken uniformly from the catalogue.
        exclude_positives: also keep known positives out of the uniform share.

    Example:
        >>> HardNegativeSampler(top_m=50, refresh_every=100)
        HardNegativeSampler(top_m=50, refresh_every=100, uniform_share=0.5)
    """

    name: ClassVar[str] = "hard"

    def __init__(self, top_m: int = 100, refresh_every: int = 200, uniform_share: float = 0.5,
                 exclude_positives: bool = False) -> None:
        super().__init__(exclude_positives)
        if int(top_m) < 1:
            raise ConfigError(f"hard sampler: top_m must be ≥ 1 (got {top_m})")
        if int(refresh_every) < 1:
            raise ConfigError(f"hard sampler: refresh_every must be ≥ 1 (got {refresh_every})")
        if not 0.0 <= uniform_share <= 1.0:
            raise ConfigError(f"hard sampler: uniform_share must be in [0, 1] (got {uniform_share})")
        self.top_m, self.refresh_every, self.uniform_share = int(top_m), int(refresh_every), float(uniform_share)
        self.candidates_: Tensor | None = None  # [n_users, M], −1 padded
        self.refresh_seconds_: list[float] = []

    def params(self) -> dict[str, Any]:
        return {"top_m": self.top_m, "refresh_every": self.refresh_every, "uniform_share": self.uniform_share,
                **super().params()}

    def _fit(self, train: "Interactions") -> None:
        self._train_matrix = train.matrix
        self.candidates_ = None
        self._sizes = None
        self.refresh_seconds_ = []

    def update(self, snapshot: ModelSnapshot) -> None:
        """Recompute every user's top-M non-positive items with FAISS (exact)."""
        from contrec.serving.index import FaissIndex

        self._check_fitted()
        t0 = time.perf_counter()
        m = min(self.top_m, self.n_items_)
        index = FaissIndex(snapshot.metric).build(snapshot.item_vectors)
        ids, _ = index.search(snapshot.user_vectors, m, self._train_matrix)
        self._set_candidates(ids)
        self.refresh_seconds_.append(time.perf_counter() - t0)

    def _set_candidates(self, ids: np.ndarray) -> None:
        # H_u stays in rank order, valid entries first: −1 pads users with fewer than m non-positives.
        self.candidates_ = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64))  # [n_users, m]
        self._sizes = (self.candidates_ >= 0).sum(1)  # [n_users]
        valid = ids >= 0
        rows = np.broadcast_to(np.arange(len(ids))[:, None], ids.shape)[valid]
        self._table = RowSets(sp.csr_matrix((np.ones(len(rows), np.float32), (rows, ids[valid])),
                                            shape=(len(ids), self.n_items_)))

    def state(self) -> dict[str, np.ndarray]:
        out = super().state()
        if self.candidates_ is not None:
            out["candidates"] = self.candidates_.numpy().copy()
        return out

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        super().load_state(arrays)
        if "candidates" in arrays:
            self._set_candidates(np.array(arrays["candidates"]))

    def _draw(self, users: Tensor, positives: Tensor, n: int, generator: torch.Generator) -> Tensor:
        B = len(users)
        uniform = torch.randint(0, self.n_items_, (B, n), generator=generator)
        if self.candidates_ is None:
            return uniform
        sizes = self._sizes[users]  # [B]
        pick = (torch.rand(B, n, generator=generator) * sizes[:, None]).long()  # position in H_u
        hard = self.candidates_[users[:, None], pick.clamp(min=0)]
        take_hard = (torch.rand(B, n, generator=generator) >= self.uniform_share) & (sizes[:, None] > 0)
        return torch.where(take_hard, hard, uniform)  # [B, n]

    def _member(self, users: Tensor, items: Tensor) -> Tensor:
        """``[B, M]`` bool: is items[b, m] in H_{users[b]}?"""
        return self._table.rowwise(users, items)

    def _base_log_prob(self, users: Tensor, items: Tensor, positives: Tensor | None) -> Tensor:
        items = items if items.dim() == 2 else items.expand(len(users), -1)  # [B, M]
        if self.candidates_ is None:
            return torch.full(items.shape, -math.log(self.n_items_), dtype=torch.float64)
        sizes = self._sizes[users][:, None]  # [B, 1]; a user without candidates draws only uniformly
        eps = torch.where(sizes > 0, self.uniform_share, 1.0).double()
        hard = torch.where(sizes > 0, (1.0 - self.uniform_share) / sizes.clamp(min=1).double(), 0.0)
        return torch.log(eps / self.n_items_ + self._member(users, items) * hard)

    def _positive_mass(self, users: Tensor, positives: Tensor | None) -> Tensor:
        # H_u never holds a positive, so only the uniform share can propose one.
        if self.candidates_ is None:
            eps = torch.ones(len(users), dtype=torch.float64)
        else:
            eps = torch.where(self._sizes[users] > 0, self.uniform_share, 1.0).double()
        return eps * self.lookup_.counts[users].double() / self.n_items_

    def _redraw(self, users: Tensor, positives: Tensor, generator: torch.Generator) -> Tensor:
        return self._draw(users, positives, 1, generator)[:, 0]


class DynamicHardSampler(BaseSampler):
    """DNS: score a uniform pool of ``pool_size`` items per row, keep the n best non-positives.

    Needs the current model: the trainer binds a scorer (`bind`) before training.

    Example:
        >>> DynamicHardSampler(pool_size=64)
        DynamicHardSampler(pool_size=64)
    """

    name: ClassVar[str] = "dynamic-hard"

    def __init__(self, pool_size: int = 64) -> None:
        super().__init__(exclude_positives=False)
        if int(pool_size) < 1:
            raise ConfigError(f"dynamic-hard sampler: pool_size must be ≥ 1 (got {pool_size})")
        self.pool_size = int(pool_size)
        self._scorer: Scorer | None = None

    def params(self) -> dict[str, Any]:
        return {"pool_size": self.pool_size}

    def bind(self, scorer: Scorer) -> None:
        self._scorer = scorer

    def _draw(self, users: Tensor, positives: Tensor, n: int, generator: torch.Generator) -> Tensor:
        if self._scorer is None:
            raise NotFittedError("dynamic-hard sampler needs the model's scorer: the trainer binds it")
        B = len(users)
        pool = torch.randint(0, self.n_items_, (B, max(self.pool_size, n)), generator=generator)  # [B, C]
        with torch.no_grad():
            scores = self._scorer(users, pool).float()  # [B, C]
        scores = scores.masked_fill(self.lookup_.rowwise(users, pool), -math.inf)  # positives go last
        top = scores.topk(n, dim=1).indices  # [B, n]
        return pool.gather(1, top)

    def _base_log_prob(self, users: Tensor, items: Tensor, positives: Tensor | None) -> Tensor:
        return torch.full(items.shape, -math.log(self.n_items_), dtype=torch.float64)
