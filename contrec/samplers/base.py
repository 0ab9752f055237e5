"""The negative-sampler protocol, and the base class that gives every sampler exclusion of known positives.

A sampler proposes items for the softmax's candidate set and reports ``log q`` — the log
probability that one draw proposes each returned item — so the loss can correct for the
sampler's bias (sampled softmax; Jean et al. 2015, Yi et al. 2019).

Exclusion (``exclude_positives=True``) turns a proposal q into q restricted to the user's
non-positives: ``q(j | u) = q(j) / (1 − Q_u)`` for j not a known positive of u, with
``Q_u`` the proposal mass of u's positives. It is drawn by vectorized rejection: every draw
that hit a positive is redrawn, all such draws at once, for at most ``max_rounds`` rounds.
Draws still unresolved then (only users whose positives hold nearly all the mass) are
marked invalid — the loss leaves them out — and counted in ``stats_["unresolved"]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from contrec.data.positives import PositiveLookup
from contrec.errors import NotFittedError

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self

    from contrec.data.interactions import Interactions

__all__ = ["Negatives", "NegativeSampler", "ModelSnapshot", "BaseSampler", "Scorer"]

Scorer = Callable[[Tensor, Tensor], Tensor]  # (users [B], items [B, C]) -> scores [B, C], no grad


@dataclass(frozen=True)
class Negatives:
    """Sampled candidates.

    Attributes:
        items: LongTensor ``[n]`` shared by the whole batch, or ``[B, n]`` one row per example.
        log_q: same shape; log of the per-draw proposal probability of each item.
        valid: optional bool, same shape as items, or ``[B, n]`` over shared items (a row-wise
            mask: a shared draw some rows may use and others not); False marks a draw the
            loss must ignore for that row (a rule forbids it or left no candidate and the
            fallback is "skip", or exclusion could not resolve it).
    """

    items: Tensor
    log_q: Tensor
    valid: Tensor | None = None

    def __post_init__(self) -> None:
        if self.items.shape != self.log_q.shape:
            raise ValueError(f"items {tuple(self.items.shape)} and log_q {tuple(self.log_q.shape)} differ in shape")
        if self.valid is not None and self.valid.shape != self.items.shape and \
                not (self.items.dim() == 1 and self.valid.dim() == 2 and self.valid.shape[1] == len(self.items)):
            raise ValueError("valid must have the shape of items, or [B, n] over shared items [n]")


@dataclass(frozen=True)
class ModelSnapshot:
    """The model's current vectors, as FAISS sees them (after the similarity's ``prepare``)."""

    user_vectors: np.ndarray  # [n_users, d] float32
    item_vectors: np.ndarray  # [n_items, d] float32
    metric: Literal["ip", "l2"]
    step: int


@runtime_checkable
class NegativeSampler(Protocol):
    """Chooses negatives; registered by ``name`` in `contrec.samplers.SAMPLERS`.

    Everything the trainer (and `MixedSampler`) may call is declared here; `BaseSampler`
    gives each optional capability a documented no-op default, so a new sampler subclasses
    it and overrides only what it has. Nothing is probed with ``hasattr``.
    """

    name: ClassVar[str]
    refresh_every: int | None  # steps between `update` calls; None = never
    forbids: bool  # whether `forbidden` can forbid anything (domain rules): the proposal then depends on the row
    mask_in_batch: bool  # whether the trainer masks the in-batch candidates `forbidden` names, too
    batch_proposal: bool  # whether a shared draw's q depends on the batch's users (hard's pooled tables)

    def fit(self, train: "Interactions") -> "Self":
        """Learn what sampling needs (catalogue size, popularity tables …); returns self."""
        ...

    def sample(self, users: Tensor, positives: Tensor, n: int, generator: torch.Generator) -> Negatives:
        """Draw ``n`` negatives for a batch of ``users`` ``[B]`` with ``positives`` ``[B]``."""
        ...

    def log_prob(self, users: Tensor, items: Tensor, positives: Tensor | None = None,
                 n_draws: int | None = None) -> Tensor:
        """Per-draw log proposal probability of ``items`` (``[M]`` or ``[B, M]``) for ``users`` ``[B]``.

        The trainer needs it for candidates the sampler did not draw (the batch's own
        positives) to compute each candidate's expected count in the candidate set.
        Samplers whose proposal depends on the row's positive (domain rules) use ``positives``;
        ``n_draws`` is the number of draws the proposal is used for (a stratified mixture's
        shares depend on it; None = the limit of many draws).
        """
        ...

    def update(self, snapshot: ModelSnapshot) -> None:
        """See the model's current vectors (hard-negative samplers refresh on them)."""
        ...

    def bind(self, scorer: Scorer) -> None:
        """Receive a scorer of the live model (samplers that rank a pool of candidates)."""
        ...

    def forbidden(self, users: Tensor, positives: Tensor, items: Tensor) -> Tensor:
        """``[B, M]`` bool: the candidates (``[M]`` or ``[B, M]``) a rule forbids as negatives of each row."""
        ...

    def allowed_log_q(self, items: Tensor) -> Tensor | None:
        """``[M]`` log q of shared draws for the rows whose rule allows them, when that is the only way a
        row's proposal differs from another's (the rule forbids the rest: q = 0); None otherwise. The
        trainer then merges a step's repeated candidates with two values per item instead of a row's own."""
        ...

    def state(self) -> dict[str, np.ndarray]:
        """What a training checkpoint must keep beyond ``fit``, as plain arrays."""
        ...

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore `state` (after ``fit`` on the same data)."""
        ...

    def params(self) -> dict[str, Any]:
        """Constructor parameters, for repr and saved model files."""
        ...


class BaseSampler:
    """Shared machinery: fitted state, exclusion of known positives, statistics.

    Subclasses implement ``_fit(train)``, ``_draw(users, positives, n, generator)`` (items
    ``[n]`` shared or ``[B, n]`` per row, from the *unrestricted* proposal) and
    ``_base_log_prob(users, items, positives)``; for exclusion they also provide
    ``_positive_mass(users, positives)`` (the proposal mass of each row user's positives)
    unless ``_item_log_q()`` gives an item-only proposal, from which it is derived.
    """

    name: ClassVar[str] = "base"
    refresh_every: int | None = None  # never refreshed on the model's vectors
    forbids: bool = False  # no rule: `forbidden` forbids nothing
    mask_in_batch: bool = False
    batch_proposal: bool = False
    max_rounds: int = 64

    def __init__(self, exclude_positives: bool = False) -> None:
        self.exclude_positives = bool(exclude_positives)
        self.n_items_: int | None = None
        self.stats_: dict[str, float] = {}

    # ---------------------------------------------------------------- to implement
    def _fit(self, train: "Interactions") -> None:
        return None

    def _draw(self, users: Tensor, positives: Tensor, n: int, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def _base_log_prob(self, users: Tensor, items: Tensor, positives: Tensor | None) -> Tensor:
        raise NotImplementedError

    def _item_log_q(self) -> Tensor | None:
        """``[n_items]`` log q when the proposal does not depend on the row; else None."""
        return None

    def _shared_proposal(self) -> bool:
        """Whether a shared draw's q is the same for every row of the batch (it may depend on the
        batch as a whole, `batch_proposal`: ``_base_log_prob(users, items[M])`` then gets the whole batch's users)."""
        return self.batch_proposal or self._item_log_q() is not None

    def _positive_mass(self, users: Tensor, positives: Tensor | None) -> Tensor:
        """``[B]`` proposal mass of each row user's known positives (for exclusion)."""
        if self._user_mass is None:
            raise NotImplementedError(f"{type(self).__name__} does not support exclude_positives")
        return self._user_mass[users]

    # ---------------------------------------------------------------- protocol
    def fit(self, train: "Interactions") -> "Self":
        self.n_items_ = train.n_items
        self.lookup_ = PositiveLookup(train.matrix)
        self.stats_ = {"draws": 0.0, "redraws": 0.0, "unresolved": 0.0}
        self._fit(train)
        item_log_q = self._item_log_q()
        self._user_mass = None if item_log_q is None else self.lookup_.row_mass(item_log_q.double().exp())
        return self

    def _check_fitted(self) -> None:
        if self.n_items_ is None:
            raise NotFittedError(f"{type(self).__name__} used before fit")

    def sample(self, users: Tensor, positives: Tensor, n: int, generator: torch.Generator) -> Negatives:
        self._check_fitted()
        if not self.exclude_positives:
            items = self._draw(users, positives, n, generator)
            self.stats_["draws"] += items.numel()
            return Negatives(items, self.log_prob(users, items, positives))
        items = self._draw(users, positives, n, generator)
        if items.dim() == 1:  # per-row draws are needed: each row excludes its own user's positives
            items = self._draw(users, positives, n * len(users), generator).reshape(len(users), n)
        valid = torch.ones(items.shape, dtype=torch.bool)
        hit = self.lookup_.rowwise(users, items)
        rounds = 0
        while bool(hit.any()) and rounds < self.max_rounds:
            rows, cols = hit.nonzero(as_tuple=True)
            items[rows, cols] = self._redraw(users[rows], positives[rows], generator)
            self.stats_["redraws"] += len(rows)
            hit[rows, cols] = self.lookup_.pairs(users[rows], items[rows, cols])
            rounds += 1
        if bool(hit.any()):
            valid &= ~hit
            self.stats_["unresolved"] += float(hit.sum())
        self.stats_["draws"] += items.numel()
        return Negatives(items, self.log_prob(users, items, positives), valid)

    def _redraw(self, users: Tensor, positives: Tensor, generator: torch.Generator) -> Tensor:
        """One fresh unrestricted draw per row (rows from different users)."""
        if self._item_log_q() is not None:
            return self._draw(users, positives, len(users), generator)
        return self._draw(users, positives, 1, generator)[:, 0]

    def log_prob(self, users: Tensor, items: Tensor, positives: Tensor | None = None,
                 n_draws: int | None = None) -> Tensor:
        """Log q of ``items`` ``[M]`` (shared) or ``[B, M]``; shape ``[M]`` only for a shared,
        row-independent proposal, else ``[B, M]``. float32. One draw's q does not depend on
        how many are drawn, so ``n_draws`` is not used here."""
        self._check_fitted()
        if items.dim() == 1 and self._shared_proposal() and not self.exclude_positives:
            return self._base_log_prob(users, items, None).float()  # [M]
        if items.dim() == 1:
            items = items.expand(len(users), -1)  # [B, M]
        log_q = self._base_log_prob(users, items, positives)  # [B, M] float64 (or float32 where exact)
        if self.exclude_positives:
            mass = self._positive_mass(users, positives).clamp(max=1 - 1e-9)  # [B]
            log_q = (log_q - torch.log1p(-mass)[:, None]).masked_fill(self.lookup_.rowwise(users, items), -math.inf)
        return log_q.float()

    def update(self, snapshot: ModelSnapshot) -> None:
        """No-op: the proposal does not follow the model (``refresh_every`` is None)."""
        return None

    def bind(self, scorer: Scorer) -> None:
        """No-op: the proposal does not score candidates with the live model."""
        return None

    def forbidden(self, users: Tensor, positives: Tensor, items: Tensor) -> Tensor:
        """Nothing is forbidden (``forbids`` is False): ``[B, M]`` all False."""
        cols = items.shape[-1]
        return torch.zeros((len(users), cols), dtype=torch.bool)

    def allowed_log_q(self, items: Tensor) -> Tensor | None:
        """None: without a rule, an item-only proposal is `log_prob`'s ``[M]`` answer already."""
        return None

    def state(self) -> dict[str, np.ndarray]:
        """What a training checkpoint must keep beyond ``fit``: the statistics (and, in
        subclasses, tables built from the model during training), as plain arrays."""
        return {f"stats.{k}": np.asarray(v, dtype=np.float64) for k, v in self.stats_.items()}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore `state` (after ``fit`` on the same data)."""
        for key, value in arrays.items():
            if key.startswith("stats."):
                self.stats_[key[len("stats."):]] = float(value)

    def params(self) -> dict[str, Any]:
        """Constructor parameters, for repr and saved configs."""
        return {"exclude_positives": self.exclude_positives} if self.exclude_positives else {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"
