"""The training loop: mini-batches of (user, positive), candidates, masking, InfoNCE, Adam.

Each step, for a batch of B (user, positive item) pairs:

1. candidates = the batch's B positives (in-batch negatives for the other rows) followed by
   n items drawn by the sampler (shared by all rows, ``[n]``, or per row, ``[B, n]``);
2. each candidate j is corrected by ``log E[count of j in the candidates]``
   = ``log(B · p(j) + n · q(j))`` where p is j's share of training interactions (its chance
   of being a batch positive) and q the sampler's per-draw probability — the exact
   expected count of a two-source candidate set, so duplicates across sources are not
   double-counted (sampled softmax, Yi et al. 2019);
3. candidates that are known training positives of the row's user are masked (accidental
   hits), except the row's own positive;
4. loss = `contrec.losses.info_nce`; one Adam step.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from contrec.data.interactions import Interactions
from contrec.encoders import Encoder
from contrec.losses import info_nce
from contrec.samplers.base import NegativeSampler
from contrec.similarity import Similarity

__all__ = ["TrainingConfig", "train_two_tower", "PositiveLookup"]


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    n_negatives: int
    temperature: float
    in_batch: bool
    logq: bool
    patience: int
    seed: int
    verbose: bool


class PositiveLookup:
    """Is item j a known training positive of user u? Vectorized over whole batches."""

    def __init__(self, matrix: sp.csr_matrix) -> None:
        self.matrix = sp.csr_matrix(matrix, dtype=np.float32)
        self.matrix.sort_indices()
        n = self.matrix.shape[1]
        rows = np.repeat(np.arange(self.matrix.shape[0], dtype=np.int64), np.diff(self.matrix.indptr))
        self._keys = torch.from_numpy(rows * n + self.matrix.indices.astype(np.int64))  # sorted: CSR order
        self._n = n

    def shared(self, users: Tensor, items: Tensor) -> Tensor:
        """``[B] × [M] -> [B, M]`` bool, via a CSR row/column slice (fast for shared candidates)."""
        sub = self.matrix[users.numpy()][:, items.numpy()]  # [B, M] sparse
        return torch.from_numpy(sub.toarray() > 0)

    def rowwise(self, users: Tensor, items: Tensor) -> Tensor:
        """``[B] × [B, M] -> [B, M]`` bool, via binary search of sorted user·n+item keys."""
        if len(self._keys) == 0:
            return torch.zeros(items.shape, dtype=torch.bool)
        query = users[:, None] * self._n + items  # [B, M]
        pos = torch.searchsorted(self._keys, query).clamp(max=len(self._keys) - 1)
        return self._keys[pos] == query


def train_two_tower(user_encoder: Encoder, item_encoder: Encoder, similarity: Similarity,
                    sampler: NegativeSampler, train: Interactions, config: TrainingConfig,
                    validate: Callable[[], float] | None = None,
                    log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Train both towers in place; returns the per-epoch history.

    ``validate`` returns a validation score (higher is better, e.g. NDCG@k) computed from
    the towers' current state. With it, training stops after ``patience`` epochs without
    improvement and the towers are restored to their best epoch.
    """
    generator = torch.Generator().manual_seed(config.seed)
    users = torch.from_numpy(train.row_codes())  # [N]
    items = torch.from_numpy(train.matrix.indices.astype(np.int64))  # [N]
    n_inter = len(users)
    counts = torch.from_numpy(train.item_counts()).double()
    log_p_batch = torch.log(counts / n_inter).float()  # [n_items]; −inf for items never a positive
    lookup = PositiveLookup(train.matrix)
    params = list(user_encoder.parameters()) + list(item_encoder.parameters())
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)

    n_batches = math.ceil(n_inter / config.batch_size)
    history: list[dict[str, Any]] = []
    best_score, best_epoch, best_state = -math.inf, -1, None
    bar = tqdm(total=config.epochs * n_batches, disable=not config.verbose, unit="batch", leave=False,
               dynamic_ncols=True, desc="fit")
    started = time.perf_counter()
    try:
        for epoch in range(config.epochs):
            t0 = time.perf_counter()
            perm = torch.randperm(n_inter, generator=generator)
            total_loss, masked, drawn = 0.0, 0, 0
            user_encoder.train()
            item_encoder.train()
            for b in range(n_batches):
                idx = perm[b * config.batch_size:(b + 1) * config.batch_size]
                bu, bi = users[idx], items[idx]  # [B], [B]
                loss, n_masked, n_drawn = _step(bu, bi, user_encoder, item_encoder, similarity, sampler,
                                                lookup, log_p_batch, config, generator)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total_loss += loss.item() * len(idx)
                masked += n_masked
                drawn += n_drawn
                bar.update(1)
                if b % 10 == 0:
                    rate = (b + 1) * config.batch_size / max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}", inter_per_s=f"{rate:,.0f}")
            seconds = time.perf_counter() - t0
            sampler.update(item_encoder.encode_all(), (epoch + 1) * n_batches)
            record: dict[str, Any] = {
                "epoch": epoch + 1, "loss": total_loss / n_inter, "seconds": seconds,
                "interactions_per_s": n_inter / seconds,
                "accidental_hit_rate": masked / max(drawn, 1),
                "elapsed": time.perf_counter() - started,
            }
            if validate is not None:
                user_encoder.eval()
                item_encoder.eval()
                score = float(validate())
                record["validation"] = score
                if score > best_score:
                    best_score, best_epoch = score, epoch + 1
                    best_state = (copy.deepcopy(user_encoder.state_dict()), copy.deepcopy(item_encoder.state_dict()))
            history.append(record)
            if log is not None:
                val = f", validation {record['validation']:.4f}" if "validation" in record else ""
                log(f"epoch {epoch + 1}/{config.epochs}: loss {record['loss']:.4f}{val}, {seconds:.1f}s, "
                    f"{record['interactions_per_s']:,.0f} interactions/s")
            if validate is not None and epoch + 1 - best_epoch >= config.patience:
                break
    finally:
        bar.close()
    if best_state is not None:
        user_encoder.load_state_dict(best_state[0])
        item_encoder.load_state_dict(best_state[1])
        for record in history:
            record["best"] = record["epoch"] == best_epoch
    user_encoder.eval()
    item_encoder.eval()
    return history


