"""A step's candidate set: the batch's positives and the sampled items, with each one's log q and masks.

For a batch of B (user, positive) pairs, a row's candidates are the P in-batch positives
(every process's, P = W·B) followed by the sampled items (``[W·n]`` shared by the rows, or
``[B, n]`` per row). Each candidate j is corrected by ``log E[count of j in the row's
candidates] = log(P · p(j) + n_row · q(j))`` — p: j's share of training interactions (its
chance of being a batch positive), q: the sampler's per-draw probability — the exact
expected count of a two-source candidate set, so duplicates across sources are not
double-counted (sampled softmax, Yi et al. 2019). A candidate neither source could propose
(a row's own positive when the sampler excludes positives and in-batch is off) has no
finite correction and is left uncorrected.

Masked (not a negative of the row): the user's known training positives other than the
row's own (accidental hits, counted as the sampler's false-negative rate), draws the sampler
marked invalid, in-batch candidates a domain rule forbids when it asks for
``mask_in_batch``, and every in-batch candidate when ``in_batch`` is off.

Merged duplicates: with shared draws on one process and the plain InfoNCE softmax
(`mergeable`), an item that appears m times in the list becomes one column whose correction is
lowered by log m (in general: ``−log Σ e^{−log q}`` over the copies valid for the row): the
softmax sums m equal terms either way, so the loss is the same up to float rounding, but a
batch of popular positives and a draw over a small catalogue repeat many items (ml-100k: 976
distinct of 2,048), and every repeat was a column of each matrix product. The row's own
positive stands for one copy (its other copies are accidental hits, masked), so its logit is
lowered back to that copy's (``positive_offset``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from contrec.data.positives import PositiveLookup, distinct_items
from contrec.samplers.base import NegativeSampler
from contrec.training import distributed
from contrec.training.config import TrainingConfig
from contrec.training.sharing import Draws, share_draws

__all__ = ["Candidates", "StepStats", "build_candidates", "mergeable"]


@dataclass
class StepStats:
    """Counts summed over an epoch's steps (what the epoch record reports)."""

    loss: float = 0.0
    sampled: int = 0  # valid sampled negatives
    false_negatives: int = 0  # of those, known positives of the row's user
    candidates: int = 0  # all candidates but each row's own positive
    masked: int = 0  # of those, masked
    scored: int = 0  # (row, column) scores the loss computes: fewer than candidates + rows when repeats merge
    sampler_seconds: float = 0.0
    refresh_seconds: float = 0.0
    refreshes: int = 0


@dataclass(frozen=True)
class Candidates:
    """Every row's candidate list; row b's positive is column ``labels[b]``.

    ``items``: ``[C]`` shared by the rows, or ``[B, C]`` per row. ``log_q``: the log expected
    count of each candidate (same layout, or ``[B, C]`` for a row-dependent proposal over
    shared items); None = uncorrected. ``mask``: ``[B, C]``, True where a candidate is not a
    negative of the row. ``encode``: the items this process encodes; ``index``: ``[B, C]``
    positions of each row's candidates among the encoded (and gathered) vectors, or None
    when they are the encoded vectors in order.
    """

    items: Tensor
    log_q: Tensor | None
    mask: Tensor
    encode: Tensor
    index: Tensor | None
    labels: Tensor
    per_row: bool
    positive_offset: Tensor | None = None  # [B] lowers each row's positive below its merged column's logit

    def to(self, device: torch.device) -> "Candidates":
        """The same candidates on ``device``: one copy per tensor per step (on the CPU, these very tensors)."""
        if device.type == "cpu":
            return self

        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return Candidates(move(self.items), move(self.log_q), move(self.mask), move(self.encode),  # type: ignore[arg-type]
                          move(self.index), move(self.labels), self.per_row,  # type: ignore[arg-type]
                          move(self.positive_offset))


def build_candidates(bu: Tensor, bi: Tensor, sampler: NegativeSampler, lookup: PositiveLookup, log_p_batch: Tensor,
                     config: TrainingConfig, generator: torch.Generator, stats: StepStats,
                     world: "distributed.World | None" = None) -> Candidates:
    """Draw, share, correct and mask one step's candidates (see the module notes)."""
    B, n = len(bu), config.n_negatives
    rank = world.rank if world is not None else 0
    t0 = time.perf_counter()
    neg = sampler.sample(bu, bi, n, generator) if n > 0 else None
    draws = share_draws(bu, bi, neg, sampler, world)
    items, log_q = _corrected(bu, bi, draws, sampler, log_p_batch, config, stats, t0)
    if mergeable(draws, sampler, config, world):
        return _merged(bu, draws, items, log_q, lookup, stats)
    mask, encode, index = _masks(bu, bi, draws, items, sampler, lookup, config, stats)
    # per-row candidates are scored against the distinct vectors (this rank's and every rank's positives)
    stats.scored += B * (mask.shape[1] if index is None else len(encode) + len(draws.positives) - B)
    labels = torch.arange(B) + rank * B  # row b's positive is candidate column rank·B + b
    return Candidates(items, log_q, mask, encode, index, labels, draws.per_row)


