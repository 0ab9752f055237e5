"""Updating a fitted model with new interactions, without starting over (``fit(more, warm_start=True)``).

What carries over: every weight of the user and item towers (the model file keeps them as
``warm.user.*`` / ``warm.item.*``) — tables with a row per user or item (`Encoder.row_spaces`)
row by row through the raw ids, the rest (gates, transforms, projection heads) as they
are — and the settings the first fit chose on its validation carve (τ, weight decay …), so
no carve is fitted again. A feature item tower's attribute-token rows follow each token's
text into the new vocabulary. What is new: users and items the model has not seen are appended to the id
maps (old ids keep their rows), and their rows start where their neighbours already are —
a new user at the mean of the old vectors of the items it interacted with, a new item at
its features (a feature tower: ID part zero) or at the mean of the vectors of its users (the other side's own table, or its served vectors
when it has none, e.g. a history user tower) — so a new row is useful from the first step
and scores on the same scale as the old ones (new items are started after new users, so an
item seen only by new users starts from their fresh rows); a row with no known neighbour
keeps a small random start.

Training runs on the union of the known positives and the new ones (``train_on="union"``,
the default: the old positives are the model's seen matrix, weight 1) or on the new ones
only (``"new"``: cheaper, may drift from the old users); either way every old and new
positive stays known to the model, so neither is recommended back.

Example:
    >>> model = ContrastiveRecommender.load("model.contrec")          # doctest: +SKIP
    >>> model.fit(this_week, warm_start=True).save("model.contrec")   # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from contrec.data.interactions import IdMap, Interactions, binary_matrix
from contrec.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from contrec.models.contrastive import ContrastiveRecommender
    from contrec.nn.encoders import Encoder
    from contrec.nn.features import FeatureTokens

__all__ = ["WarmStart", "prepare_update", "warm_epochs", "tower_states", "state_arrays", "states_from_arrays",
           "TRAIN_ON"]

TRAIN_ON = ("union", "new")


class WarmStart:
    """The old id maps, tower weights and served vectors a warm fit starts from; copies them into new towers."""

    def __init__(self, users: IdMap, items: IdMap, states: dict[str, dict[str, np.ndarray]],
                 user_vectors: np.ndarray, item_vectors: np.ndarray, vocabulary: tuple[str, ...] = ()) -> None:
        self.users, self.items, self.states = users, items, states
        self.served = {"user": user_vectors, "item": item_vectors}
        self.vocabulary = vocabulary  # a feature item tower's attribute tokens, in its table's row order

    def apply(self, user: "Encoder", item: "Encoder", train: Interactions,
              tokens: "FeatureTokens | None" = None) -> dict[str, int]:
        """Copy the old weights into the towers built for ``train`` (whose maps extend the old ones) and start
        the new rows of each tower's own table from their neighbours. Returns how many were new / started."""
        binary = binary_matrix(train.matrix)
        old_n = {"user": len(self.users), "item": len(self.items)}
        neighbours = {"user": binary[:, :old_n["item"]], "item": binary.T.tocsr()}
        started = {}
        for side, encoder in (("user", user), ("item", item)):  # items after users: see the module doc
            other = "item" if side == "user" else "user"
            spaces = encoder.row_spaces()
            state = encoder.state_dict()
            own, features = None, False
            for name, old in self.states[side].items():
                space, new = spaces.get(name), state.get(name)
                if new is None:
                    raise ConfigError(f"warm_start: the saved {side} tower has {name!r}, the new one does not")
                if space == "token":  # attribute tokens: rows follow the token's text (new tokens start random)
                    _copy_tokens(new, old, self.vocabulary, tokens.vocabulary if tokens is not None else ())
                    features = True
                    continue
                if space is None:
                    if tuple(new.shape) != old.shape:
                        raise ConfigError(f"warm_start: {side} tower parameter {name!r} changed shape")
                    new.copy_(torch.from_numpy(old))
                    continue
                if tuple(new.shape[1:]) != old.shape[1:] or len(old) > len(new):
                    raise ConfigError(f"warm_start: the saved {side} tower's {name!r} {old.shape} does not fit the "
                                      f"model's id maps ({tuple(new.shape)}); the model file is damaged")
                new[:len(old)] = torch.from_numpy(old)  # old ids keep their rows: the maps only grow
                if space == "own":
                    own = new
            started[side] = 0
            if own is not None and features:  # a feature tower: a new item is its features (ID part from zero)
                own[old_n[side]:] = 0.0
                started[side] = len(own) - old_n[side]
            elif own is not None:
                # a new user starts from the old item rows; a new item from the user rows (new users started)
                source = self._own_old("item", item) if side == "user" else _own_table(user)
                if source is None:  # the other side has no table of its own: its served vectors
                    source = self.served[other]
                started[side] = _start_rows(own, old_n[side], neighbours[side][:, :len(source)], source)
            encoder.load_state_dict(state)
        return {"new_users": train.n_users - old_n["user"], "new_items": train.n_items - old_n["item"],
                "new_users_started": started["user"], "new_items_started": started["item"]}

    def _own_old(self, side: str, encoder: "Encoder") -> np.ndarray | None:
        """The saved own-row table of a side (the old rows), or None."""
        for name, space in encoder.row_spaces().items():
            if space == "own" and name in self.states[side]:
                return self.states[side][name]
        return None


