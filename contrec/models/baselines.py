"""Baselines behind the same API as contrec's model: popularity, implicit's ALS, BPR and item-kNN, EASE.

``implicit`` is imported lazily here and nowhere else. Item-item models (item-kNN, EASE)
are served as factor models too: a user's vector is their training row, an item's vector
is its column of the item-item weight matrix, so ``x_u · w_j`` is exactly the model's
score and retrieval, filtering and ties go through the same FAISS path as everyone else.

Example:
    >>> pop = PopularityRecommender().fit(train)       # doctest: +SKIP
    >>> als = ImplicitALS(factors=64).fit(train)        # doctest: +SKIP
    >>> evaluate(als, train, test, k=20)                # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from contrec.data.interactions import Interactions, binary_matrix
from contrec.errors import ConfigError, DataError
from contrec.models.params import Params
from contrec.registry import Registry
from contrec.serving.recommender import FactorRecommender

__all__ = ["PopularityRecommender", "ImplicitALS", "ImplicitBPR", "ItemKNN", "EASE", "BASELINES", "make_baseline"]


def _check_train(train: Interactions) -> None:
    if not isinstance(train, Interactions):
        raise DataError(f"fit expects Interactions (got {type(train).__name__})")
    if len(train) == 0:
        raise DataError("the training data has no positives")


class _Saved:
    """``save`` / ``load`` of a baseline's model file (`contrec.models.baseline_files`)."""

    _saved_item_arrays: tuple[str, ...] = ()  # per-item state beyond the vectors, kept as ``<name>_``

    def save(self, path: "str | os.PathLike[str]") -> Path:
        """Write the fitted model to ``path`` (atomically, no pickle); `contrec.load` reads it back.

        Example:
            >>> EASE(l2=100.0).fit(train).save("ease.contrec")  # doctest: +SKIP
        """
        from contrec.models.baseline_files import save_baseline

        return save_baseline(self, path)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: "str | os.PathLike[str]") -> Any:
        """Read a model file of this class (`contrec.load` reads any model file)."""
        from contrec.models.baseline_files import load_baseline

        return load_baseline(path, {cls.__name__: cls})


