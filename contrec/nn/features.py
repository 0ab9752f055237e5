"""Item attributes as feature tokens for the feature tower.

Every item becomes a small bag of tokens such as ``genres=Comedy``, ``genres=Drama``,
``year=[1990, 1995)``: categorical columns give one token, multi-valued columns (strings
split on ``|`` or lists) one per value, numeric columns one quantile bucket. Free text
(a column of at least 20 items whose values are mostly distinct, such as a title) would only be a second
item ID, useless for an item nobody has interacted with yet, so it is left out unless
named explicitly.

Example:
    >>> import pandas as pd
    >>> attrs = pd.DataFrame({"genres": ["Comedy|Drama", "Drama", None], "year": [1990, 1995, 2001]})
    >>> tokens = item_feature_tokens(attrs, buckets=2)
    >>> tokens.item_tokens(0)
    ['genres=Comedy', 'genres=Drama', 'year=[1990, 1995)']
    >>> tokens.item_tokens(2)
    ['year=[1995, 2001]']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from contrec.errors import ConfigError

__all__ = ["FeatureTokens", "item_feature_tokens"]

_FREE_TEXT_SHARE = 0.5  # distinct values / items above which a string column counts as free text
_FREE_TEXT_MIN_ITEMS = 20


@dataclass(frozen=True)
class FeatureTokens:
    """Per-item token lists in CSR form: item i has ``indices[indptr[i]:indptr[i+1]]``."""

    indptr: np.ndarray  # [n_items + 1] int64
    indices: np.ndarray  # [n_tokens] int64 into vocabulary
    vocabulary: tuple[str, ...]
    columns: tuple[str, ...]

    @property
    def n_items(self) -> int:
        return len(self.indptr) - 1

    def item_tokens(self, item: int) -> list[str]:
        return [self.vocabulary[t] for t in self.indices[self.indptr[item]:self.indptr[item + 1]]]

    def coverage(self) -> float:
        """Share of items with at least one token."""
        return float(np.mean(np.diff(self.indptr) > 0)) if self.n_items else 0.0


def item_feature_tokens(attributes: pd.DataFrame, columns: Sequence[str] | None = None, separator: str = "|",
                        buckets: int = 8) -> FeatureTokens:
    """Turn an item attribute frame (one row per item, in item index order) into tokens.

    Args:
        attributes: the attribute frame (``Interactions.item_attributes``).
        columns: columns to use; None = every column except free text.
        separator: splits multi-valued string columns.
        buckets: quantile buckets for numeric columns.
    """
    if columns is None:
        columns = [c for c in attributes.columns if not _is_free_text(attributes[c])]
    else:
        columns = list(columns)
        missing = [c for c in columns if c not in attributes.columns]
        if missing:
            raise ConfigError(f"item feature column {missing[0]!r} is not among the item attributes "
                              f"({', '.join(map(str, attributes.columns)) or 'none'})")
    if buckets < 1:
        raise ConfigError(f"buckets must be ≥ 1 (got {buckets})")
    n = len(attributes)
    item_parts: list[np.ndarray] = []
    token_parts: list[np.ndarray] = []
    vocabulary: list[str] = []
    for column in columns:
        rows, labels = _column_tokens(attributes[column], str(column), separator, buckets)
        if len(labels) == 0:
            continue
        codes, uniques = pd.factorize(pd.Series(labels, dtype=object), sort=True)
        item_parts.append(rows)
        token_parts.append(codes.astype(np.int64) + len(vocabulary))
        vocabulary.extend(str(u) for u in uniques)
    rows = np.concatenate(item_parts) if item_parts else np.zeros(0, np.int64)
    toks = np.concatenate(token_parts) if token_parts else np.zeros(0, np.int64)
    order = np.lexsort((toks, rows))
    rows, toks = rows[order], toks[order]
    keep = np.ones(len(rows), bool)  # a value listed twice for one item counts once
    keep[1:] = (rows[1:] != rows[:-1]) | (toks[1:] != toks[:-1])
    rows, toks = rows[keep], toks[keep]
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return FeatureTokens(indptr, toks, tuple(vocabulary), tuple(str(c) for c in columns))


def _is_free_text(values: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return False
    present = values.dropna()
    if len(present) == 0:
        return True
    if len(present) < _FREE_TEXT_MIN_ITEMS:  # too few items to tell text from categories
        return False
    return present.astype(str).nunique() / len(present) > _FREE_TEXT_SHARE


def _column_tokens(values: pd.Series, name: str, separator: str, buckets: int) -> tuple[np.ndarray, list[str]]:
    """(item row of each token, token label) for one column; missing values give no token."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
        rows = np.flatnonzero(np.isfinite(numbers))
        if len(rows) == 0:
            return rows, []
        edges = np.unique(np.quantile(numbers[rows], np.linspace(0, 1, buckets + 1)))
        if len(edges) == 1:
            return rows, [f"{name}={_num(edges[0])}"] * len(rows)
        # bucket b covers [edges[b], edges[b+1]); the last one is closed on the right
        bucket = np.clip(np.searchsorted(edges, numbers[rows], side="right") - 1, 0, len(edges) - 2)
        names = [f"{name}=[{_num(edges[b])}, {_num(edges[b + 1])}{']' if b == len(edges) - 2 else ')'}"
                 for b in range(len(edges) - 1)]
        return rows, [names[b] for b in bucket]
    rows_out: list[int] = []
    labels: list[str] = []
    # one pass per item over its (few) values at fit time, never during training
    for row, value in enumerate(values.to_numpy(dtype=object)):
        for part in _values(value, separator):
            rows_out.append(row)
            labels.append(f"{name}={part}")
    return np.asarray(rows_out, dtype=np.int64), labels


def _values(value: object, separator: str) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return []
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value)
    parts = text.split(separator) if separator else [text]
    return [p.strip() for p in parts if p.strip() and p.strip() != "(no genres listed)"]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.4g}"
