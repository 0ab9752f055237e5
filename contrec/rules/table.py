"""Item attributes as sparse value matrices, the form rules are evaluated on (a whole catalogue at a time)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from contrec.errors import DataError

__all__ = ["AttributeTable"]


class AttributeTable:
    """Item attributes as sparse item × value matrices (``tokens``: pairwise "share a value" is one
    sparse product) and as the id of each item's value set (``set_id``: "the same values" is an id
    compare)."""

    def __init__(self, frame: pd.DataFrame, names: set[str], separator: str = "|") -> None:
        self.nonempty: dict[str, np.ndarray] = {}
        self.vocab: dict[str, dict[str, int]] = {}
        self.tokens: dict[str, sp.csr_matrix] = {}
        self.set_id: dict[str, np.ndarray] = {}
        for name in sorted(names):
            column = _column(frame, name)
            tokens = [_tokens(v, separator) for v in column.tolist()]  # per item (catalogue), not per draw
            vocab = {t: k for k, t in enumerate(sorted({t for ts in tokens for t in ts}))}
            rows = np.repeat(np.arange(len(tokens)), [len(ts) for ts in tokens])
            cols = np.array([vocab[t] for ts in tokens for t in ts], dtype=np.int64)
            sets: dict[tuple[str, ...], int] = {}
            self.set_id[name] = np.fromiter((sets.setdefault(ts, len(sets)) for ts in tokens), np.int64, len(tokens))
            self.vocab[name] = vocab
            self.tokens[name] = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)),
                                              shape=(len(tokens), max(len(vocab), 1)))
            self.nonempty[name] = np.diff(self.tokens[name].indptr) > 0

    def subset(self, rows: np.ndarray) -> "AttributeTable":
        """The same table for the items ``rows`` only (values and their numbering kept)."""
        part = object.__new__(AttributeTable)
        part.nonempty = {k: v[rows] for k, v in self.nonempty.items()}
        part.vocab = self.vocab
        part.tokens = {k: v[rows] for k, v in self.tokens.items()}
        part.set_id = {k: v[rows] for k, v in self.set_id.items()}
        return part

    def holds(self, name: str, value: str) -> np.ndarray:
        """``[n_items]`` bool: which items' attribute ``name`` holds ``value``."""
        vocab = self.vocab[name]
        if str(value) not in vocab:
            known = sorted(vocab)
            raise DataError(f"rule has({name}, {value!r}): no item has {name} {value!r}; its values include: "
                            f"{', '.join(map(repr, known[:12]))}{' …' if len(known) > 12 else ''}")
        return self.tokens[name][:, vocab[str(value)]].toarray().ravel() > 0

    def groups(self) -> tuple[np.ndarray, np.ndarray]:
        """(group id per item, one representative item per group): items with the same value sets of
        every rule attribute share a group."""
        stacked = np.stack([self.set_id[k] for k in sorted(self.set_id)], axis=1)  # [n, attributes] int
        if stacked.shape[1] == 1:
            _, first, inverse = np.unique(stacked[:, 0], return_index=True, return_inverse=True)
        else:
            _, first, inverse = np.unique(stacked, axis=0, return_index=True, return_inverse=True)
        return inverse.reshape(-1).astype(np.int64), first.astype(np.int64)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    if name == "decade" and "year" in frame.columns:
        years = pd.to_numeric(frame["year"], errors="coerce")
        return (years // 10 * 10).astype("Int64")
    raise DataError(f"domain rule uses attribute {name!r}, but the item attributes have only: "
                    f"{', '.join(map(str, frame.columns))}")


def _tokens(value: Any, separator: str) -> tuple[str, ...]:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ()
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return tuple(sorted({str(v) for v in value if str(v) != ""}))
    text = str(value)
    return tuple(sorted({t.strip() for t in text.split(separator) if t.strip()})) if text else ()
