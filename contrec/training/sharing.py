"""Candidates shared across DDP processes: every rank sees every rank's in-batch positives and shared draws.

One all-gather carries a rank's batch positives, its shared draws and their log q (the
float64 bits travel as int64): a shared draw's q does not depend on the row, so the other
ranks' values are exact here. Per-row draws stay local; the other ranks' positives arrive
as vectors (`gather_candidates`), differentiable back to the rank that encoded them.
Shared draws whose q depends on the batch (`hard`'s pooled tables) would be exact only for
the rank that drew them, so they stay local too, as each row's copy of its rank's draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from contrec.errors import ConfigError
from contrec.samplers.base import Negatives, NegativeSampler
from contrec.training import distributed

__all__ = ["Draws", "share_draws", "gather_candidates", "rank_seed"]


@dataclass(frozen=True)
class Draws:
    """A step's candidates before correction, as this rank's rows see them.

    ``positives``: every rank's batch positives ``[P]`` (the in-batch candidates); ``items``,
    ``log_q``, ``valid``: the sampled negatives (``[W·n]`` shared, or ``[B, n]`` per row;
    None without sampled negatives) with the sampler's per-draw log q and validity.
    """

    positives: Tensor
    items: Tensor | None = None
    log_q: Tensor | None = None
    valid: Tensor | None = None
    per_row: bool = False
    local: Tensor | None = None  # the draws this rank made itself (it encodes them)


def share_draws(bu: Tensor, bi: Tensor, neg: Negatives | None, sampler: NegativeSampler,
                world: "distributed.World | None") -> Draws:
    """This rank's draws, widened to every rank's positives and shared draws when there are several."""
    per_row = neg is not None and neg.items.dim() == 2
    if neg is None:
        draws = Draws(bi)
    else:
        draws = Draws(bi, neg.items, neg.log_q, neg.valid, per_row, neg.items)
    if world is None or world.size == 1:
        return draws
    B = len(bi)
    shared = neg is not None and not per_row
    if shared and sampler.batch_proposal:  # exact for this rank's batch only: every row keeps it locally
        valid = None if neg.valid is None else neg.valid.expand(B, -1)
        log_q = neg.log_q if neg.log_q.dim() == 2 else neg.log_q.expand(B, -1)
        draws = Draws(bi, neg.items.expand(B, -1), log_q, valid, True, neg.items.expand(B, -1))
        shared, per_row = False, True
    ids = distributed.gather(torch.cat([bi, neg.items, neg.log_q.double().view(torch.int64)])
                             if shared else bi)  # [W, B (+ 2n)]
    positives = ids[:, :B].reshape(-1)  # [P]
    if not shared:
        return Draws(positives, draws.items, draws.log_q, draws.valid, per_row, draws.local)
    n = len(neg.items)
    items = ids[:, B:B + n].reshape(-1)  # [W·n]
    log_q = ids[:, B + n:].reshape(-1).view(torch.float64).float()  # [W·n]
    valid = neg.valid
    if valid is not None and valid.dim() == 1:
        valid = distributed.gather(valid).reshape(-1)
    elif valid is not None:  # a row-wise rule over shared draws: test this rank's rows against every draw
        if not sampler.forbids:
            raise ConfigError(f"the {sampler.name!r} sampler cannot share its draws across processes")
        valid = ~sampler.forbidden(bu, bi, items)
    return Draws(positives, items, log_q, valid, False, neg.items)


def gather_candidates(v: Tensor, B: int, W: int, per_row: bool) -> Tensor:
    """Every rank's candidate vectors in candidate-list order, differentiable back to the rank that encoded them.

    ``v`` holds this rank's B positives, then its n shared draws (or its rows' distinct draws,
    which stay local).
    """
    if per_row:
        return torch.cat([distributed.gather_vectors(v[:B]).reshape(W * B, -1), v[B:]])  # [P + U, d]
    everyone = distributed.gather_vectors(v)  # [W, B + n, d]
    d = v.shape[-1]
    return torch.cat([everyone[:, :B].reshape(W * B, d), everyone[:, B:].reshape(-1, d)])  # [P + W·n, d]


def rank_seed(seed: int, rank: int) -> int:
    """Seed of rank ``rank``'s negative draws: distinct per rank, fixed by the run's seed."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint64)[0] >> 1)
