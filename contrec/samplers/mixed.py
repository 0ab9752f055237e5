"""A weighted mixture of samplers, with the mixture's exact log q.

Draws are stratified: of n negatives, component k supplies ``n_k`` (its weight's share,
largest remainders rounded). The expected number of times item j appears is then
``Σ_k n_k q_k(j | u) = n · q_mix(j | u)`` with ``q_mix = Σ_k (n_k / n) q_k`` — the
mixture's probability, not any component's — and that is the log q reported for every
draw, whichever component produced it. Stratifying gives the same expectation as drawing
the component per draw, with less variance.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from contrec.errors import ConfigError
from contrec.samplers.base import BaseSampler, ModelSnapshot, Negatives, Scorer
from contrec.samplers.registry import SAMPLERS, get_sampler

if TYPE_CHECKING:  # pragma: no cover
    from contrec.data.interactions import Interactions

__all__ = ["MixedSampler"]


class MixedSampler(BaseSampler):
    """Mix samplers by weight, e.g. ``MixedSampler({"in-batch": 0.5, "popularity": 0.3, "hard": 0.2})``.

    Args:
        components: mapping name-or-sampler → weight, or a list of (sampler, weight) pairs;
            names are looked up in the registry with default parameters, or give
            ``{"name": ..., "weight": ..., **params}`` dicts in a list.

    Example:
        >>> MixedSampler({"uniform": 0.5, "popularity": 0.5})
        MixedSampler(uniform=0.5, popularity=0.5)
    """

    name: ClassVar[str] = "mixed"

    def __init__(self, components: "Mapping[Any, float] | Sequence[Any]" = (("uniform", 0.5), ("popularity", 0.5))
                 ) -> None:
        super().__init__(exclude_positives=False)
        pairs: list[tuple[Any, float]] = []
        items = components.items() if isinstance(components, Mapping) else components
        for entry in items:
            if isinstance(entry, Mapping):
                spec = dict(entry)
                if "name" not in spec or "weight" not in spec:
                    raise ConfigError(f"mixed sampler: a component needs 'name' and 'weight' (got {spec})")
                name, weight = spec.pop("name"), spec.pop("weight")
                pairs.append((get_sampler(name, **spec), float(weight)))
            else:
                sampler, weight = entry
                pairs.append((get_sampler(sampler) if isinstance(sampler, str) else sampler, float(weight)))
        if not pairs:
            raise ConfigError("mixed sampler: give at least one component")
        weights = np.array([w for _, w in pairs])
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise ConfigError(f"mixed sampler: weights must be ≥ 0 and not all 0 (got {weights.tolist()})")
        if any(isinstance(s, MixedSampler) for s, _ in pairs):
            raise ConfigError("mixed sampler: components cannot be mixed samplers themselves")
        self.components = [s for s, _ in pairs]
        self.weights = weights / weights.sum()
        refresh = [s.refresh_every for s in self.components if s.refresh_every]
        self.refresh_every = min(refresh) if refresh else None
        self.batch_proposal = any(s.batch_proposal for s in self.components)

    def params(self) -> dict[str, Any]:
        return {s.name: round(float(w), 6) for s, w in zip(self.components, self.weights)}

    def __repr__(self) -> str:
        return f"MixedSampler({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"

    def fit(self, train: "Interactions") -> "MixedSampler":
        for sampler in self.components:
            sampler.fit(train)
        super().fit(train)
        return self

    def bind(self, scorer: Scorer) -> None:
        for sampler in self.components:
            sampler.bind(scorer)

    def update(self, snapshot: ModelSnapshot) -> None:
        # The trainer calls this every `refresh_every` (the smallest component's) steps and at epoch ends.
        for sampler in self.components:
            if sampler.refresh_every:
                sampler.update(snapshot)

    def counts(self, n: int) -> np.ndarray:
        """How many of n draws each component supplies (largest-remainder rounding)."""
        raw = self.weights * n
        counts = np.floor(raw).astype(np.int64)
        order = np.argsort(-(raw - counts), kind="stable")
        counts[order[: n - counts.sum()]] += 1
        return counts

    def sample(self, users: Tensor, positives: Tensor, n: int, generator: torch.Generator) -> Negatives:
        self._check_fitted()
        parts, valids, per_row = [], [], False
        for sampler, n_k in zip(self.components, self.counts(n)):
            if n_k == 0:
                continue
            neg = sampler.sample(users, positives, int(n_k), generator)
            parts.append(neg.items)
            valids.append(neg.valid)
            # a rule component's proposal reaches a row only where the rule allows: q is per row
            per_row |= neg.items.dim() == 2 or sampler.forbids
        if per_row:
            parts = [p.expand(len(users), -1) if p.dim() == 1 else p for p in parts]
            valids = [None if v is None else (v.expand(len(users), -1) if v.dim() == 1 else v) for v in valids]
        items = torch.cat(parts, dim=-1)
        valid = None
        if any(v is not None for v in valids):
            valid = torch.cat([torch.ones(p.shape, dtype=torch.bool) if v is None else v
                               for p, v in zip(parts, valids)], dim=-1)
        return Negatives(items, self.log_prob(users, items, positives, n), valid)

    def log_prob(self, users: Tensor, items: Tensor, positives: Tensor | None = None,
                 n_draws: int | None = None) -> Tensor:
        """The mixture's per-draw log q: ``log Σ_k (n_k / n) q_k``, with the stratified counts n_k of
        ``n_draws`` draws (the weights themselves when ``n_draws`` is None)."""
        self._check_fitted()
        shares = self.weights if not n_draws else self.counts(n_draws) / n_draws
        terms = []
        for sampler, share in zip(self.components, shares):
            if share == 0:
                continue
            lp = sampler.log_prob(users, items, positives).double()
            if sampler.forbids and positives is not None:
                # draws the rule forbids are masked for the row, so they never reach its candidates
                lp = lp.expand(len(positives), -1) if lp.dim() == 1 else lp
                lp = lp.masked_fill(sampler.forbidden(users, positives, items), -math.inf)
            terms.append(math.log(share) + lp)
        if any(t.dim() == 2 for t in terms):
            rows = max(t.shape[0] for t in terms if t.dim() == 2)
            terms = [t.expand(rows, -1) if t.dim() == 1 else t for t in terms]
        return torch.logsumexp(torch.stack(terms), dim=0).float()

    def state(self) -> dict[str, np.ndarray]:
        out = super().state()
        for k, sampler in enumerate(self.components):
            out.update({f"c{k}.{key}": v for key, v in sampler.state().items()})
        return out

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        super().load_state({k: v for k, v in arrays.items() if not k.startswith("c")})
        for k, sampler in enumerate(self.components):
            prefix = f"c{k}."
            sampler.load_state({key[len(prefix):]: v for key, v in arrays.items() if key.startswith(prefix)})

    # the components hold their own state; BaseSampler's draw hooks are not used
    def _draw(self, users: Tensor, positives: Tensor, n: int, generator: torch.Generator) -> Tensor:
        raise NotImplementedError


SAMPLERS.register(MixedSampler.name, MixedSampler)
