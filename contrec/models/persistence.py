"""Model files of `ContrastiveRecommender`: one ``.npz`` of plain arrays with a JSON header, no pickle.

Written atomically (`contrec.runtime.artifact`): a crash mid-write leaves the previous file.
A file holds the served vectors, the known positives (never recommended back), the id maps,
the settings, the training history, every weight of both towers (to continue training:
``fit(more, warm_start=True)``), for a history user tower its weights (to encode new
users) and, when the CLI read the training log, how it read it (`contrec.cli.reading`). Reading checks the header against the arrays; a damaged or foreign file is a
one-line `ModelFileError`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from contrec.data.interactions import IdMap
from contrec.errors import ConfigError, DataError, ModelFileError, error_line
from contrec.nn.similarity import get_similarity
from contrec.nn.towers import build_user_tower
from contrec.models.selection import open_fallbacks
from contrec.models.warm import state_arrays, states_from_arrays
from contrec.runtime.artifact import read_artifact, write_artifact

if TYPE_CHECKING:  # pragma: no cover
    from contrec.models.contrastive import ContrastiveRecommender
    from contrec.serving.recommender import FactorRecommender

__all__ = ["save_model", "load_model", "catalogue_meta", "catalogue_arrays", "read_catalogue"]


def save_model(model: "ContrastiveRecommender", path: "str | os.PathLike[str]") -> Path:
    """Write a fitted model to ``path``; returns the path written."""
    params = model.get_params()
    params["similarity"] = model.similarity_.name
    sampler = model.sampler_  # None in a model read from a file: its settings are names already
    params["sampler"] = sampler.name if sampler is not None else str(model.sampler)
    if sampler is not None and (not isinstance(model.sampler, str) or not _json_safe(model.sampler_params)):
        # an instance (or parameters such as a DataFrame) cannot go into JSON: record what it reports
        params["sampler_params"] = sampler.params()
    meta = {
        "model": "ContrastiveRecommender",
        **catalogue_meta(model),
        "params": params,
        "metric": model._metric,
        "train_fingerprint": model.train_fingerprint_,
        "history": model.history_,
        "chosen": getattr(model, "chosen_", {}),  # what the validation carve chose (contrec.models.selection)
        "selection": getattr(model, "selection_", []),
        "best_epoch": getattr(model, "best_epoch_", None),
    }
    arrays = {"user_vectors": model.user_vectors_, "item_vectors": model.item_vectors_, "item_norms": model.item_norms_,
              **catalogue_arrays(model)}
    arrays.update(state_arrays(model))  # the tower weights a warm start continues (contrec.models.warm)
    encoder = getattr(model, "user_encoder_", None)
    if encoder is not None and encoder.history() is not None:
        # the history tower is needed again to encode new users (recommend_for_history)
        arrays.update({f"user_tower.{key}": value.detach().numpy()
                       for key, value in encoder.state_dict().items()})
    return write_artifact(path, arrays, meta)


def load_model(cls: "type[ContrastiveRecommender]", path: "str | os.PathLike[str]",
               read: "tuple[dict[str, np.ndarray], dict[str, Any]] | None" = None) -> "ContrastiveRecommender":
    """Read a model written by `save_model` (``read``: the file's arrays and header, when already read)."""
    arrays, meta = read if read is not None else read_artifact(path)
    if meta.get("model") != "ContrastiveRecommender":
        raise ModelFileError(f"{path}: holds a {meta.get('model')!r}, not a ContrastiveRecommender")
    try:
        params = dict(meta["params"])
        model = cls(**params)
        users, items, seen, attributes, reading = read_catalogue(arrays, meta)
        uv, iv = arrays["user_vectors"], arrays["item_vectors"]
        if uv.shape != (len(users), model.dim) or iv.shape != (len(items), model.dim):
            raise ValueError("array shapes do not match the header")
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, ConfigError, DataError) as err:
        raise ModelFileError(f"{path}: damaged model file ({str(err).splitlines()[0] if str(err) else err!r})"
                             ) from None
    n_users, n_items = len(users), len(items)
    model._metric = meta["metric"]
    try:
        model._index_options = model._index_settings(model._metric)
    except ConfigError as err:
        raise ModelFileError(f"{path}: damaged model file ({err})") from None
    model.users_, model.items_, model.seen_, model.item_attributes_ = users, items, seen, attributes
    model.reading_ = reading
    model._set_vectors(uv, iv)
    model.tower_states_ = states_from_arrays(arrays)  # checked against the towers when an update uses them
    if "item_norms" in arrays and arrays["item_norms"].shape == (n_items,):
        model.item_norms_ = arrays["item_norms"]
    model.similarity_ = get_similarity(params["similarity"], **(params.get("similarity_params") or {})) \
        if isinstance(params["similarity"], str) else None
    state = {key[len("user_tower."):]: torch.from_numpy(np.array(value)) for key, value in arrays.items()
             if key.startswith("user_tower.")}
    if state:
        try:
            towers, _, _ = model._configs(chosen=meta.get("chosen") or {})
            encoder = build_user_tower(towers, n_users, seen, torch.Generator().manual_seed(0))
            encoder.load_state_dict(state)
        except (RuntimeError, ConfigError, ValueError) as err:
            raise ModelFileError(f"{path}: damaged user tower ({error_line(err)})") from None
        encoder.eval()
        model.user_encoder_ = encoder
    model.sampler_ = None
    model.history_ = meta.get("history", [])
    model.chosen_, model.selection_ = dict(meta.get("chosen") or {}), list(meta.get("selection") or [])
    model.best_epoch_ = meta.get("best_epoch")
    model.user_tower_ = model.chosen_.get("user_tower", open_fallbacks(model).get("user_tower", model.user_tower))
    model.train_fingerprint_ = meta.get("train_fingerprint")
    return model


