"""Why an item was recommended: which of the user's history items count most for its score.

Two ways, chosen by what the model can do:

- ``"leave-one-out"`` — a model that encodes users from their items (contrec's history and
  SimpleX towers, ALS's fold-in, EASE and item-kNN (whose user vector is the history row):
  whatever serves `recommend_for_history`): the user is encoded from the history again,
  and again without each history item in turn; the item's score drop is that item's effect.
  Exact for the history part as the model encodes it (no linear approximation of attention
  or gates; a user-ID part, ``history_user_id=True``, is left out of both); one batch of
  |history| encodings, for histories up to 2,000 items.
- ``"similarity"`` — every other model (ID and graph towers, BPR): the history
  items closest to the recommended one under the model's own similarity, the "because you
  liked …" of an item-to-item view.

Example:
    >>> model.explain("1", "172", k=3)                                            # doctest: +SKIP
      user item history_item    effect         method  rank
    0    1  172          181  0.142113  leave-one-out     1
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from contrec.data.interactions import as_id_list
from contrec.errors import ConfigError, DataError
from contrec.serving.vectors import served_scores

if TYPE_CHECKING:  # pragma: no cover
    from contrec.serving.recommender import FactorRecommender

__all__ = ["explain"]

_MAX_LEAVE_ONE_OUT = 2000  # |history|² entries are encoded; longer histories are explained by similarity


def _one(model: "FactorRecommender", raw: Any, what: str) -> int:
    ids = as_id_list([raw])
    index = (model.users_ if what == "user" else model.items_).index(ids)
    if index[0] < 0:
        known = len(model.users_ if what == "user" else model.items_)
        raise DataError(f"{what} id {str(ids[0])!r} is not in the training data ({known} known {what}s)")
    return int(index[0])


def _leave_one_out_capable(model: "FactorRecommender") -> bool:
    try:
        model._check_history_support()
    except ConfigError:
        return False
    return True


def _pair_scores(model: "FactorRecommender", users: np.ndarray, item: int) -> np.ndarray:
    """The model's score of ``item`` for each row of ``users`` (``[rows, d]`` served vectors)."""
    return _pair_scores_of(model, model.item_vectors_[item], users)


def _pair_scores_of(model: "FactorRecommender", one: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The model's score between the served vector ``one`` and each of ``rows`` (the kernels are symmetric)."""
    return served_scores(model, np.broadcast_to(one[None, :], rows.shape), rows)


def explain(model: "FactorRecommender", user: Any, item: Any, k: int = 5, by: str = "history") -> pd.DataFrame:
    """The ``k`` history items of ``user`` that count most for ``item``'s score; see the module docstring.

    ``by="attributes"`` (a feature item tower): the item's attribute tokens instead — the score
    drop when the item is encoded without each token (column ``attribute``, method
    ``"attribute leave-one-out"``).

    Returns:
        DataFrame with columns user, item, history_item, effect (score drop without it, or the
        similarity), method (``"leave-one-out"`` or ``"similarity"``), rank (1 = counts most).
    """
    if k < 1:
        raise ConfigError(f"k must be ≥ 1 (got {k})")
    if by not in ("history", "attributes"):
        raise ConfigError(f"by={by!r} is not valid; choose 'history' or 'attributes'")
    u, i = _one(model, user, "user"), _one(model, item, "item")
    if by == "attributes":
        return _attribute_effects(model, u, i, k)
    history = model.seen_[u].indices.astype(np.int64)
    if len(history) == 0:
        effect, method = np.zeros(0, np.float32), "similarity"
    elif _leave_one_out_capable(model) and len(history) <= _MAX_LEAVE_ONE_OUT:
        n = len(history)
        full = sp.csr_matrix((np.ones(n, np.float32), (np.zeros(n, np.int64), history)), shape=(1, len(model.items_)))
        rows = np.repeat(np.arange(n), n - 1)
        cols = np.concatenate([np.delete(history, j) for j in range(n)]) if n > 1 else np.zeros(0, np.int64)
        without = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, len(model.items_)))
        vectors = model._encode_histories(sp.vstack([full, without]).tocsr())
        scores = _pair_scores(model, vectors, i)
        effect, method = scores[0] - scores[1:], "leave-one-out"
    else:
        effect, method = _pair_scores(model, model.item_vectors_[history], i), "similarity"
    order = np.argsort(-effect, kind="stable")[:k]
    return pd.DataFrame({"user": str(model.users_.ids[u]), "item": str(model.items_.ids[i]),
                         "history_item": model.items_.ids[history[order]].astype(str),
                         "effect": effect[order].astype(np.float64), "method": method,
                         "rank": np.arange(1, len(order) + 1)})


def _feature_tower(model: Any) -> tuple[Any, Any]:
    """The model's feature item tower and its tokens (rebuilt from the file's weights for a loaded model)."""
    from contrec.models.warm import known_feature_tokens, known_positives

    if getattr(model, "item_tower", None) != "features":
        raise ConfigError(f"by='attributes' needs a feature item tower (item_tower='features'); this model has "
                          f"item_tower={getattr(model, 'item_tower', 'none')!r}")
    encoder = getattr(model, "item_encoder_", None)
    tokens = known_feature_tokens(model)
    if encoder is None:
        import torch

        from contrec.nn.towers import build_item_tower

        states = getattr(model, "tower_states_", None)
        if not states:
            raise ConfigError("by='attributes' needs the item tower's weights: a model saved by this contrec version")
        towers, _, _ = model._configs(chosen=getattr(model, "chosen_", {}) or {})
        encoder = build_item_tower(towers, known_positives(model), torch.Generator().manual_seed(0), tokens)
        encoder.load_state_dict({name: torch.from_numpy(v) for name, v in states["item"].items()})
        model.item_encoder_ = encoder
    return encoder, tokens


def _attribute_effects(model: Any, u: int, i: int, k: int) -> pd.DataFrame:
    """Each attribute token's effect on the score: the item encoded with all its tokens, then without each."""
    import torch

    encoder, vocabulary = _feature_tower(model)
    tower = encoder.without_head()
    tokens = tower.indices[int(tower.indptr[i]):int(tower.indptr[i + 1])]  # the item's token ids
    with torch.no_grad():
        rows = tower.tokens.weight[tokens]  # [n, d]
        own = tower.id.weight[i] * float(bool(tower.known[i]))  # an item without interactions: features alone
        n = len(tokens)
        full = rows.mean(0) + own
        # without token j: the mean of the others (no token left: the ID part alone)
        without = (rows.sum(0)[None, :] - rows) / (n - 1) + own if n > 1 else own[None, :].expand(n, -1)
        variants = torch.cat([full[None, :], without])
        if model.serve_from == "head":
            variants = encoder.project(variants)
    served = model.similarity_.prepare(variants.numpy())
    scores = _pair_scores_of(model, model.user_vectors_[u], served)
    effect = scores[0] - scores[1:]
    names = np.asarray(vocabulary.vocabulary, dtype=object)[tokens.numpy()]
    order = np.argsort(-effect, kind="stable")[:k]
    return pd.DataFrame({"user": str(model.users_.ids[u]), "item": str(model.items_.ids[i]),
                         "attribute": names[order].astype(str), "effect": effect[order].astype(np.float64),
                         "method": "attribute leave-one-out", "rank": np.arange(1, len(order) + 1)})