def _copy_tokens(new: torch.Tensor, old: np.ndarray, old_vocabulary: tuple[str, ...],
                 new_vocabulary: tuple[str, ...]) -> None:
    """Token rows of the old table into the new one, matched by the token's text."""
    if len(old_vocabulary) != len(old):
        raise ConfigError("warm_start: the saved feature tower's tokens do not match its attributes; refit the model")
    where = {token: n for n, token in enumerate(new_vocabulary)}
    pairs = [(where[token], n) for n, token in enumerate(old_vocabulary) if token in where]
    if pairs:
        to, frm = (np.asarray(p, dtype=np.int64) for p in zip(*pairs))
        new[torch.from_numpy(to)] = torch.from_numpy(old[frm])


def known_feature_tokens(model: "ContrastiveRecommender") -> "FeatureTokens":
    """The attribute tokens of a fitted feature tower: kept by the fit, rebuilt for a loaded model from its
    attributes and settings (the same function over the same attributes: the same tokens, in the same order)."""
    tokens = getattr(model, "feature_tokens_", None)
    if tokens is None:
        from contrec.nn.towers import feature_tokens

        towers, _, _ = model._configs(chosen=getattr(model, "chosen_", {}) or {})
        tokens = feature_tokens(towers, known_positives(model))
        model.feature_tokens_ = tokens
    return tokens


def known_positives(model: "ContrastiveRecommender") -> Interactions:
    """Everything the model knows as one `Interactions` (binary), with its item attributes."""
    return Interactions(sp.csr_matrix(model.seen_, dtype=np.float32), model.users_, model.items_, None,
                        model.item_attributes_)


def _own_table(encoder: "Encoder") -> np.ndarray | None:
    """A tower's current own-row table (new users already started), or None."""
    for name, space in encoder.row_spaces().items():
        if space == "own":
            return encoder.state_dict()[name].detach().cpu().numpy()
    return None


def _start_rows(table: torch.Tensor, first_new: int, neighbours: sp.csr_matrix, source: np.ndarray) -> int:
    """Rows ``first_new:`` of ``table`` ← the mean ``source`` vector of each row's neighbours (if it has any)."""
    rows = neighbours[first_new:]
    counts = np.diff(rows.indptr)
    have = np.flatnonzero(counts > 0)
    if len(have) == 0:
        return 0
    means = (rows[have] @ source) / counts[have, None]
    with torch.no_grad():
        table[first_new + torch.from_numpy(have)] = torch.from_numpy(np.asarray(means, dtype=np.float32))
    return int(len(have))


def tower_states(user: "Encoder", item: "Encoder") -> dict[str, dict[str, np.ndarray]]:
    """Every weight of both towers as CPU arrays, by state-dict name: what a warm start continues. Views of the
    fitted towers' tensors (the towers are not trained again: an update builds new ones), so no second copy."""
    return {side: {name: value.detach().cpu().numpy() for name, value in encoder.state_dict().items()}
            for side, encoder in (("user", user), ("item", item))}