def _corrected(bu: Tensor, bi: Tensor, draws: Draws, sampler: NegativeSampler, log_p_batch: Tensor,
               config: TrainingConfig, stats: StepStats, t0: float) -> tuple[Tensor, Tensor | None]:
    """The candidates in list order and the log of each one's expected count in the row's list."""
    B, P, per_row = len(bu), len(draws.positives), draws.per_row
    n_row = 0 if draws.items is None else draws.items.shape[-1]  # draws in one row's candidate list
    log_P, log_n = math.log(P), math.log(max(n_row, 1))
    # Two blocks: the in-batch positives [P] and the sampled items ([W·n] or [B, n]), each with
    # log E[count] = log(P·p(j) + n_row·q(j)) from whichever sources can propose it.
    blocks_items, blocks_log_q = [draws.positives], []
    if draws.items is not None:
        in_batch = draws.positives.expand(B, P) if per_row else draws.positives
        in_batch_q = sampler.log_prob(bu, in_batch, bi, config.n_negatives)  # [B, P] or [P]
        blocks_items.append(draws.items)
        blocks_log_q = [log_n + in_batch_q, log_n + draws.log_q]
    stats.sampler_seconds += time.perf_counter() - t0
    if config.in_batch:
        p_terms = [log_P + log_p_batch[items] for items in blocks_items]
        blocks_log_q = [torch.logaddexp(p, q) for p, q in zip(p_terms, blocks_log_q)] if blocks_log_q else p_terms
    if per_row:
        blocks_items[0] = draws.positives.expand(B, P)
    if any(q.dim() == 2 for q in blocks_log_q):  # a row-dependent proposal (domain rules) over shared items
        blocks_log_q = [q if q.dim() == 2 else q.expand(B, -1) for q in blocks_log_q]
    items = torch.cat(blocks_items, dim=-1)  # [P + W·n] or [B, P + n]
    log_q = None
    if config.logq and blocks_log_q:
        log_q = torch.cat(blocks_log_q, dim=-1)
        log_q = torch.nan_to_num_(log_q, neginf=0.0)  # cat made a fresh tensor: fix it in place, one sweep
    return items, log_q


def mergeable(draws: Draws, sampler: NegativeSampler, config: TrainingConfig,
              world: "distributed.World | None" = None) -> bool:
    """Whether repeated candidates can be merged: shared draws on one process, whose copies of an item differ
    for a row only by the draws' validity (in-batch rules mask copies the merged count cannot tell apart),
    and the plain InfoNCE softmax (debiasing, hardness weights and pairwise losses count candidates one by
    one)."""
    return (not draws.per_row and (world is None or world.size == 1) and config.in_batch
            and not (sampler.mask_in_batch and config.n_negatives > 0)
            and config.objective == "infonce" and config.debias_prior == 0.0 and config.hardness == 0.0)


def _merged(bu: Tensor, draws: Draws, items: Tensor, log_q: Tensor | None, lookup: PositiveLookup,
            stats: StepStats) -> Candidates:
    """The candidate list with each item once (see the module notes); counts as the full list would give.

    Row b's copies c of item k contribute Σ_c e^{s/τ − log q_c} to its softmax, so the merged column's
    correction is ``−log Σ_c e^{−log q_c}`` over the copies valid for the row (``log q − log m`` for m
    equal copies), and the positive — one copy, with its own log q — is lowered by the difference.
    """
    B, C = len(bu), len(items)
    distinct, inverse = torch.unique(items, return_inverse=True)  # [U], [C]
    U = len(distinct)
    copies = torch.bincount(inverse, minlength=U)  # [U]
    valid = None if draws.valid is None else draws.valid if draws.valid.dim() == 2 else draws.valid.expand(B, -1)
    neg_q = torch.zeros(C) if log_q is None else -log_q  # [C] or [B, C]
    if valid is None and neg_q.dim() == 1:  # every copy counts for every row, and has its item's log q
        log_copies = copies.to(torch.float32).log_()
        first = torch.full((U,), C, dtype=torch.int64).scatter_reduce_(0, inverse, torch.arange(C), "amin")
        merged_q = (-neg_q)[first].sub_(log_copies)  # the first copy's, for determinism
        offset = log_copies[inverse[:B]]  # the positive is one of its column's m equal copies
    else:  # a row-dependent correction or validity: one sum per row and item
        neg_q = neg_q.expand(B, C)
        top = neg_q.amax(dim=1, keepdim=True)  # [B, 1]
        terms = (neg_q - top).exp_()
        if valid is not None:
            terms[:, B:] *= valid  # an invalid draw is no copy of its item for that row
        weight = torch.zeros(B, U).index_add_(1, inverse, terms)  # [B, U]
        merged_q = weight.log_().add_(top).neg_()  # +inf where no valid copy is left
        label_q = merged_q.gather(1, inverse[:B, None]).squeeze(1)
        offset = -neg_q.diagonal()[:B] - label_q  # the positive's own log q, below its column's
    mask = lookup.shared(bu, distinct)  # [B, U] accidental hits (each row's own positive among them)
    labels = inverse[:B]
    _count_merged(mask, inverse, copies, valid, B, stats)
    if merged_q.dim() == 2:
        gone = torch.isinf(merged_q)
        mask |= gone
        merged_q.masked_fill_(gone, 0.0)
    stats.scored += B * U
    return Candidates(distinct, merged_q, mask, distinct, None, labels, False, offset)


