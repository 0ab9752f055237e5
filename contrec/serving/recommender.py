"""What every recommender in contrec shares: id handling, FAISS retrieval, the DataFrame API.

A recommender here is a *factor model* at serving time: a user vector and an item vector
whose similarity ranks items. contrec's own model, ALS and even popularity (a 1-d factor:
every user's vector is [1], every item's is [its count]) fit this shape, so they share one
retrieval path and are compared under identical filtering.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from contrec.data.interactions import IdMap, Interactions, as_id_list, binary_matrix
from contrec.errors import ConfigError, DataError, NotFittedError
from contrec.serving.candidates import ServingFilter, filtered_search, serving_filter
from contrec.serving.index import FaissIndex

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self

__all__ = ["Recommender", "FactorRecommender"]


@runtime_checkable
class Recommender(Protocol):
    """The protocol contrec models and baselines share."""

    def fit(self, train: Interactions, validation: Interactions | None = None) -> "Self": ...

    def recommend(self, users: Any, k: int = 10, *, filter_seen: bool = True) -> pd.DataFrame: ...

    def top_k(self, user_indices: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
              ) -> tuple[np.ndarray, np.ndarray]: ...


class FactorRecommender:
    """Base class: subclasses set ``users_``, ``items_``, ``seen_`` and call `_set_vectors`."""

    users_: IdMap
    items_: IdMap
    seen_: sp.csr_matrix
    user_vectors_: np.ndarray
    item_vectors_: np.ndarray
    index_: FaissIndex
    _metric: Literal["ip", "l2"] = "ip"
    _threads: int | None = None
    #: how ``contrec fit`` read the training log (its reading flags), saved in the model file so that
    #: ``evaluate``/``score``/``fit --from`` read a log of the same shape alike; None when fitted in Python
    reading_: dict[str, Any] | None = None

    # ------------------------------------------------------------------ set-up by subclasses
    def _set_state(self, train: Interactions, user_vectors: np.ndarray, item_vectors: np.ndarray, *,
                   update: bool = False) -> None:
        if not update:  # a new fit: the record of how the CLI read an earlier log describes another log
            self.reading_ = None
        self.users_, self.items_ = train.users, train.items
        self.seen_ = binary_matrix(train.matrix)
        self.item_attributes_ = train.item_attributes
        self._rule_tables: dict[Any, Any] = {}  # a new catalogue: no attribute table of an old one may be reused
        self._set_vectors(user_vectors, item_vectors)

    def _set_vectors(self, user_vectors: np.ndarray, item_vectors: np.ndarray) -> None:
        self.user_vectors_ = np.ascontiguousarray(user_vectors, dtype=np.float32)
        self.item_vectors_ = np.ascontiguousarray(item_vectors, dtype=np.float32)
        options = getattr(self, "_index_options", None) or {}
        self.index_ = FaissIndex(self._metric, threads=self._threads, **options).build(self.item_vectors_)

    def set_index(self, kind: str = "exact", **params: Any) -> "Self":
        """Serve from an exact (default), IVF or HNSW FAISS index; rebuilds the index now.

        ``params`` go to `FaissIndex` (``nlist``, ``nprobe``; ``hnsw_m``, ``ef_construction``,
        ``ef_search``). Approximate indexes trade recall against the exact top-k for speed on
        large catalogues; evaluation then measures what is served.

        Example:
            >>> model.set_index("hnsw", ef_search=128)  # doctest: +SKIP
        """
        self._check_fitted()
        try:
            FaissIndex(self._metric, kind=kind, **params)  # validate before replacing anything
        except TypeError:
            raise ConfigError(f"unknown index parameter among {sorted(params)}; FaissIndex takes nlist, nprobe, "
                              "hnsw_m, ef_construction, ef_search, seed") from None
        self._index_options = {"kind": kind, **params}
        self._set_vectors(self.user_vectors_, self.item_vectors_)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "index_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(train) or load a model file")

    # ------------------------------------------------------------------ arrays
    def top_k(self, user_indices: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k dense item indices and scores for dense user indices (the array form).

        ``exclude`` ``[len(user_indices), n_items]`` removes items per row (e.g. train items).
        Rows are padded with −1 / −inf when fewer than k items remain.
        """
        self._check_fitted()
        user_indices = np.asarray(user_indices, dtype=np.int64)
        ids, scores = self.index_.search(self.user_vectors_[user_indices], k, exclude)
        return ids, self._scores_from_index(ids, scores)

    def _scores_from_index(self, ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """The model's own scores from what the index returned (identity: an inner-product model)."""
        return scores

    # ------------------------------------------------------------------ raw ids
    def user_indices(self, users: Any, unknown: Literal["raise", "skip"] = "raise") -> tuple[np.ndarray, np.ndarray]:
        """(dense indices, raw ids) of ``users``; unknown ids raise or are skipped."""
        self._check_fitted()
        raw = as_id_list(users)
        idx = self.users_.index(raw)
        missing = idx < 0
        if missing.any():
            if unknown == "raise":
                bad = str(raw[np.argmax(missing)])
                more = f" and {int(missing.sum()) - 1} more" if missing.sum() > 1 else ""
                what = f"user id {bad!r}{more} is not in the training data ({len(self.users_)} known users)"
                raise DataError(f"{what}; skip unknown users with unknown='skip'",
                                cli=f"{what}; skip unknown users with --skip-unknown")
            if unknown != "skip":
                raise ConfigError(f"unknown={unknown!r} is not valid; choose 'raise' or 'skip'")
        return idx[~missing], raw[~missing]

    def recommend(self, users: Any = None, k: int = 10, *, filter_seen: bool = True,
                  unknown: Literal["raise", "skip"] = "raise", items: Any = None, exclude: Any = None,
                  rule: Any = None) -> pd.DataFrame:
        """Top-k items for users given by raw id, over the whole catalogue.

        Args:
            users: one raw user id or many; None means every known user.
            k: list length, 1 ≤ k ≤ catalogue size.
            filter_seen: leave out the items each user interacted with in training. Filtering
                is exact: a user gets k items whenever k unseen items exist, fewer only when
                the catalogue runs out.
            unknown: ``"raise"`` on an id not seen in training, or ``"skip"`` it.
            items: an allow-list of raw item ids: only these may be recommended (searched exactly).
            exclude: raw item ids never recommended — a list (everyone), a mapping {user: item ids} or a
                frame with columns user, item (`contrec.serving.candidates`; unknown ids are ignored).
            rule: a domain rule (``"never_same(franchise)"``, ``"differ(language)"``, a dict) that must hold
                between each of the user's training items and a recommended one (`contrec.serving.rules`).

        Returns:
            DataFrame with columns user, item (raw ids), score (float), rank (1 = best).

        Example:
            >>> model.recommend(["1", "2"], k=5, items=in_stock, exclude={"1": ["50"]})  # doctest: +SKIP
        """
        self._check_fitted()
        self._check_k(k)
        if users is None:
            idx, raw = np.arange(len(self.users_)), self.users_.ids
        else:
            idx, raw = self.user_indices(users, unknown)
        seen = self.seen_[idx]
        flt = self._filter(raw, seen if filter_seen else None, items, exclude, rule, seen)
        ids, scores = filtered_search(self.index_, self.item_vectors_, self.user_vectors_[idx], k, flt, self._threads)
        scores = self._scores_from_index(ids, scores)
        return _frame(raw, ids, scores, self.items_, "user")

    def recommend_for_history(self, histories: Any, k: int = 10, *, filter_seen: bool = True,
                              unknown: Literal["raise", "skip"] = "raise", items: Any = None, exclude: Any = None,
                              rule: Any = None) -> pd.DataFrame:
        """Top-k items for users who were not in training, from the items they interacted with.

        No retraining: contrec's history tower encodes the item list (``user_tower="history"``),
        ALS solves the new user's least-squares step against the fixed item factors (fold-in),
        popularity ignores the history. Models that cannot do this raise `ConfigError`.

        Args:
            histories: a list of item-id lists (queries are numbered 0, 1, …) or a mapping
                {query name: item-id list}.
            k: list length.
            filter_seen: leave out the items in each history.
            unknown: ``"raise"`` on an item id not in the catalogue, or ``"skip"`` it.
            items, exclude, rule: as in `recommend` (per-row exclusions are keyed by query name; the
                rule holds against the given history).

        Returns:
            DataFrame with columns query, item, score, rank.

        Example:
            >>> model = ContrastiveRecommender(user_tower="history").fit(train)  # doctest: +SKIP
            >>> model.recommend_for_history([["50", "172", "181"]], k=10)         # doctest: +SKIP
        """
        self._check_fitted()
        self._check_k(k)
        self._check_history_support()
        if isinstance(histories, dict):
            names, lists = np.asarray([str(n) for n in histories], dtype=object), list(histories.values())
        else:
            lists = list(histories)
            names = np.arange(len(lists)).astype(object)
        if unknown not in ("raise", "skip"):
            raise ConfigError(f"unknown={unknown!r} is not valid; choose 'raise' or 'skip'")
        parts = [as_id_list(items) for items in lists]
        lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        raw = np.concatenate(parts) if parts else np.zeros(0, dtype=str)
        rows = np.repeat(np.arange(len(parts)), lengths)
        idx = self.items_.index(raw)  # one id-map lookup for every query together
        missing = idx < 0
        if missing.any():
            if unknown == "raise":
                first = int(np.argmax(missing))
                raise DataError(f"history {str(names[rows[first]])!r}: item id {str(raw[first])!r} is not in "
                                f"the catalogue ({len(self.items_)} items); pass unknown='skip' to ignore "
                                "unknown items")
            rows, idx = rows[~missing], idx[~missing]
        history = sp.csr_matrix((np.ones(len(idx), np.float32), (rows, idx)), shape=(len(lists), len(self.items_)))
        history.sum_duplicates()
        history.data[:] = 1.0
        flt = self._filter(names, history if filter_seen else None, items, exclude, rule, history)
        ids, scores = self.top_k_for_histories(history, k, filter_seen, flt)
        return _frame(names, ids, scores, self.items_, "query")

    def top_k_for_histories(self, history: sp.csr_matrix, k: int, filter_seen: bool = True,
                            flt: ServingFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The array form of `recommend_for_history`: rows of a binary ``[n, n_items]`` matrix."""
        self._check_fitted()
        vectors = self._encode_histories(history.tocsr())
        flt = flt or ServingFilter(None, history if filter_seen else None)
        ids, scores = filtered_search(self.index_, self.item_vectors_, vectors, k, flt, self._threads)
        return ids, self._scores_from_index(ids, scores)

    def _check_history_support(self) -> None:
        if type(self)._encode_histories is FactorRecommender._encode_histories:
            raise ConfigError(f"{type(self).__name__} cannot encode users who were not in training")

    def _encode_histories(self, history: sp.csr_matrix) -> np.ndarray:
        raise ConfigError(f"{type(self).__name__} cannot encode users who were not in training")

    def similar_items(self, items: Any, k: int = 10, *, among: Any = None, exclude: Any = None,
                      rule: Any = None) -> pd.DataFrame:
        """The k items closest to each given item (the item itself left out).

        ``among``: an allow-list of raw item ids the neighbours are drawn from; ``exclude``: as in
        `recommend` (per-row exclusions keyed by the given item id); ``rule``: a domain rule between the
        given item and each neighbour (``"differ(genres)"``: neighbours from other genres).

        Returns a DataFrame with columns item, similar_item, score, rank.
        """
        self._check_fitted()
        self._check_k(k, leave_out=1)
        raw = as_id_list(items)
        idx = self.items_.index(raw)
        if (idx < 0).any():
            bad = str(raw[np.argmax(idx < 0)])
            raise DataError(f"item id {bad!r} is not in the training data ({len(self.items_)} known items)")
        itself = sp.csr_matrix((np.ones(len(idx), np.float32), (np.arange(len(idx)), idx)),
                               shape=(len(idx), len(self.items_)))
        flt = self._filter(raw, itself, among, exclude, rule, itself)
        ids, scores = filtered_search(self.index_, self.item_vectors_, self.item_vectors_[idx], k, flt, self._threads)
        return _frame(raw, ids, self._scores_from_index(ids, scores), self.items_, "item", "similar_item")

    # ------------------------------------------------------------------ vectors and scores out
    @property
    def vector_metric(self) -> Literal["ip", "l2"]:
        """How the served vectors compare: ``"ip"`` (inner product) or ``"l2"`` (Euclidean distance)."""
        return self._metric

    @property
    def vector_dim(self) -> int:
        self._check_fitted()
        return int(self.item_vectors_.shape[1])

    def user_vectors(self) -> pd.DataFrame:
        """Every user's served vector: columns user (raw id), vector (float32 array).

        Example:
            >>> vectors = np.stack(model.user_vectors()["vector"])  # doctest: +SKIP
        """
        from contrec.serving.vectors import vectors_frame

        self._check_fitted()
        return vectors_frame(self.users_, self.user_vectors_, "user")

    def item_vectors(self) -> pd.DataFrame:
        """Every item's served vector (what the FAISS index holds): columns item, vector
        (`contrec.serving.vectors` shows a bare FAISS index over them)."""
        from contrec.serving.vectors import vectors_frame

        self._check_fitted()
        return vectors_frame(self.items_, self.item_vectors_, "item")

    def score(self, users: Any, items: Any = None, *, unknown: Literal["raise", "nan"] = "raise") -> pd.DataFrame:
        """The model's score for given (user, item) pairs — e.g. to re-rank another system's candidates.

        Args:
            users: user ids, one per pair; or a frame with columns user, item (then no ``items``).
            items: item ids, one per pair.
            unknown: ``"raise"`` on an id not seen in training, or ``"nan"``: score it NaN.

        Returns:
            DataFrame with columns user, item, score, in the order given; the score is the one
            `recommend` reports for the pair (the kernel's similarity).

        Example:
            >>> model.score(["1", "1", "2"], ["50", "181", "50"])  # doctest: +SKIP
        """
        from contrec.serving.vectors import pair_scores

        self._check_fitted()
        return pair_scores(self, users, items, unknown=unknown)

    def explain(self, user: Any, item: Any, k: int = 5, by: str = "history") -> pd.DataFrame:
        """Which of ``user``'s history items count most for ``item``'s score (`contrec.serving.explain`):
        the score drop without each (history towers) or their similarity to the item (other models);
        ``by="attributes"``: which of the item's attribute tokens (a feature item tower).

        Example:
            >>> model.explain("1", "172", k=3)  # doctest: +SKIP
        """
        from contrec.serving.explain import explain

        self._check_fitted()
        return explain(self, user, item, k, by)

    def _filter(self, keys: np.ndarray, seen: sp.csr_matrix | None, items: Any, exclude: Any, rule: Any,
                history: sp.csr_matrix) -> ServingFilter:
        """The serving filter of rows ``keys`` (`contrec.serving.candidates`), with the rules' attribute tables
        kept between calls (a model read from a file starts without them)."""
        if not hasattr(self, "_rule_tables"):
            self._rule_tables = {}
        return serving_filter(self.items_, keys, seen, items, exclude, rule, history,
                              getattr(self, "item_attributes_", None), self._rule_tables)

    def _check_k(self, k: int, leave_out: int = 0) -> None:
        n = len(self.items_) - leave_out
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ConfigError(f"k must be a positive integer (got {k!r})")
        if k > n:
            raise ConfigError(f"k={k} is larger than the catalogue ({n} items); ask for at most {n}")


def _frame(raw_keys: np.ndarray, ids: np.ndarray, scores: np.ndarray, items: IdMap, key: str,
           item_col: str = "item") -> pd.DataFrame:
    valid = ids >= 0
    k = ids.shape[1] if ids.ndim == 2 else 0
    rank = np.broadcast_to(np.arange(1, k + 1), ids.shape)
    rows = np.broadcast_to(np.arange(len(raw_keys))[:, None], ids.shape)
    return pd.DataFrame({
        key: pd.array(np.asarray(raw_keys, dtype=object)[rows[valid]], dtype=object),
        item_col: pd.array(items.ids[ids[valid]], dtype=object),
        "score": scores[valid].astype(np.float64),
        "rank": rank[valid].astype(np.int64),
    })


def ensure_same_space(model: FactorRecommender, data: Interactions, what: str) -> None:
    """Raise unless ``data`` uses the id maps the model was trained with."""
    if not (model.users_ == data.users and model.items_ == data.items):
        raise DataError(f"{what} does not share the model's id space ({len(model.users_)} users × "
                        f"{len(model.items_)} items vs {data.n_users} × {data.n_items}); split the data the model "
                        "was fitted on (split_random / split_temporal keep the id maps)")
