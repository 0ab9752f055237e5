"""One training step's loss: candidates (`contrec.training.candidates`), both towers, then the objective.

The objective is `contrec.nn.losses.info_nce` (optionally debiased / hardness-weighted) or a
pairwise BPR / triplet loss over the same candidates; with ``ssl_weight`` and a history user
tower, plus an auxiliary InfoNCE between two random views of each user's history
(augmented positives, as in SGL / CL4SRec).

The user tower is called with ``exclude`` = the row's positive, so a tower built from the
user's history never sees the item it is asked to predict.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from contrec.data.positives import PositiveLookup
from contrec.nn.losses import info_nce, pairwise_loss
from contrec.nn.similarity import Similarity
from contrec.nn.temperature import LearnedTemperature
from contrec.samplers.base import NegativeSampler
from contrec.training import distributed
from contrec.training.candidates import Candidates, StepStats, build_candidates
from contrec.training.config import TrainingConfig
from contrec.training.sharing import gather_candidates

__all__ = ["Towers", "step_loss", "objective"]


class Towers(nn.Module):
    """Both towers behind one forward, so DDP (which must see every forward) can wrap them together."""

    def __init__(self, user_encoder: nn.Module, item_encoder: nn.Module,
                 temperature: LearnedTemperature | None = None) -> None:
        super().__init__()
        self.user, self.item, self.temperature = user_encoder, item_encoder, temperature

    def forward(self, users: Tensor, positives: Tensor, items: Tensor, ssl_dropout: float = 0.0,
                ) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor] | None, Tensor | None]:
        """User vectors ``[B, d]`` (each row's positive hidden from its history), item vectors, with
        ``ssl_dropout`` two augmented views of each distinct user's history, and a learned τ (or None)."""
        u = self.user(users, exclude=positives)
        v = self.item(items)
        views = self.user.augmented_pair(torch.unique(users), ssl_dropout) if ssl_dropout > 0 else None
        return u, v, views, None if self.temperature is None else self.temperature()


def step_loss(bu: Tensor, bi: Tensor, towers: nn.Module, similarity: Similarity, sampler: NegativeSampler,
              lookup: PositiveLookup, log_p_batch: Tensor, config: TrainingConfig, generator: torch.Generator,
              stats: StepStats, world: "distributed.World | None" = None, device: torch.device | None = None
              ) -> Tensor:
    """The loss of one batch of (user ``bu``, positive ``bi``) pairs (CPU tensors); counts go into ``stats``.

    ``device``: where the towers are (`contrec.runtime.device`; None = the CPU). The loss is on that device.
    """
    device = device or torch.device("cpu")
    # candidates are drawn and masked on the CPU (CPU generators: the same draws on every device), then cross once
    candidates = build_candidates(bu, bi, sampler, lookup, log_p_batch, config, generator, stats, world).to(device)
    bu, bi = bu.to(device, non_blocking=True), bi.to(device, non_blocking=True)
    u, v, views, tau = towers(bu, bi, candidates.encode, config.ssl_dropout if config.ssl_weight > 0 else 0.0)
    if world is not None and world.size > 1:
        v = gather_candidates(v, len(bu), world.size, candidates.per_row)
    loss = objective(u, v, candidates, similarity, config, config.temperature if tau is None else tau)
    if views is not None:
        loss = loss + config.ssl_weight * ssl_loss(*views, config.temperature)
    return loss


def objective(u: Tensor, v: Tensor, candidates: Candidates, similarity: Similarity, config: TrainingConfig,
              temperature: "float | Tensor") -> Tensor:
    """The configured loss of user vectors ``u`` ``[B, d]`` against the candidates' vectors ``v``."""
    if config.objective == "infonce":
        return info_nce(u, v, candidates.labels, similarity=similarity, temperature=temperature,
                        log_q=candidates.log_q, mask=candidates.mask, debias_prior=config.debias_prior,
                        hardness=config.hardness, candidate_index=candidates.index, precision=config.precision,
                        positive_offset=candidates.positive_offset)
    return pairwise_loss(u, v, candidates.labels, similarity=similarity, temperature=temperature,
                         objective=config.objective, margin=config.margin, mask=candidates.mask,
                         candidate_index=candidates.index, precision=config.precision)


def ssl_loss(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """InfoNCE between two random views of each distinct user's history, the other users as negatives."""
    a, b = torch.nn.functional.normalize(a, dim=-1), torch.nn.functional.normalize(b, dim=-1)
    return torch.nn.functional.cross_entropy((a @ b.T) / temperature, torch.arange(len(a), device=a.device))
