"""Model files of the baselines (popularity, ALS, BPR, item-kNN, EASE); `contrec.load` reads any model file.

A baseline is served from vectors (`contrec.models.baselines`: its score is the inner product of
a user vector and an item vector), so its file holds those, beside what every model file holds
(`contrec.models.persistence`: the id maps, the known positives that are never recommended back,
the item attributes that serving rules read) and its settings. The format is contrec's own: one
``.npz`` of plain arrays with a JSON header, written atomically, read without pickle.

A loaded baseline serves as it did after ``fit``: recommendations with seen items filtered,
allow-lists, exclusions and rules, evaluation, exported vectors, and new users from a history
(ALS by its fold-in solve against the saved item factors, item–item models from the history row).
Nothing is trained after loading: ``contrec fit --from`` continues contrec's own models only.

Vectors are stored dense or as sparse rows, whichever is smaller: an item-kNN model keeps each
item's 100 neighbours of thousands, and its users' vectors are their training rows, so both are
mostly zeros; EASE's item–item weights are dense (a 9,700-item catalogue: 376 MB), and deflate
would shrink such float weights by a few percent at many times the write time, so those files
are stored uncompressed.

Example:
    >>> als = ImplicitALS(factors=128).fit(train)     # doctest: +SKIP
    >>> als.save("als.contrec")                       # doctest: +SKIP
    >>> model = contrec.load("als.contrec")           # doctest: +SKIP
    >>> model.recommend(["196"], k=10)                 # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from contrec.errors import ConfigError, DataError, ModelFileError, NotFittedError, error_line
from contrec.models.persistence import catalogue_arrays, catalogue_meta, read_catalogue
from contrec.runtime.artifact import read_artifact, write_artifact
from contrec.serving.recommender import FactorRecommender

__all__ = ["save_baseline", "load_baseline"]

_VECTORS = ("user_vectors", "item_vectors")


def save_baseline(model: FactorRecommender, path: "str | os.PathLike[str]") -> Path:
    """Write a fitted baseline to ``path`` (atomically); returns the path written."""
    name = type(model).__name__
    if not hasattr(model, "get_params"):
        raise ConfigError(f"{name} has no settings to save (get_params); contrec saves its own models and baselines")
    if not hasattr(model, "index_"):
        raise NotFittedError(f"{name} is not fitted yet: call fit(train) before save")
    arrays = catalogue_arrays(model)
    dense = False
    for key in _VECTORS:
        matrix = getattr(model, f"{key}_")
        if np.count_nonzero(matrix) * 2 < matrix.size:  # sparse rows: values + column indices < dense floats
            rows = sp.csr_matrix(matrix)
            arrays.update({f"{key}.indptr": rows.indptr.astype(np.int64), f"{key}.indices": rows.indices.astype(np.int32),
                           f"{key}.data": rows.data.astype(np.float32)})
        else:
            arrays[key] = matrix
            dense = dense or matrix.size > 1 << 22
    for key in getattr(model, "_saved_item_arrays", ()):  # per-item state it serves from (popularity: counts)
        arrays[key] = getattr(model, f"{key}_")
    meta = {"model": name, **catalogue_meta(model), "params": model.get_params(), "metric": model._metric,
            "dims": [int(model.user_vectors_.shape[1]), int(model.item_vectors_.shape[1])],
            "index": getattr(model, "_index_options", None) or None}
    return write_artifact(path, arrays, meta, compress=not dense)


def load_baseline(path: "str | os.PathLike[str]", classes: Mapping[str, type],
                  read: "tuple[dict[str, np.ndarray], dict[str, Any]] | None" = None) -> FactorRecommender:
    """Read a baseline written by `save_baseline`, of one of ``classes`` (by class name).

    ``read``: the file's arrays and header, when already read."""
    arrays, meta = read if read is not None else read_artifact(path)
    cls = classes.get(meta.get("model"))  # type: ignore[arg-type]
    if cls is None:
        kinds = ", ".join(sorted(classes))
        raise ModelFileError(f"{path}: holds a {meta.get('model')!r}, not a {kinds}" if len(classes) == 1 else
                             f"{path}: holds a {meta.get('model')!r}, which this contrec cannot load (it loads "
                             f"ContrastiveRecommender, {kinds})")
    try:
        model = cls(**meta["params"])
        users, items, seen, attributes, reading = read_catalogue(arrays, meta)
        dims = meta["dims"]
        user_vectors = _vectors(arrays, "user_vectors", (len(users), dims[0]))
        item_vectors = _vectors(arrays, "item_vectors", (len(items), dims[1]))
        if dims[0] != dims[1] or meta["metric"] not in ("ip", "l2"):
            raise ValueError("the header's dimensions or metric are not a factor model's")
        for name in getattr(cls, "_saved_item_arrays", ()):
            values = np.asarray(arrays[name], dtype=np.float64)
            if values.shape != (len(items),):
                raise ValueError(f"the item {name} do not match the items")
            setattr(model, f"{name}_", values)
    except (KeyError, TypeError, ValueError, IndexError, ConfigError, DataError) as err:
        raise ModelFileError(f"{path}: damaged model file ({str(err).splitlines()[0] if str(err) else err!r})"
                             ) from None
    model.users_, model.items_, model.seen_, model.item_attributes_ = users, items, seen, attributes
    model.reading_ = reading
    model._metric = meta["metric"]
    model._rule_tables = {}
    try:
        if meta.get("index"):
            model._index_options = dict(meta["index"])
        model._set_vectors(user_vectors, item_vectors)
    except (TypeError, ValueError, ConfigError) as err:
        raise ModelFileError(f"{path}: damaged model file (its index settings: {error_line(err)})") from None
    return model


def _vectors(arrays: dict[str, np.ndarray], key: str, shape: tuple[int, int]) -> np.ndarray:
    """A dense ``[rows, dim]`` float32 matrix, stored dense or as sparse rows; ValueError where it does not fit."""
    if key in arrays:
        matrix = np.asarray(arrays[key], dtype=np.float32)
    else:
        rows = sp.csr_matrix((arrays[f"{key}.data"], arrays[f"{key}.indices"], arrays[f"{key}.indptr"]), shape=shape)
        rows.check_format(full_check=True)
        matrix = rows.toarray().astype(np.float32, copy=False)
    if matrix.shape != shape:
        raise ValueError(f"{key} is {matrix.shape[0]} × {matrix.shape[1]}, the header says {shape[0]} × {shape[1]}")
    return matrix
