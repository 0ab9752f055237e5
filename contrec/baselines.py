"""Baselines behind the same API as contrec's model: popularity and implicit's ALS and BPR.

``implicit`` is imported lazily here and nowhere else.

Example:
    >>> pop = PopularityRecommender().fit(train)       # doctest: +SKIP
    >>> als = ImplicitALS(factors=64).fit(train)        # doctest: +SKIP
    >>> evaluate(als, train, test, k=20)                # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from contrec.data.interactions import Interactions
from contrec.errors import ConfigError, DataError
from contrec.recommender import FactorRecommender

__all__ = ["PopularityRecommender", "ImplicitALS", "ImplicitBPR"]


def _check_train(train: Interactions) -> None:
    if not isinstance(train, Interactions):
        raise DataError(f"fit expects Interactions (got {type(train).__name__})")
    if len(train) == 0:
        raise DataError("the training data has no positives")


class PopularityRecommender(FactorRecommender):
    """Recommends the items with the most training positives (ties: lower index first).

    Served as a 1-d factor model: user vector [1], item vector [count − tiny·index], so
    retrieval and seen-item filtering are the same code as every other model.
    """

    def fit(self, train: Interactions, validation: Interactions | None = None) -> "PopularityRecommender":
        _check_train(train)
        counts = train.item_counts().astype(np.float64)
        # A tiny index-dependent tie-break makes the order deterministic across FAISS versions.
        scores = counts - np.arange(train.n_items) / (10.0 * max(train.n_items, 1))
        self._set_state(train, np.ones((train.n_users, 1), np.float32), scores[:, None].astype(np.float32))
        self.counts_ = counts
        return self

    def top_k(self, user_indices: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        ids, _ = super().top_k(user_indices, k, exclude)
        # Report the plain counts as scores, not the tie-broken values the index ranked by.
        scores = np.where(ids >= 0, self.counts_[np.maximum(ids, 0)], -np.inf).astype(np.float32)
        return ids, scores

    def __repr__(self) -> str:
        return "PopularityRecommender()"


class _ImplicitModel(FactorRecommender):
    """Shared fit for implicit's matrix factorisation models."""

    _params: tuple[str, ...] = ()

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._params}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def _make(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, train: Interactions, validation: Interactions | None = None) -> "_ImplicitModel":
        _check_train(train)
        from threadpoolctl import threadpool_limits

        user_items = train.matrix.astype(np.float32).tocsr()
        # implicit runs its own thread pool; a threaded BLAS underneath it only slows it down.
        with threadpool_limits(1, "blas"):
            model = self._make()
            model.fit(user_items, show_progress=False)
        user_factors = np.asarray(getattr(model.user_factors, "to_numpy", lambda: model.user_factors)())
        item_factors = np.asarray(getattr(model.item_factors, "to_numpy", lambda: model.item_factors)())
        self._set_state(train, user_factors, item_factors)
        return self


class ImplicitALS(_ImplicitModel):
    """implicit's AlternatingLeastSquares (Hu, Koren & Volinsky 2008), confidence = 1 + alpha·weight."""

    _params = ("factors", "regularization", "alpha", "iterations", "seed", "threads")

    def __init__(self, factors: int = 64, regularization: float = 0.05, alpha: float = 10.0, iterations: int = 15,
                 seed: int = 0, threads: int | None = None) -> None:
        self.factors, self.regularization, self.alpha = factors, regularization, alpha
        self.iterations, self.seed, self.threads = iterations, seed, threads
        self._threads = threads

    def _make(self) -> Any:
        if self.factors < 1 or self.iterations < 1 or self.regularization < 0 or self.alpha <= 0:
            raise ConfigError(f"invalid ALS parameters {self.get_params()}")
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares(factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                                       iterations=self.iterations, random_state=self.seed,
                                       num_threads=self.threads or 0)


class ImplicitBPR(_ImplicitModel):
    """implicit's BayesianPersonalizedRanking (Rendle et al. 2009)."""

    _params = ("factors", "learning_rate", "regularization", "iterations", "seed", "threads")

    def __init__(self, factors: int = 64, learning_rate: float = 0.01, regularization: float = 0.01,
                 iterations: int = 100, seed: int = 0, threads: int | None = None) -> None:
        self.factors, self.learning_rate, self.regularization = factors, learning_rate, regularization
        self.iterations, self.seed, self.threads = iterations, seed, threads
        self._threads = threads

    def _make(self) -> Any:
        if self.factors < 1 or self.iterations < 1 or self.learning_rate <= 0:
            raise ConfigError(f"invalid BPR parameters {self.get_params()}")
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(factors=self.factors, learning_rate=self.learning_rate,
                                           regularization=self.regularization, iterations=self.iterations,
                                           random_state=self.seed, num_threads=self.threads or 0)
