"""Raw ids ↔ dense indices: the one place that knows ids are strings kept verbatim ("007" stays "007")."""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from contrec.errors import DataError

__all__ = ["IdMap", "as_id_list"]


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


def as_id_list(values: "Sequence[Any] | np.ndarray | pd.Series | Any") -> np.ndarray:
    """Normalise a user/item id argument (one id or many) to an object array of str."""
    if isinstance(values, (str, bytes, int, np.integer)):
        values = [values]
    arr = np.asarray(list(values), dtype=object)
    return arr.astype(str)