def _extended(old: IdMap, new_raw: np.ndarray) -> IdMap:
    """The old map with the ids of ``new_raw`` it lacks appended, in first-seen order."""
    raw = pd.unique(pd.Series(new_raw, dtype=object).astype(str))
    fresh = raw[old.index(raw) < 0]
    return IdMap(np.concatenate([old.ids.astype(object), fresh.astype(object)])) if len(fresh) else old


def prepare_update(model: "ContrastiveRecommender", more: Interactions, train_on: str
                   ) -> tuple[Interactions, sp.csr_matrix, WarmStart]:
    """(what to train on, every known positive ``[users, items]``, the warm start), in the extended id maps."""
    if train_on not in TRAIN_ON:
        raise ConfigError(f"train_on={train_on!r} is not valid; choose one of: {', '.join(TRAIN_ON)}")
    states = getattr(model, "tower_states_", None)
    if not states:
        raise ConfigError("warm_start needs the towers' weights: a model fitted, or saved, by this contrec "
                          "version (older model files hold only the served vectors)")
    users = _extended(model.users_, more.users.ids)
    items = _extended(model.items_, more.items.ids)
    old = sp.csr_matrix(model.seen_).tocoo()
    new = more.matrix.tocoo()
    nu = users.index(more.users.ids.astype(str))[new.row]
    ni = items.index(more.items.ids.astype(str))[new.col]
    shape = (len(users), len(items))
    new_m = sp.csr_matrix((new.data.astype(np.float32), (nu, ni)), shape=shape)
    new_m.sum_duplicates()
    old_m = sp.csr_matrix((np.ones(old.nnz, np.float32), (old.row, old.col)), shape=shape)
    known = binary_matrix(old_m + new_m)
    if train_on == "union":  # a new weight wins where a pair is in both
        overlap = old_m.multiply(binary_matrix(new_m))
        matrix = (old_m - overlap + new_m).tocsr()
    else:
        matrix = new_m
    matrix.sort_indices()
    matrix.eliminate_zeros()
    attributes = _attributes(model.item_attributes_, more.item_attributes, items)
    train = Interactions(matrix.astype(np.float32), users, items, None, attributes)
    vocabulary = known_feature_tokens(model).vocabulary if model.item_tower == "features" else ()
    warm = WarmStart(model.users_, model.items_, states, model.user_vectors_, model.item_vectors_, vocabulary)
    return train, known, warm


def _attributes(old: pd.DataFrame | None, new: pd.DataFrame | None, items: IdMap) -> pd.DataFrame | None:
    """Item attributes for the extended catalogue: the new data's where it has them, else the model's."""
    if old is None and new is None:
        return None
    parts = [f for f in (new, old) if f is not None]
    frame = pd.concat([p.set_axis(p.index.astype(str)) for p in parts])
    frame = frame[~frame.index.duplicated(keep="first")].reindex(pd.Index(items.ids.astype(str), dtype=object))
    frame.index.name = "item"
    return frame


def warm_epochs(model: "ContrastiveRecommender", epochs: int | None) -> int:
    """Epochs of an update: as given, else a quarter of the first fit's (at least 2) — the tables start trained."""
    if epochs is not None:
        if int(epochs) < 1:
            raise ConfigError(f"epochs must be ≥ 1 (got {epochs})")
        return int(epochs)
    first = (getattr(model, "chosen_", None) or {}).get("epochs") or getattr(model, "best_epoch_", None) or model.epochs
    return max(2, math.ceil(int(first) / 4))


def state_arrays(model: "ContrastiveRecommender") -> dict[str, Any]:
    """The arrays a model file keeps for warm starts: ``warm.<side>.<parameter>``."""
    states = getattr(model, "tower_states_", None) or {}
    return {f"warm.{side}.{name}": value for side, params in states.items() for name, value in params.items()}


def states_from_arrays(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]] | None:
    """The inverse of `state_arrays` (None when the file holds no tower weights)."""
    states: dict[str, dict[str, np.ndarray]] = {"user": {}, "item": {}}
    for key, value in arrays.items():
        if key.startswith("warm."):
            _, side, name = key.split(".", 2)
            if side in states:
                states[side][name] = np.array(value)
    return states if states["user"] and states["item"] else None
