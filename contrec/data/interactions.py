"""`Interactions`: the users × items matrix of positives that every part of contrec reads.

Raw IDs are kept as strings exactly as they appear in the source ("007" stays "007", "42"
never becomes the integer 42) and are mapped to dense indices by `IdMap`. Splits keep the
id maps of the data they split, so train, validation and test share one index space and
can be compared row by row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from contrec.data.files import RowNamer, read_table_file
from contrec.data.ids import IdMap, as_id_list
from contrec.data.readers import DUPLICATE_POLICIES, DuplicatePolicy, parse_frame
from contrec.errors import ConfigError, DataError

__all__ = ["IdMap", "Interactions", "read_interactions", "binary_matrix", "as_id_list"]


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
        if len(users) * len(items) < 1 << 62:  # one int64 key sorts 4 × faster than lexsort's two; pairs are unique
            order = np.argsort(user_codes * len(items) + item_codes)
        else:  # pragma: no cover - a catalogue of 2⁶² cells
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

        return read_interactions(frame, user=user, item=item, **options)

    @classmethod
    def from_csv(cls, path: "str | Path", user: str = "user", item: str = "item", **options: Any
                 ) -> "Interactions":
        """Read a delimited text file (CSV, TSV, ``::``-separated); see `contrec.read_interactions`.

        Example:
            >>> data = Interactions.from_csv("ratings.csv", user="userId", item="movieId",
            ...                              rating="rating", min_rating=4.0)  # doctest: +SKIP
        """

        return read_interactions(path, user=user, item=item, **options)

    @classmethod
    def from_parquet(cls, path: "str | Path", user: str = "user", item: str = "item", **options: Any
                     ) -> "Interactions":
        """Read a Parquet file (needs pyarrow); see `contrec.read_interactions`."""

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


def read_interactions(
    source: "str | Path | pd.DataFrame",
    *,
    user: str = "user",
    item: str = "item",
    rating: str | None = None,
    weight: str | None = None,
    timestamp: str | None = None,
    min_rating: float | None = None,
    sep: str | None = None,
    names: Sequence[str] | None = None,
    encoding: str = "utf-8",
    format: Literal["auto", "csv", "parquet"] = "auto",
    duplicates: DuplicatePolicy = "last",
    item_attributes: pd.DataFrame | None = None,
    users: IdMap | None = None,
    items: IdMap | None = None,
    unknown: Literal["error", "drop"] = "error",
    unknown_items: Literal["error", "drop", "extend"] | None = None,
    source_name: str | None = None,
) -> Interactions:
    """Read and validate an interaction log.

    Args:
        source: a path (``.csv``, ``.tsv``, ``.dat``, ``.txt``, ``.parquet``; text files may be gzip, bzip2,
            xz, zip or zstd compressed, told by their first bytes) or a DataFrame.
        user, item: column names of the user and item ids. Ids are read as text and kept
            verbatim (surrounding spaces stripped): "007" stays "007".
        rating: column of explicit ratings; with ``min_rating`` only rows rated ≥ it are positives.
        weight: column of non-negative weights (e.g. play counts); rows of weight 0 are dropped.
            Without it every positive has weight 1.
        timestamp: column of times: numbers (seconds) or date strings.
        sep: delimiter; detected from the header when None (``,``, tab, ``;``, ``|``, ``::``).
        names: column names for a file without a header line.
        duplicates: what to do when a (user, item) pair repeats: ``"last"`` keeps the latest row
            (by timestamp when given, else the later line), ``"first"`` the earliest, ``"sum"``
            sums the weights (keeping the latest rating and timestamp), ``"error"`` refuses.
            The number of duplicates is reported in a `DuplicateRowsWarning`.
        item_attributes: optional DataFrame indexed by raw item id (title, genres, …).
        users, items: existing id maps to read into (e.g. a test file for a trained model);
            ids outside them are an error, or dropped with a warning when ``unknown="drop"``.
        unknown_items: the same for item ids (default: as ``unknown``); ``"extend"`` keeps
            rows of unknown items and appends those ids to the item map after ``items``
            (a test file: items the model cannot know are relevant and count as misses).
        source_name: what messages call the source (default: the file name, or "DataFrame").

    Returns:
        `Interactions` of the positives.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"userId": ["1", "1", "2"], "movieId": ["10", "20", "10"],
        ...                    "rating": [5.0, 3.0, 4.5]})
        >>> read_interactions(df, user="userId", item="movieId", rating="rating", min_rating=4)
        Interactions(2 users × 1 items, 2 positives)
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise ConfigError(f"unknown duplicates policy {duplicates!r}; choose one of: {', '.join(DUPLICATE_POLICIES)}")
    if unknown not in ("error", "drop"):
        raise ConfigError(f"unknown={unknown!r} is not valid; choose 'error' or 'drop'")
    if unknown_items not in (None, "error", "drop", "extend"):
        raise ConfigError(f"unknown_items={unknown_items!r} is not valid; choose 'error', 'drop' or 'extend'")
    if min_rating is not None and rating is None:
        raise ConfigError("min_rating needs a rating column: pass rating='<column>'",
                          cli="--min-rating needs a rating column: pass --rating <column>")
    columns = {"user": user, "item": item, "rating": rating, "weight": weight, "timestamp": timestamp}
    wanted = [c for c in columns.values() if c is not None]
    if len(set(wanted)) != len(wanted):
        raise ConfigError(f"the same column is named twice in {columns}")

    if isinstance(source, pd.DataFrame):
        frame, where = source, RowNamer(source_name or "DataFrame", None)
    else:
        frame, where = read_table_file(Path(source), wanted, sep, names, encoding, format,
                                       numeric=[c for c in (rating, weight, timestamp) if c is not None])
        where.name = source_name or where.name
    return Interactions.from_codes(*parse_frame(frame, where, columns, min_rating, duplicates, item_attributes,
                                                users, items, unknown, unknown_items or unknown))