class PopularityRecommender(_Saved, Params, FactorRecommender):
    """Recommends the items with the most training positives (ties: lower index first).

    Served as a 1-d factor model: user vector [1], item vector [n_items − rank], so
    retrieval and seen-item filtering are the same code as every other model. The rank
    orders by count, ties by lower index; distinct integers stay exact in float32 up to
    2²⁴ items, where a "count − tiny·index" tie-break would round away above ~256 counts.
    """

    _saved_item_arrays = ("counts",)  # the scores it reports

    def fit(self, train: Interactions, validation: Interactions | None = None) -> "PopularityRecommender":
        _check_train(train)
        counts = train.item_counts().astype(np.float64)
        order = np.lexsort((np.arange(train.n_items), -counts))  # most popular first, ties: lower index
        position = np.empty(train.n_items, dtype=np.float64)
        position[order] = train.n_items - np.arange(train.n_items)
        self._set_state(train, np.ones((train.n_users, 1), np.float32), position[:, None].astype(np.float32))
        self.counts_ = counts
        return self

    def _scores_from_index(self, ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        # the plain counts, not the rank positions the index ranked by
        return np.where(ids >= 0, self.counts_[np.maximum(ids, 0)], -np.inf).astype(np.float32)

    def _encode_histories(self, history: sp.csr_matrix) -> np.ndarray:
        return np.ones((history.shape[0], 1), np.float32)  # everyone gets the same list

class _ImplicitModel(_Saved, Params, FactorRecommender):
    """Shared fit for implicit's matrix factorisation models."""

    def _make(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, train: Interactions, validation: Interactions | None = None) -> "_ImplicitModel":
        _check_train(train)
        import implicit.cpu.als  # noqa: F401  (loads scipy's OpenBLAS, see below)
        from threadpoolctl import threadpool_limits

        user_items = self._user_items(train.matrix)
        # implicit runs its own thread pool; a threaded BLAS underneath it only slows it down. The limit
        # reaches only the BLAS libraries loaded when it is set: importing implicit loads scipy's OpenBLAS,
        # so it is imported above — inside, implicit found that library at 2 threads and warned every user.
        with threadpool_limits(1, "blas"):
            model = self._make()
            model.fit(user_items, show_progress=False)
        self.model_ = model
        user_factors = np.asarray(getattr(model.user_factors, "to_numpy", lambda: model.user_factors)())
        item_factors = np.asarray(getattr(model.item_factors, "to_numpy", lambda: model.item_factors)())
        self._set_state(train, user_factors, item_factors)
        return self

    def _user_items(self, matrix: sp.spmatrix) -> sp.csr_matrix:
        """What implicit is given: the interaction weights as they are (ALS transforms them, `ImplicitALS`)."""
        return matrix.astype(np.float32).tocsr()


# how a baseline lets a weight w count: as given, log(1 + w), or not at all (every positive 1)
CONFIDENCES = ("linear", "log1p", "none")


def check_weighting(how: str, setting: str) -> None:
    """One-line refusal of a weighting outside `CONFIDENCES`, naming the parameter ``setting``."""
    if how not in CONFIDENCES:
        raise ConfigError(f"{setting} must be one of {', '.join(map(repr, CONFIDENCES))} (got {how!r})")


def weighted_matrix(matrix: sp.spmatrix, how: str, setting: str) -> sp.csr_matrix:
    """``matrix`` as float32 CSR with each weight w turned into w / log(1 + w) / 1 (``how``: `CONFIDENCES`)."""
    check_weighting(how, setting)
    out = matrix.astype(np.float32).tocsr()
    if how == "log1p":
        out.data = np.log1p(out.data)
    elif how == "none":
        out.data = np.ones_like(out.data)
    return out


class ImplicitALS(_ImplicitModel):
    """implicit's AlternatingLeastSquares (Hu, Koren & Volinsky 2008), confidence = 1 + alpha·c(weight).

    ``confidence``: c(w) = w (``"linear"``, Hu et al.'s), log(1 + w) (``"log1p"``), or 1 for every
    positive (``"none"``: the weights ignored). Raw play counts in the thousands as linear confidence
    drown every other positive of a user: on a play-count log's selection carve ALS scored NDCG@20
    0.06 with them against 0.16 ignoring them (docs/compare.md), so `contrec compare` searches c on
    weighted data. Unweighted data (every weight 1) trains the same under "linear" and "none".
    """


    def __init__(self, factors: int = 64, regularization: float = 0.05, alpha: float = 10.0, iterations: int = 15,
                 seed: int = 0, threads: int | None = None, confidence: str = "linear") -> None:
        self.factors, self.regularization, self.alpha = factors, regularization, alpha
        self.iterations, self.seed, self.threads = iterations, seed, threads
        self.confidence = confidence
        self._threads = threads

    def check(self) -> None:
        """Refuse settings implicit cannot train with, in one line (`contrec compare` asks before any fit)."""
        check_weighting(self.confidence, "confidence")

    def _user_items(self, matrix: sp.spmatrix) -> sp.csr_matrix:
        return weighted_matrix(matrix, self.confidence, "confidence")

    def _make(self) -> Any:
        if self.factors < 1 or self.iterations < 1 or self.regularization < 0 or self.alpha <= 0:
            raise ConfigError(f"invalid ALS parameters {self.get_params()}")
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares(factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                                       iterations=self.iterations, random_state=self.seed,
                                       num_threads=self.threads or 0)

    def _encode_histories(self, history: sp.csr_matrix) -> np.ndarray:
        """Fold-in: one exact least-squares solve per new user against the fixed item factors."""
        import implicit.cpu.als  # noqa: F401  (loads scipy's OpenBLAS before the limit below, as in fit)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            model = getattr(self, "model_", None)
            if model is None:  # read from a file: the solve needs only the settings and the item factors
                model = self._make()
                model.item_factors = self.item_vectors_
                self.model_ = model
            vectors = model.recalculate_user(np.arange(history.shape[0]), self._user_items(history))
        return np.ascontiguousarray(vectors, dtype=np.float32)


class ImplicitBPR(_ImplicitModel):
    """implicit's BayesianPersonalizedRanking (Rendle et al. 2009)."""


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


def _check_item_item(train: Interactions, name: str, matrices: float) -> None:
    """Refuse before fitting when ``matrices`` dense float32 item × item matrices (plus the users' rows the
    model is served from) do not fit in the memory that is free (`contrec.runtime.memory`)."""
    from contrec.runtime.memory import check_memory

    n = train.n_items
    need = int(matrices * n * n * 4 + train.n_users * n * 4)
    check_memory(need, f"{name} on {n:,} items ({matrices:g} dense {n:,} × {n:,} float32 matrices)",
                 "filter rare items first (Interactions.filter(min_item_interactions=…)) or use ALS")


class _ItemItemModel(_Saved, Params, FactorRecommender):
    """Scores ``X W``: user vector = training row of X, item vector = column of W."""

    def _set_item_item(self, train: Interactions, x: sp.csr_matrix, item_vectors: np.ndarray) -> None:
        """``item_vectors[j]`` is column j of the item–item weight matrix W (so ``x_u · item_vectors[j]`` is the score)."""
        self._set_state(train, x.toarray().astype(np.float32), np.ascontiguousarray(item_vectors, dtype=np.float32))

    def _encode_histories(self, history: sp.csr_matrix) -> np.ndarray:
        """A new user's vector is its (binary) history row, as a training user's is its row of X: new users
        are served exactly (`recommend_for_history`), and an item's effect (`explain`) is its weight to the item."""
        return history.toarray().astype(np.float32)


class ItemKNN(_ItemItemModel):
    """Item-based k-nearest neighbours with cosine similarity (implicit's CosineRecommender).

    Each item keeps its ``neighbours`` most similar items; a user's score for item j is the
    sum of j's similarities to the items the user interacted with, each weighted by the
    interaction's weight as ``weights`` says: as given (``"linear"``), log(1 + w) or not at all
    (``"none"``) — the similarities are computed from the same weighted matrix. Raw play counts
    hurt it (a play-count log's selection carve: NDCG@20 0.0034 with them, 0.0313 without), so
    `contrec compare` starts it from ``"none"`` on weighted data and searches the choice.

    Example:
        >>> knn = ItemKNN(neighbours=100).fit(train)  # doctest: +SKIP
    """


    def __init__(self, neighbours: int = 100, threads: int | None = None, weights: str = "linear") -> None:
        self.neighbours, self.threads, self.weights = neighbours, threads, weights
        self._threads = threads

    def check(self) -> None:
        """Refuse a setting it cannot fit with, in one line (`contrec compare` asks before any fit)."""
        check_weighting(self.weights, "weights")

    def fit(self, train: Interactions, validation: Interactions | None = None) -> "ItemKNN":
        _check_train(train)
        _check_item_item(train, "item-kNN", 3.0)  # similarity, its dense copy, the index's copy
        if not isinstance(self.neighbours, (int, np.integer)) or self.neighbours < 1:
            raise ConfigError(f"neighbours must be a positive integer (got {self.neighbours!r})")
        from implicit.nearest_neighbours import CosineRecommender

        x = weighted_matrix(train.matrix, self.weights, "weights")
        model = CosineRecommender(K=int(self.neighbours), num_threads=self.threads or 0)
        with warnings.catch_warnings():
            # implicit converts to CSR internally and warns about its own conversion
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            model.fit(x, show_progress=False)
        # implicit stores similarity[i, j] for j among i's neighbours; score(u, j) = Σ_i x_ui sim[i, j].
        self._set_item_item(train, x, model.similarity.T.toarray())
        return self


class EASE(_ItemItemModel):
    """EASE (Steck 2019): a closed-form item-item model with a zero diagonal.

    ``B = I − P·diag(1/diag(P))`` with ``P = (XᵀX + λI)⁻¹``. Solved in float32 and in place:
    the Gram matrix is overwritten by its Cholesky factor (LAPACK ``spotrf``), then by the
    inverse (``spotri``), then by the item vectors — one dense n × n matrix at a time, plus
    the FAISS index's copy of it (20k items: 1.6 GB each; the float64 solve with copies
    peaked near 10 GB). Before solving, the fit checks that this fits in free memory.

    Example:
        >>> ease = EASE(l2=250.0).fit(train)  # doctest: +SKIP
    """


    def __init__(self, l2: float = 250.0) -> None:
        self.l2 = l2

    def fit(self, train: Interactions, validation: Interactions | None = None) -> "EASE":
        _check_train(train)
        if not isinstance(self.l2, (int, float)) or not np.isfinite(self.l2) or self.l2 <= 0:
            raise ConfigError(f"l2 must be a positive number (got {self.l2!r})")
        _check_item_item(train, "EASE", 2.0)  # the solve's matrix and the index's copy
        x = binary_matrix(train.matrix, np.float64)
        self._set_item_item(train, x, ease_item_vectors(x, float(self.l2)))
        return self


def ease_item_vectors(x: sp.csr_matrix, l2: float) -> np.ndarray:
    """EASE's weight columns as rows, ``[n_items, n_items]`` float32, computed in one buffer.

    Row j is column j of B: ``B[i, j] = −P[i, j] / P[j, j]`` (i ≠ j) and P is symmetric, so
    row j of P divided by −P[j, j], with a zero diagonal.
    """
    import scipy.linalg.lapack as lapack

    from contrec.runtime.blas import safe_blas_threads

    n = x.shape[1]
    gram = (x.T @ x).astype(np.float32).toarray()  # sparse product: no dense BLAS call
    gram[np.diag_indices(n)] += np.float32(l2)
    # LAPACK wants column-major data: the transpose of a symmetric C-ordered matrix is that, with no copy
    buffer = gram.T
    with safe_blas_threads(gram.nbytes):
        factor, info = lapack.spotrf(buffer, lower=1, overwrite_a=1, clean=0)
        if info != 0:
            raise ConfigError(f"EASE: XᵀX + λI is not positive definite in float32 (LAPACK info {info}); "
                              f"raise l2 (got {l2:g})")
        inverse, info = lapack.spotri(factor, lower=1, overwrite_c=1)
    if info != 0:
        raise ConfigError(f"EASE: the inverse of XᵀX + λI failed (LAPACK info {info}); raise l2 (got {l2:g})")
    p = inverse.T  # row-major again: the same buffer as gram when LAPACK worked in place (it does here)
    del gram, buffer, factor
    # spotri wrote one triangle (the lower one of the column-major view = the upper one here): mirror it
    _mirror_upper(p)
    diagonal = np.diag(p).copy()
    p /= -diagonal[:, None]
    p[np.diag_indices(n)] = 0.0
    return p


def _mirror_upper(matrix: np.ndarray, block: int = 2048) -> None:
    """Copy the upper triangle onto the lower one, in place, block by block (no second n × n buffer)."""
    n = len(matrix)
    for i in range(0, n, block):
        for j in range(i, n, block):
            if j == i:
                tile = matrix[i:i + block, i:i + block]
                lower = np.tril_indices(len(tile), -1)
                tile[lower] = tile.T[lower]
            else:
                matrix[j:j + block, i:i + block] = matrix[i:i + block, j:j + block].T


BASELINES: Registry[FactorRecommender] = Registry("baseline", {
    "popularity": PopularityRecommender, "itemknn": ItemKNN, "als": ImplicitALS, "bpr": ImplicitBPR, "ease": EASE,
}, normalize=lambda name: name.lower().replace("-", "").replace("_", ""))


def make_baseline(name: str, **params: Any) -> FactorRecommender:
    """A baseline by its short name (popularity, als, bpr, itemknn, ease) with constructor params.

    Example:
        >>> make_baseline("ease", l2=100.0)
        EASE(l2=100.0)
    """
    return BASELINES.create(name, **params)