def _count_merged(hits: Tensor, inverse: Tensor, copies: Tensor, valid: Tensor | None, B: int,
                  stats: StepStats) -> None:
    """The step's counts as the full list gives them: a copy is masked where its item is a known positive of
    the row (``hits`` ``[B, U]``) or its draw is invalid for the row."""
    C, U = len(inverse), len(copies)
    drawn = torch.bincount(inverse[B:], minlength=U)  # [U] copies among the draws
    stats.candidates += B * C - B
    if valid is None:
        known = hits.sum(dim=0)  # [U]: rows that know each item
        stats.sampled += B * (C - B)
        stats.false_negatives += int(known @ drawn)
        stats.masked += int(known @ copies) - B  # every label column is a known positive
        return
    kept = torch.zeros(B, U, dtype=torch.int64).index_add_(1, inverse[B:], valid.long())  # [B, U] valid draws
    stats.sampled += int(valid.count_nonzero())
    stats.false_negatives += int(kept[hits].sum())
    stats.masked += int((hits.long() * copies).sum()) + int((drawn - kept)[~hits].sum()) - B


def _masks(bu: Tensor, bi: Tensor, draws: Draws, items: Tensor, sampler: NegativeSampler, lookup: PositiveLookup,
           config: TrainingConfig, stats: StepStats) -> tuple[Tensor, Tensor, Tensor | None]:
    """``[B, C]`` masks of the candidates, what this process encodes, and where each candidate's vector is."""
    B, P, W = len(bu), len(draws.positives), len(draws.positives) // len(bu)
    index = None
    if draws.per_row and W == 1:
        distinct, index = distinct_items(items, lookup.n_items)  # encode and look up each item once
        mask = lookup.shared(bu, distinct).gather(1, index)  # [B, B+n] accidental hits
        encode = distinct
    elif draws.per_row:  # the other ranks' positives arrive as vectors; this rank encodes its own rows' draws
        distinct, draw_index = distinct_items(draws.items, lookup.n_items)
        index = torch.cat([torch.arange(P).expand(B, P), draw_index + P], dim=1)  # [B, P + n]
        mask = torch.cat([lookup.shared(bu, draws.positives), lookup.shared(bu, distinct).gather(1, draw_index)],
                         dim=1)
        encode = torch.cat([bi, distinct])
    else:
        mask = lookup.shared(bu, items)  # [B, P + W·n]
        encode = items if W == 1 else torch.cat([bi, draws.local]) if draws.local is not None else bi
    if sampler.mask_in_batch and config.n_negatives > 0 and config.in_batch:
        mask[:, :P] |= sampler.forbidden(bu, bi, draws.positives)  # the rule holds in-batch too
    sampled_hits = mask[:, P:]
    valid = draws.valid
    if valid is not None:
        valid = valid if valid.dim() == 2 else valid.expand(B, -1)
        stats.sampled += int(valid.count_nonzero())
        stats.false_negatives += int((sampled_hits & valid).count_nonzero())
        mask[:, P:] |= ~valid
    else:
        stats.sampled += sampled_hits.numel()
        stats.false_negatives += int(sampled_hits.count_nonzero())
    if not config.in_batch:
        mask[:, :P] = True  # other rows' positives are not candidates; the label column is kept by info_nce
    stats.candidates += mask.numel() - B
    stats.masked += int(mask.count_nonzero()) - B  # every label column is a known positive
    return mask, encode, index