def catalogue_meta(model: "FactorRecommender") -> dict[str, Any]:
    """The header entries every model file has: versions, size and the item attributes (rules use them)."""
    import faiss

    from contrec._version import __version__

    attributes = None
    if getattr(model, "item_attributes_", None) is not None:
        attributes = model.item_attributes_.reset_index(drop=True).to_json(orient="split", index=False)
    return {
        "contrec_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "libraries": {"torch": torch.__version__, "numpy": np.__version__, "faiss": faiss.__version__,
                      "pandas": pd.__version__},
        "n_users": len(model.users_), "n_items": len(model.items_),
        "item_attributes": attributes,
        # how the CLI read the training log (contrec.cli.reading): the logs read for the model later default to it
        "reading": getattr(model, "reading_", None),
    }


def catalogue_arrays(model: "FactorRecommender") -> dict[str, np.ndarray]:
    """The arrays every model file has: the id maps and the known positives (never recommended back)."""
    return {"seen_indptr": model.seen_.indptr.astype(np.int64), "seen_indices": model.seen_.indices.astype(np.int32),
            "user_ids": _str_array(model.users_.ids), "item_ids": _str_array(model.items_.ids)}


def read_catalogue(arrays: dict[str, np.ndarray], meta: dict[str, Any]
                   ) -> tuple[IdMap, IdMap, sp.csr_matrix, "pd.DataFrame | None", dict[str, Any] | None]:
    """Users, items, known positives, item attributes and how the CLI read the training log (`_reading`) of a
    file; KeyError / ValueError where it is damaged."""
    users, items = IdMap(arrays["user_ids"]), IdMap(arrays["item_ids"])
    if (len(users), len(items)) != (meta["n_users"], meta["n_items"]):
        raise ValueError("the id maps do not match the header")
    seen = sp.csr_matrix((np.ones(len(arrays["seen_indices"]), np.float32), arrays["seen_indices"],
                          arrays["seen_indptr"]), shape=(len(users), len(items)))
    seen.check_format(full_check=True)
    attributes = None
    if meta.get("item_attributes"):
        from io import StringIO

        attributes = pd.read_json(StringIO(meta["item_attributes"]), orient="split")
        attributes.index = pd.Index(items.ids, dtype=object, name="item")
    return users, items, seen, attributes, _reading(meta)


def _reading(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The header's record of how the training log was read (None when the CLI did not read one); ValueError
    where it is damaged."""
    reading = meta.get("reading")
    if reading is None:
        return None
    if not isinstance(reading, dict) or not all(isinstance(key, str) and (value is None or isinstance(
            value, (str, int, float))) for key, value in reading.items()):
        raise ValueError("the record of how the training log was read is damaged")
    return dict(reading)


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _str_array(values: np.ndarray) -> np.ndarray:
    """Ids as a fixed-width unicode array (no pickle needed to store it)."""
    return np.asarray(values, dtype=str) if len(values) else np.zeros(0, dtype="<U1")
