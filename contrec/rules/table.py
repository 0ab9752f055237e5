"""Item attributes as bitsets, the form rules are evaluated on (a whole catalogue at a time)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from contrec.errors import DataError

__all__ = ["AttributeTable"]


class AttributeTable:
    """Item attributes as bitsets: one bit per distinct value, per attribute."""

    def __init__(self, frame: pd.DataFrame, names: set[str], separator: str = "|") -> None:
        self.bits: dict[str, np.ndarray] = {}
        self.nonempty: dict[str, np.ndarray] = {}
        for name in sorted(names):
            column = _column(frame, name)
            tokens = [_tokens(v, separator) for v in column.tolist()]  # per item (catalogue), not per draw
            vocab = {t: k for k, t in enumerate(sorted({t for ts in tokens for t in ts}))}
            words = max(1, math.ceil(len(vocab) / 64))
            bits = np.zeros((len(tokens), words), dtype=np.uint64)
            rows = np.repeat(np.arange(len(tokens)), [len(ts) for ts in tokens])
            cols = np.array([vocab[t] for ts in tokens for t in ts], dtype=np.int64)
            if len(cols):
                np.bitwise_or.at(bits, (rows, cols // 64), np.left_shift(np.uint64(1), (cols % 64).astype(np.uint64)))
            self.bits[name] = bits
            self.nonempty[name] = bits.any(axis=1)

    def groups(self) -> tuple[np.ndarray, np.ndarray]:
        """(group id per item, one representative item per group) over all rule attributes."""
        stacked = np.concatenate([self.bits[k] for k in sorted(self.bits)], axis=1)
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
