"""The domain-rule sampler: negatives chosen or forbidden by rules over item attributes (`contrec.rules`).

Sampling is vectorized: items with identical values of the rule's attributes form groups;
for each group the allowed items are computed once at fit time (bitset comparisons over
the whole catalogue, chunked), stored as one CSR table, and a draw for a row whose
positive is in group g is ``allowed[g][⌊U · |A_g|⌋]``. The proposal is uniform over
``A_g``, so ``q(j | i) = 1 / |A_g|`` exactly (per positive). When a rule leaves no
candidate for a positive, ``fallback="uniform"`` draws from the whole catalogue
(q = 1/n) and ``"skip"`` gives that row no sampled negatives; ``stats_["fallback_rows"]``
counts how often either happened.

The rule governs the sampled negatives. The batch's other positives (in-batch
candidates) stay negatives whatever the rule says, unless ``mask_in_batch=True``: then the
trainer also masks the in-batch candidates `DomainRuleSampler.forbidden` names, so the rule
holds for every negative. On ml-100k that costs about 0.05 NDCG@20 with
``disjoint(genres)`` (the in-batch negatives that share a genre are the ones that teach
the model to rank within a genre); it is there for rules that must hold strictly.

``draw="shared"`` (the default) trades the exact count for speed: the batch shares one
uniform draw of n items from the whole catalogue, and the rule becomes a per-row mask over
them (a draw a row's rule forbids is left out of that row's softmax, as `Negatives.valid`
says). Each row's valid draws are still uniform over its allowed set, and every allowed
candidate has the expected count n/|catalogue| that ``log q = −log |catalogue|`` states
(``log_prob`` reports −inf where the rule forbids, so an in-batch candidate the row's rule
forbids is corrected for its in-batch count alone), so the logQ correction stays exact; a
row keeps on average n·|A_g|/|catalogue| negatives instead of n. Shared candidates cost one matmul per batch
instead of a per-row gather (benchmarks/throughput.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import Tensor

from contrec.data.positives import RowSets
from contrec.errors import ConfigError, DataError
from contrec.rules import AttributeTable, Rule, load_rule, parse_rule
from contrec.samplers.base import BaseSampler, Negatives

if TYPE_CHECKING:  # pragma: no cover
    from contrec.data.interactions import Interactions

__all__ = ["DomainRuleSampler"]

MAX_ALLOWED_ENTRIES = 200_000_000  # allowed-table size limit (int32 entries ≈ 800 MB)


class DomainRuleSampler(BaseSampler):
    """Negatives drawn uniformly among the items a rule allows for each row's positive.

    Args:
        rule: a rule string, dict, `Rule`, or the path of a JSON/YAML rule file.
        fallback: ``"uniform"`` or ``"skip"`` when the rule allows nothing for a positive.
        attributes: item attribute table indexed by raw item id; default: the training
            data's ``item_attributes`` (MovieLens: title, year, genres).
        separator: splits multi-valued string attributes.
        exclude_positives: also keep the row user's known positives out of the draws
            (draws per row; without it known positives are masked as accidental hits).
        draw: ``"per-row"`` (each row gets n draws from its allowed set) or ``"shared"``
            (one uniform draw of n items for the batch, the rule as a per-row mask; about
            2x faster than per-row). Default: shared, or per-row with ``exclude_positives``.
        mask_in_batch: also mask the in-batch candidates the rule forbids (the rule then
            holds for every negative; see the module notes for its cost in accuracy).

    Example:
        >>> DomainRuleSampler("disjoint(genres)")
        DomainRuleSampler(rule='disjoint(genres)', fallback='uniform', draw='shared')
    """

    name: ClassVar[str] = "domain-rule"
    forbids: bool = True

    def __init__(self, rule: "str | Mapping[str, Any] | Rule" = "disjoint(genres)", fallback: str = "uniform",
                 attributes: pd.DataFrame | None = None, separator: str = "|",
                 exclude_positives: bool = False, draw: str | None = None, mask_in_batch: bool = False) -> None:
        super().__init__(exclude_positives)
        if draw is None:
            draw = "per-row" if exclude_positives else "shared"
        if draw not in ("per-row", "shared"):
            raise ConfigError(f"domain-rule draw must be 'per-row' or 'shared' (got {draw!r})")
        if draw == "shared" and exclude_positives:
            raise ConfigError("domain-rule draw='shared' cannot exclude each row's positives; use draw='per-row' "
                              "(without exclusion, drawn positives are masked as accidental hits)")
        self.draw = draw
        self.mask_in_batch = bool(mask_in_batch)
        settings: dict[str, Any] = {}
        if isinstance(rule, (str, Path)) and Path(str(rule)).suffix.lower() in (".json", ".yaml", ".yml"):
            rule, settings = load_rule(rule)
        self.rule = parse_rule(rule)
        self.fallback = settings.get("fallback", fallback)
        if self.fallback not in ("uniform", "skip"):
            raise ConfigError(f"domain-rule fallback must be 'uniform' or 'skip' (got {self.fallback!r})")
        self.attributes_table = attributes
        self.separator = separator

    def params(self) -> dict[str, Any]:
        extra = {"mask_in_batch": True} if self.mask_in_batch else {}
        return {"rule": str(self.rule), "fallback": self.fallback, "draw": self.draw, **extra, **super().params()}

    def _fit(self, train: "Interactions") -> None:
        frame = self.attributes_table if self.attributes_table is not None else train.item_attributes
        if frame is None:
            raise DataError("domain-rule sampler needs item attributes: load data with item_attributes=… "
                            "(MovieLens loaders include title, year, genres) or pass attributes=")
        frame = frame.copy()
        frame.index = pd.Index(frame.index.astype(str), dtype=object)
        frame = frame[~frame.index.duplicated()].reindex(pd.Index(train.items.ids, dtype=object))
        table = AttributeTable(frame, self.rule.attributes(), self.separator)
        self.group_of_item_, reps = table.groups()
        n = train.n_items
        chunk = max(1, int(2e7 // max(n, 1)))  # [chunk, n] of bools at a time
        counts, indices = [], []
        total = 0
        for s in range(0, len(reps), chunk):
            allowed = self.rule.allowed(table, reps[s:s + chunk])  # [chunk, n] bool
            counts.append(allowed.sum(1))
            total += int(counts[-1].sum())
            if total > MAX_ALLOWED_ENTRIES:
                raise ConfigError(f"domain rule {self.rule} allows {total:,}+ (group, item) pairs, more than "
                                  f"{MAX_ALLOWED_ENTRIES:,}; use a more selective rule")
            indices.append(np.nonzero(allowed)[1].astype(np.int64))
        count = np.concatenate(counts).astype(np.int64)
        self.group_sizes_ = torch.from_numpy(count)  # [G]
        self._indptr = torch.from_numpy(np.concatenate([[0], np.cumsum(count)]))  # [G + 1]
        self._allowed = torch.from_numpy(np.concatenate(indices))  # [Σ |A_g|], sorted within a group
        self._sets = RowSets(sp.csr_matrix((np.ones(len(self._allowed), np.float32), self._allowed.numpy(),
                                            self._indptr.numpy()), shape=(len(count), n)))
        self._groups_t = torch.from_numpy(self.group_of_item_)
        self.stats_["fallback_rows"] = 0.0
        self.empty_groups_ = int((count == 0).sum())

    def _rows(self, positives: Tensor) -> tuple[Tensor, Tensor]:
        groups = self._groups_t[positives]  # [B]
        return groups, self.group_sizes_[groups]  # [B], [B]

    def _draw(self, users: Tensor, positives: Tensor, n: int, generator: torch.Generator) -> Tensor:
        groups, sizes = self._rows(positives)
        B = len(positives)
        offset = torch.rand(B, n, generator=generator).mul_(sizes[:, None].float()).long()  # ⌊U·|A_g|⌋
        # float rounding can give |A_g| itself when U is just below 1
        offset = torch.minimum(offset, (sizes - 1).clamp(min=0)[:, None]).add_(self._indptr[groups][:, None])
        if len(self._allowed) == 0:
            return torch.randint(0, self.n_items_, (B, n), generator=generator)
        picked = torch.take(self._allowed, offset.clamp_(max=len(self._allowed) - 1))
        empty = sizes == 0
        if bool(empty.any()):  # fallback rows draw from the whole catalogue
            picked[empty] = torch.randint(0, self.n_items_, (int(empty.sum()), n), generator=generator)
        return picked  # [B, n]

    def sample(self, users: Tensor, positives: Tensor, n: int, generator: torch.Generator) -> Negatives:
        self._check_fitted()
        groups, sizes = self._rows(positives)
        empty = sizes == 0
        self.stats_["fallback_rows"] += float(empty.sum())
        if self.draw == "shared":
            self._check_fitted()
            items = torch.randint(0, self.n_items_, (n,), generator=generator)  # [n], uniform
            self.stats_["draws"] += items.numel()
            return Negatives(items, torch.full((n,), -math.log(self.n_items_)), ~self.forbidden(users, positives, items))
        if self.exclude_positives:
            neg = super().sample(users, positives, n, generator)
        else:
            # Every draw lies in its row's allowed set (or is a fallback draw), so log q is known
            # per row without a membership test.
            self._check_fitted()
            items = self._draw(users, positives, n, generator)
            row_log_q = torch.where(empty, -math.log(self.n_items_), -torch.log(sizes.float().clamp(min=1)))
            self.stats_["draws"] += items.numel()
            neg = Negatives(items, row_log_q[:, None].expand(-1, n))  # [B, n] view: q is constant per row
        if self.fallback == "skip" and bool(empty.any()):
            valid = torch.ones(neg.items.shape, dtype=torch.bool) if neg.valid is None else neg.valid.clone()
            valid[empty] = False
            return Negatives(neg.items, neg.log_q, valid)
        return neg

    def forbidden(self, users: Tensor, positives: Tensor, items: Tensor) -> Tensor:
        """``[B, M]`` bool: the candidates (``[M]`` or ``[B, M]``) the rule forbids as negatives of each row.

        Shared draws are masked with it; with ``mask_in_batch`` the trainer masks in-batch
        candidates with it too. A row whose positive allows nothing forbids nothing with
        ``fallback="uniform"`` and everything with ``"skip"``.
        """
        self._check_fitted()
        groups, sizes = self._rows(positives)
        allowed = self._member(groups, items)
        if self.fallback == "uniform" and bool((sizes == 0).any()):
            allowed |= (sizes == 0)[:, None]
        return ~allowed

    def allowed_log_q(self, items: Tensor) -> Tensor | None:
        """``[M]`` ``−log |catalogue|`` for shared draws (a uniform draw the row's rule keeps or forbids);
        None for per-row draws, whose q is the row's allowed share."""
        self._check_fitted()
        if self.draw != "shared" or self.exclude_positives:
            return None
        return torch.full(items.shape, -math.log(self.n_items_))

    def _item_log_q(self) -> Tensor | None:
        if self.draw != "shared" or not self.mask_in_batch:
            return None  # q depends on the row's positive: per-row draws, or in-batch candidates the rule forbids
        return torch.full((self.n_items_,), -math.log(self.n_items_), dtype=torch.float64)

    def _member(self, groups: Tensor, items: Tensor) -> Tensor:
        """``[B] × ([n] or [B, n]) -> [B, n]``: does each row's rule allow each item? (`RowSets` keeps the
        group × item table dense while it fits, so every step's test is a gather or two)"""
        return self._sets.shared(groups, items) if items.dim() == 1 else self._sets.rowwise(groups, items)

    def _base_log_prob(self, users: Tensor, items: Tensor, positives: Tensor | None) -> Tensor:
        if self.draw == "shared" and self.mask_in_batch:  # uniform; forbidden candidates are all masked
            return torch.full(items.shape, -math.log(self.n_items_), dtype=torch.float64)
        if positives is None:
            raise ConfigError("domain-rule log q depends on each row's positive; pass positives")
        if self.draw == "shared":  # a uniform draw, kept by the rows whose rule allows it
            return torch.where(self.forbidden(users, positives, items), -math.inf, -math.log(self.n_items_))
        items = items if items.dim() == 2 else items.expand(len(positives), -1)
        groups, sizes = self._rows(positives)
        row_log_q = torch.where(sizes > 0, -torch.log(sizes.float().clamp(min=1)), -math.log(self.n_items_))  # [B]
        # inside the allowed set: 1/|A_g|; outside: 0, except for fallback rows (uniform over all items)
        allowed = self._member(groups, items) | (sizes == 0)[:, None]
        return torch.where(allowed, row_log_q[:, None], -math.inf)

    def _positive_mass(self, users: Tensor, positives: Tensor | None) -> Tensor:
        """Share of each row's allowed set that the row user's positives take up."""
        groups, sizes = self._rows(positives)
        counts = self.lookup_.counts[users]  # [B]
        rows = torch.repeat_interleave(torch.arange(len(users)), counts)
        starts = torch.from_numpy(self.lookup_.matrix.indptr[:-1].astype(np.int64))[users]
        within = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        items = torch.from_numpy(self.lookup_.matrix.indices.astype(np.int64))[starts[rows] + within]
        hit = self._sets.pairs(groups[rows], items).double()
        inside = torch.zeros(len(users), dtype=torch.float64).index_add_(0, rows, hit)
        uniform_mass = counts.double() / self.n_items_
        return torch.where(sizes > 0, inside / sizes.double().clamp(min=1), uniform_mass)

    def _redraw(self, users: Tensor, positives: Tensor, generator: torch.Generator) -> Tensor:
        return self._draw(users, positives, 1, generator)[:, 0]