def _step(bu: Tensor, bi: Tensor, user_encoder: nn.Module, item_encoder: nn.Module, similarity: Similarity,
          sampler: NegativeSampler, lookup: PositiveLookup, log_p_batch: Tensor, config: TrainingConfig,
          generator: torch.Generator) -> tuple[Tensor, int, int]:
    B, n = len(bu), config.n_negatives
    labels = torch.arange(B)  # row b's positive is candidate column b
    if n > 0:
        neg = sampler.sample(bu, bi, n, generator)
        shared = neg.items.dim() == 1
        cand = torch.cat([bi, neg.items]) if shared else torch.cat([bi.expand(B, B), neg.items], dim=1)
    else:
        shared, cand = True, bi
    # Expected count of each candidate in this candidate set: B·p(j) (as a batch positive) + n·q(j).
    terms = []
    if config.in_batch:
        terms.append(math.log(B) + log_p_batch[cand])
    if n > 0:
        q_users = bu if not shared else bu[:1]
        terms.append(math.log(n) + sampler.log_prob(q_users, cand))
    log_q = torch.logsumexp(torch.stack(terms), dim=0) if config.logq and terms else None

    mask = lookup.shared(bu, cand) if shared else lookup.rowwise(bu, cand)  # [B, B+n] accidental hits
    if not config.in_batch:
        mask[:, :B] = True  # other rows' positives are not candidates; the label column is kept by info_nce
    u = user_encoder(bu)  # [B, d]
    v = item_encoder(cand)  # [B+n, d] or [B, B+n, d]
    loss = info_nce(u, v, labels, similarity=similarity, temperature=config.temperature, log_q=log_q, mask=mask)
    sampled_mask = mask[:, B:]
    return loss, int(sampled_mask.count_nonzero()), int(sampled_mask.numel())
