"""Early stopping, owned by the training loop: NDCG@k of held-out positives after every epoch.

The validator scores the vectors that would be served (exact search, the training
positives filtered as at serving time), remembers the best epoch's towers, says when
``patience`` epochs have passed without improvement, and puts the best towers back at the
end. Under DDP the validation users are split between the processes and their NDCG sums
gathered, so every process takes the same decision.

Example:
    >>> validator = Validator(train, validation, k=20, patience=3)         # doctest: +SKIP
    >>> score = validator.score(user_vectors, item_vectors, "ip")           # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math

import numpy as np
from torch import Tensor, nn

from contrec.data.interactions import Interactions
from contrec.evaluation.metrics import ndcg_at_k
from contrec.serving.index import FaissIndex
from contrec.training import distributed

__all__ = ["Validator", "vectors_ndcg"]

TowerStates = tuple[dict[str, Tensor], dict[str, Tensor]]


def vectors_ndcg(user_vectors: np.ndarray, item_vectors: np.ndarray, metric: str, train: Interactions,
                 validation: Interactions, k: int, users: np.ndarray | None = None) -> float:
    """Mean NDCG@k of raw vectors over ``users`` (default: every user with a validation positive)."""
    if users is None:
        users = np.flatnonzero(validation.user_counts() > 0)
    index = FaissIndex(metric).build(item_vectors)  # type: ignore[arg-type]
    ranked, _ = index.search(user_vectors[users], min(k, train.n_items), train.matrix[users])
    return float(np.nanmean(ndcg_at_k(ranked, validation.matrix[users], min(k, train.n_items))))


class Validator:
    """Scores each epoch on ``validation`` and keeps the best one (see the module notes)."""

    def __init__(self, train: Interactions, validation: Interactions, k: int, patience: int,
                 world: "distributed.World | None" = None) -> None:
        self.train, self.validation, self.k, self.patience, self.world = train, validation, k, patience, world
        self.best_score = -math.inf
        self.best_epoch = -1
        self.best_state: TowerStates | None = None

    def score(self, user_vectors: np.ndarray, item_vectors: np.ndarray, metric: str) -> float:
        """NDCG@k of served vectors; the mean over every process's share of the users under DDP."""
        if self.world is None:
            return vectors_ndcg(user_vectors, item_vectors, metric, self.train, self.validation, self.k)
        users = np.flatnonzero(self.validation.user_counts() > 0)[self.world.rank::self.world.size]
        mean = vectors_ndcg(user_vectors, item_vectors, metric, self.train, self.validation, self.k,
                            users) if len(users) else 0.0
        total, count = distributed.all_sum([mean * len(users), float(len(users))])
        return total / max(count, 1.0)

    def record(self, epoch: int, score: float, user_encoder: nn.Module, item_encoder: nn.Module) -> None:
        """Epoch ``epoch`` (1-based) scored ``score``: keep its towers if it is the best so far."""
        if score > self.best_score:
            self.best_score, self.best_epoch = score, epoch
            self.best_state = (copy.deepcopy(user_encoder.state_dict()), copy.deepcopy(item_encoder.state_dict()))

    def should_stop(self, epoch: int) -> bool:
        """Whether ``patience`` epochs have passed since the best one, after epoch ``epoch`` (1-based)."""
        return epoch - self.best_epoch >= self.patience

    def restore(self, user_encoder: nn.Module, item_encoder: nn.Module) -> None:
        """Put the best epoch's towers back (no-op before any epoch was scored)."""
        if self.best_state is not None:
            user_encoder.load_state_dict(self.best_state[0])
            item_encoder.load_state_dict(self.best_state[1])
