"""Vectors and scores out of a fitted model: for a vector database, for re-ranking another system's candidates.

The vectors are the ones the model serves from: what its FAISS index holds (items) and
what it searches with (users), after the kernel's own map (unit length for cosine, the
kernel's embedding for the distance kernels). The metric says how to compare them —
``ip`` (inner product) or ``l2`` (Euclidean) — and a bare FAISS index of that metric over
the item vectors ranks exactly as `recommend` does::

    import faiss, numpy as np
    items = model.item_vectors()                    # columns item, vector
    users = model.user_vectors()                    # columns user, vector
    index = faiss.IndexFlatIP(model.vector_dim) if model.vector_metric == "ip" else faiss.IndexFlatL2(model.vector_dim)
    index.add(np.stack(items["vector"]))
    _, top = index.search(np.stack(users["vector"].iloc[:5]), 10)   # rows of item positions
    items["item"].to_numpy()[top]                                    # raw item ids (seen items not filtered)

`FactorRecommender.score` gives the model's score for given (user, item) pairs — the same
number `recommend` reports (a distance kernel's similarity, not FAISS's squared distance).
`export_vectors` writes both tables for a vector database: Parquet (an id column and a
list<float32> vector column) or NumPy (``.npy`` float32 matrices with the ids one per
line beside them — ids are text, and ``.npy`` object arrays would need pickle), plus a
``vectors.json`` that names the metric and dimension. Files are written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from contrec.data.interactions import IdMap, as_id_list
from contrec.errors import ConfigError, DataError
from contrec.runtime.artifact import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    from contrec.serving.recommender import FactorRecommender

__all__ = ["vectors_frame", "pair_scores", "served_scores", "export_vectors", "EXPORT_FORMATS"]

EXPORT_FORMATS = ("parquet", "npy")
_PAIRS_PER_CHUNK = 1 << 18


def vectors_frame(ids: IdMap, vectors: np.ndarray, key: str) -> pd.DataFrame:
    """``key`` (raw id) and ``vector`` (a float32 array per row), in the model's index order."""
    return pd.DataFrame({key: pd.Series(ids.ids, dtype=object).astype(str),
                         "vector": list(np.ascontiguousarray(vectors, dtype=np.float32))})


def pair_scores(model: "FactorRecommender", users: Any, items: Any = None, *,
                unknown: Literal["raise", "nan"] = "raise") -> pd.DataFrame:
    """The model's score of each (user, item) pair, in the order given (see `FactorRecommender.score`)."""
    if unknown not in ("raise", "nan"):
        raise ConfigError(f"unknown={unknown!r} is not valid; choose 'raise' or 'nan'")
    if items is None:
        if not isinstance(users, pd.DataFrame) or not {"user", "item"} <= set(users.columns):
            raise ConfigError("score: pass users and items as two lists, or one frame with columns user, item")
        raw_u, raw_i = as_id_list(users["user"]), as_id_list(users["item"])
    else:
        raw_u, raw_i = as_id_list(users), as_id_list(items)
        if len(raw_u) != len(raw_i):
            raise ConfigError(f"score: {len(raw_u)} users but {len(raw_i)} items; give one item per user")
    u, i = model.users_.index(raw_u), model.items_.index(raw_i)
    known = (u >= 0) & (i >= 0)
    if unknown == "raise" and not known.all():
        row = int(np.argmax(~known))
        what = f"user id {str(raw_u[row])!r}" if u[row] < 0 else f"item id {str(raw_i[row])!r}"
        raise DataError(f"pair {row}: {what} is not in the training data; pass unknown='nan' to score it NaN")
    out = np.full(len(raw_u), np.nan, dtype=np.float64)
    rows = np.flatnonzero(known)
    for s in range(0, len(rows), _PAIRS_PER_CHUNK):  # bounded memory: pairs × dim floats per chunk
        r = rows[s:s + _PAIRS_PER_CHUNK]
        out[r] = served_scores(model, model.user_vectors_[u[r]], model.item_vectors_[i[r]])
    return pd.DataFrame({"user": pd.Series(raw_u, dtype=object).astype(str),
                         "item": pd.Series(raw_i, dtype=object).astype(str), "score": out})


def served_scores(model: "FactorRecommender", a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The model's score between each row of ``a`` and the same row of ``b`` (served vectors): what the index
    computes (inner product, or −squared distance) mapped to the kernel's own score, as `recommend` reports it."""
    raw = (a * b).sum(1) if model._metric == "ip" else -((a - b) ** 2).sum(1)
    return model._scores_from_index(np.zeros((len(raw), 1), np.int64), raw[:, None].astype(np.float32))[:, 0]


def export_vectors(model: "FactorRecommender", out: str | Path, fmt: str = "parquet") -> list[Path]:
    """Write user and item vectors under the folder ``out`` as ``fmt`` (parquet | npy); return the paths."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"export format {fmt!r} is not known; choose one of: {', '.join(EXPORT_FORMATS)}")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for key, ids, vectors in (("user", model.users_, model.user_vectors_), ("item", model.items_, model.item_vectors_)):
        if fmt == "parquet":
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError:  # pragma: no cover - pyarrow is in the test extra
                raise ConfigError("Parquet export needs pyarrow: pip install 'contrec[parquet]' (or use --format npy)")
            flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
            column = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
            table = pa.table({key: pa.array([str(x) for x in ids.ids], type=pa.string()), "vector": column})
            path = folder / f"{key}s.parquet"
            atomic_write(path, lambda fh, t=table: pq.write_table(t, fh))
            written.append(path)
        else:
            path = folder / f"{key}_vectors.npy"
            matrix = np.ascontiguousarray(vectors, dtype=np.float32)
            atomic_write(path, lambda fh, m=matrix: np.save(fh, m, allow_pickle=False))
            ids_path = folder / f"{key}_ids.txt"
            text = "".join(f"{x}\n" for x in ids.ids)
            atomic_write(ids_path, lambda fh, t=text: fh.write(t.encode("utf-8")))
            written += [path, ids_path]
    meta = {"metric": model._metric, "dim": int(model.item_vectors_.shape[1]), "users": len(model.users_),
            "items": len(model.items_), "format": fmt, "model": type(model).__name__,
            "similarity": str(getattr(model, "similarity", "dot")),
            "note": "a FAISS IndexFlatIP (metric ip) or IndexFlatL2 (metric l2) over the item vectors ranks "
                    "as the model does; seen items are not filtered there"}
    path = folder / "vectors.json"
    atomic_write(path, lambda fh: fh.write(json.dumps(meta, indent=2).encode("utf-8")))
    return written + [path]
