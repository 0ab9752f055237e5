"""`Interactions`: the users × items matrix of positives that every part of contrec reads.

Raw IDs are kept as strings exactly as they appear in the source ("007" stays "007", "42"
never becomes the integer 42) and are mapped to dense indices by `IdMap`. Splits keep the
id maps of the data they split, so train, validation and test share one index space and
can be compared row by row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from contrec.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

__all__ = ["IdMap", "Interactions", "binary_matrix"]


class IdMap:
    """A bijection between raw string IDs and dense indices ``0..n-1``.

    Example:
        >>> ids = IdMap(["u1", "007", "42"])
        >>> ids.index(["42", "u1"]).tolist()
        [2, 0]
        >>> ids.ids[[1]].tolist()
        ['007']
    """

    __slots__ = ("_index",)

    def __init__(self, ids: Iterable[Any]) -> None:
        values = np.asarray(list(ids) if not isinstance(ids, (np.ndarray, pd.Index)) else ids, dtype=object)
        index = pd.Index(values.astype(str), dtype=object)
        if index.has_duplicates:
            dup = index[index.duplicated()][0]
            raise DataError(f"id {dup!r} appears twice in an id map; ids must be unique")
        self._index = index

    def __len__(self) -> int:
        return len(self._index)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._index.equals(other._index)

    def __hash__(self) -> int:  # pragma: no cover - maps are compared, not hashed
        return hash(self.fingerprint())

    def __repr__(self) -> str:
        head = ", ".join(repr(x) for x in self._index[:3])
        return f"IdMap({len(self)} ids: {head}{', …' if len(self) > 3 else ''})"

    @property
    def ids(self) -> np.ndarray:
        """Raw ids as an object array of str, position = dense index."""
        return self._index.to_numpy()

    def index(self, raw: Iterable[Any]) -> np.ndarray:
        """Dense indices of raw ids; -1 where an id is unknown. Vectorized (hash lookup)."""
        values = pd.Index(np.asarray(list(raw) if not isinstance(raw, (np.ndarray, pd.Index, pd.Series)) else raw,
                                     dtype=object).astype(str), dtype=object)
        return self._index.get_indexer(values).astype(np.int64)

    def fingerprint(self) -> str:
        """SHA-256 over the ids in order, to check that two datasets share one index space."""
        digest = hashlib.sha256()
        for chunk in np.array_split(self.ids, max(1, len(self) // 100_000)):
            digest.update("\x1f".join(chunk.tolist()).encode("utf-8", "surrogatepass"))
            digest.update(b"\x1e")
        return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class Interactions:
    """Positive user–item interactions in CSR form, with their raw-ID maps.

    Attributes:
        matrix: ``[n_users, n_items]`` float32 CSR; a stored entry is a positive, its value
            the weight (1.0 unless a weight column was given). Column indices are sorted.
        users, items: raw id ↔ dense index maps.
        timestamps: int64 seconds aligned with ``matrix.data`` (same order), or None.
        item_attributes: DataFrame of item attributes (title, year, genres …), one row per
            item in dense order, indexed by raw item id; or None.

    Build one with `Interactions.from_csv`, `Interactions.from_frame`,
    `Interactions.from_parquet` or `contrec.load_movielens`.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"]})
        >>> data = Interactions.from_frame(df)
        >>> data.shape, len(data)
        ((2, 2), 3)
    """

    matrix: sp.csr_matrix
    users: IdMap
    items: IdMap
    timestamps: np.ndarray | None = None
    item_attributes: pd.DataFrame | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        m = self.matrix
        if m.shape != (len(self.users), len(self.items)):
            raise DataError(f"matrix shape {m.shape} does not match id maps "
                            f"({len(self.users)} users, {len(self.items)} items)")
        if self.timestamps is not None and len(self.timestamps) != m.nnz:
            raise DataError(f"{len(self.timestamps)} timestamps for {m.nnz} interactions")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_codes(cls, user_codes: np.ndarray, item_codes: np.ndarray, users: IdMap, items: IdMap,
                   weights: np.ndarray | None = None, timestamps: np.ndarray | None = None,
                   item_attributes: pd.DataFrame | None = None) -> "Interactions":
        """Build from dense index arrays; (user, item) pairs must be unique."""
        user_codes = np.asarray(user_codes, dtype=np.int64)
        item_codes = np.asarray(item_codes, dtype=np.int64)
        order = np.lexsort((item_codes, user_codes))
        u, i = user_codes[order], item_codes[order]
        if len(u) > 1:
            same = (u[1:] == u[:-1]) & (i[1:] == i[:-1])
            if same.any():
                raise DataError("duplicate (user, item) pairs; resolve them before building Interactions")
        w = np.ones(len(u), np.float32) if weights is None else np.asarray(weights, np.float32)[order]
        indptr = np.zeros(len(users) + 1, dtype=np.int64)
        np.cumsum(np.bincount(u, minlength=len(users)), out=indptr[1:])
        matrix = sp.csr_matrix((w, i.astype(np.int32), indptr), shape=(len(users), len(items)))
        ts = None if timestamps is None else np.asarray(timestamps, dtype=np.int64)[order]
        return cls(matrix, users, items, ts, _align_attributes(item_attributes, items))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, user: str = "user", item: str = "item", **options: Any
                   ) -> "Interactions":
        """Build from a pandas DataFrame; see `contrec.read_interactions` for the options.

        Example:
            >>> df = pd.DataFrame({"u": [1, 1, 2], "i": [10, 20, 10], "r": [5, 2, 4]})
            >>> Interactions.from_frame(df, user="u", item="i", rating="r", min_rating=4).shape
            (2, 1)
        """
        from contrec.data.readers import read_interactions

        return read_interactions(frame, user=user, item=item, **options)

    @classmethod
    def from_csv(cls, path: "str | Path", user: str = "user", item: str = "item", **options: Any
                 ) -> "Interactions":
        """Read a delimited text file (CSV, TSV, ``::``-separated); see `contrec.read_interactions`.

        Example:
            >>> data = Interactions.from_csv("ratings.csv", user="userId", item="movieId",
            ...                              rating="rating", min_rating=4.0)  # doctest: +SKIP
        """
        from contrec.data.readers import read_interactions

        return read_interactions(path, user=user, item=item, **options)

    @classmethod
    def from_parquet(cls, path: "str | Path", user: str = "user", item: str = "item", **options: Any
                     ) -> "Interactions":
        """Read a Parquet file (needs pyarrow); see `contrec.read_interactions`."""
        from contrec.data.readers import read_interactions

        return read_interactions(path, user=user, item=item, format="parquet", **options)

    # ------------------------------------------------------------------ views
    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def __len__(self) -> int:
        return int(self.matrix.nnz)

    def __repr__(self) -> str:
        ts = ", timestamps" if self.timestamps is not None else ""
        attrs = f", item attributes {list(self.item_attributes.columns)}" if self.item_attributes is not None else ""
        return f"Interactions({self.n_users} users × {self.n_items} items, {len(self)} positives{ts}{attrs})"

    def user_counts(self) -> np.ndarray:
        """Positives per user, ``[n_users]`` int64."""
        return np.diff(self.matrix.indptr).astype(np.int64)

    def item_counts(self) -> np.ndarray:
        """Positives per item, ``[n_items]`` int64."""
        return np.bincount(self.matrix.indices, minlength=self.n_items).astype(np.int64)

    def row_codes(self) -> np.ndarray:
        """Dense user index of every stored entry, aligned with ``matrix.indices``."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.matrix.indptr))

    def to_frame(self) -> pd.DataFrame:
        """Tidy DataFrame with raw ids: columns user, item, weight (and timestamp)."""
        out = pd.DataFrame({
            "user": self.users.ids[self.row_codes()],
            "item": self.items.ids[self.matrix.indices],
            "weight": self.matrix.data.astype(np.float32),
        })
        if self.timestamps is not None:
            out["timestamp"] = self.timestamps
        return out

    def same_space(self, other: "Interactions") -> bool:
        """True when both use identical user and item id maps (e.g. a train/test split)."""
        return (self.users is other.users or self.users == other.users) and (
            self.items is other.items or self.items == other.items)

    def fingerprint(self) -> str:
        """SHA-256 of the id maps and the positives, recorded in saved models."""
        digest = hashlib.sha256()
        digest.update(self.users.fingerprint().encode())
        digest.update(self.items.fingerprint().encode())
        for arr in (self.matrix.indptr.astype(np.int64), self.matrix.indices.astype(np.int64),
                    self.matrix.data.astype(np.float32)):
            digest.update(np.ascontiguousarray(arr).tobytes())
        return digest.hexdigest()

    # ------------------------------------------------------------------ subsets
    def subset(self, keep: np.ndarray) -> "Interactions":
        """The entries where ``keep`` (bool, aligned with ``matrix.data``) is True, same id space."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (len(self),):
            raise ValueError(f"keep mask has shape {keep.shape}, expected ({len(self)},)")
        rows = self.row_codes()[keep]
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=self.n_users), out=indptr[1:])
        matrix = sp.csr_matrix((self.matrix.data[keep], self.matrix.indices[keep], indptr), shape=self.shape)
        ts = None if self.timestamps is None else self.timestamps[keep]
        return Interactions(matrix, self.users, self.items, ts, self.item_attributes)

    def filter(self, min_user_interactions: int = 1, min_item_interactions: int = 1) -> "Interactions":
        """Drop users and items with too few positives and re-index (a new id space).

        Users are filtered first, then items, once each (not iterated to a fixed point), so
        the result is predictable: the standard "users with ≥ 5 positives" protocol is
        ``data.filter(min_user_interactions=5)``.
        """
        keep_users = self.user_counts() >= min_user_interactions
        sub = self.subset(keep_users[self.row_codes()])
        keep_items = sub.item_counts() >= min_item_interactions
        sub = sub.subset(keep_items[sub.matrix.indices])
        user_idx = np.flatnonzero(keep_users & (sub.user_counts() > 0))
        item_idx = np.flatnonzero(keep_items & (sub.item_counts() > 0))
        return sub._reindex(user_idx, item_idx)

    def _reindex(self, user_idx: np.ndarray, item_idx: np.ndarray) -> "Interactions":
        """Keep only the given users and items (every entry must fall inside them)."""
        new_item = np.full(self.n_items, -1, dtype=np.int64)
        new_item[item_idx] = np.arange(len(item_idx))
        new_user = np.full(self.n_users, -1, dtype=np.int64)
        new_user[user_idx] = np.arange(len(user_idx))
        attrs = None if self.item_attributes is None else self.item_attributes.iloc[item_idx]
        return Interactions.from_codes(
            new_user[self.row_codes()], new_item[self.matrix.indices],
            IdMap(self.users.ids[user_idx]), IdMap(self.items.ids[item_idx]),
            self.matrix.data, self.timestamps, attrs)


def binary_matrix(matrix: sp.csr_matrix, dtype: Any = np.float32) -> sp.csr_matrix:
    """The positives of ``matrix`` with every weight set to 1 (sorted indices, its own arrays)."""
    out = sp.csr_matrix((np.ones(matrix.nnz, dtype), matrix.indices.copy(), matrix.indptr.copy()), shape=matrix.shape)
    out.sort_indices()
    return out


def _align_attributes(attributes: pd.DataFrame | None, items: IdMap) -> pd.DataFrame | None:
    """Re-key item attributes by raw id string and order them like ``items`` (NaN where missing)."""
    if attributes is None:
        return None
    frame = attributes.copy()
    frame.index = pd.Index(frame.index.astype(str), dtype=object)
    frame = frame[~frame.index.duplicated(keep="first")]
    frame = frame.reindex(pd.Index(items.ids, dtype=object))
    frame.index.name = "item"
    return frame


def as_id_list(values: "Sequence[Any] | np.ndarray | pd.Series | Any") -> np.ndarray:
    """Normalise a user/item id argument (one id or many) to an object array of str."""
    if isinstance(values, (str, bytes, int, np.integer)):
        values = [values]
    arr = np.asarray(list(values), dtype=object)
    return arr.astype(str)
