"""Which items a served list may hold: an allow-list, exclusions for everyone or per row, the seen items.

Every recommender's `recommend`, `recommend_for_history` and `similar_items` pass their
``items=`` and ``exclude=`` through here (`serving_filter`), and search through
`filtered_search`, so the rules are one implementation for contrec and the baselines.

- ``items``: the allow-list (raw item ids). It is searched exactly over the allowed items'
  vectors alone — a FAISS index of just those, or a dense score → mask → top-k — so a
  short list costs less than the whole catalogue, and a user gets k items whenever k
  allowed ones pass.
- ``exclude``: raw item ids removed for everyone (a list), or per row: a mapping
  {user: item ids} or a two-column frame (user, item). Items for everyone join the
  allow-list's complement when they are most of the catalogue, else each row's exclusions.
- ``rule``: a domain rule that must hold between every history item and a served item
  (`contrec.serving.rules`), e.g. ``never_same(franchise)``.
- ids the model does not know are ignored (a catalogue changes: an out-of-stock list may
  name items the model never saw); an allow-list with no known item at all is a one-line error.

Example:
    >>> model.recommend(["1"], k=5, items=["50", "100", "181", "258", "286", "288"])    # doctest: +SKIP
    >>> model.recommend(["1"], k=5, exclude={"1": ["50"]})                               # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from contrec.data.interactions import IdMap, as_id_list
from contrec.errors import ConfigError, DataError
from contrec.serving.dense import dense_top_k
from contrec.serving.index import FaissIndex

__all__ = ["ServingFilter", "serving_filter", "filtered_search"]


@dataclass(frozen=True)
class ServingFilter:
    """``allowed``: sorted item indices the lists may hold (None: all); ``exclude``: ``[rows, n_items]`` or None;
    ``groups``: a rule's (group of each item ``[n_items]``, forbidden groups per row ``[rows, G]``) or None;
    ``blocked``: ``[n_items]`` bool, items no row may hold (a short exclusion list, a rule's plain filter) or None."""

    allowed: np.ndarray | None
    exclude: sp.csr_matrix | None
    groups: tuple[np.ndarray, sp.csr_matrix] | None = None
    blocked: np.ndarray | None = None

    @property
    def plain(self) -> bool:
        """Only per-row exclusions (the seen items, a per-user list): the index's own filtered search."""
        return self.allowed is None and self.groups is None and self.blocked is None


def _known(items: IdMap, raw: Any) -> np.ndarray:
    idx = items.index(as_id_list(raw))
    return np.unique(idx[idx >= 0])


def _per_row(items: IdMap, keys: np.ndarray, exclude: Any) -> sp.csr_matrix:
    """Per-row exclusions from a mapping or a two-column frame, as ``[len(keys), n_items]``."""
    if isinstance(exclude, pd.DataFrame):
        if exclude.shape[1] < 2:
            raise ConfigError("exclude: a frame needs two columns, user and item (or user, item named so)")
        cols = ["user", "item"] if {"user", "item"} <= set(exclude.columns) else list(exclude.columns[:2])
        who, what = exclude[cols[0]].astype(str).to_numpy(), exclude[cols[1]].astype(str).to_numpy()
    else:
        lists = [as_id_list(values) for values in exclude.values()]
        who = np.repeat(np.asarray([str(k) for k in exclude], dtype=object), [len(v) for v in lists])
        what = np.concatenate(lists).astype(str) if lists else np.zeros(0, dtype=str)
    # one row per distinct key, then repeated for a key asked for twice (the same user in two rows)
    names, inverse = np.unique(np.asarray(keys).astype(str), return_inverse=True)
    rows = pd.Index(names).get_indexer(np.asarray(who, dtype=str)) if len(who) else np.zeros(0, dtype=np.int64)
    cols = items.index(np.asarray(what, dtype=str)) if len(what) else np.zeros(0, dtype=np.int64)
    keep = (rows >= 0) & (cols >= 0)
    distinct = sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (rows[keep], cols[keep])),
                             shape=(len(names), len(items)))
    distinct.sum_duplicates()
    distinct.data[:] = 1.0
    return distinct[inverse.reshape(-1)].tocsr()


def serving_filter(items: IdMap, keys: np.ndarray, seen: sp.csr_matrix | None, allow: Any = None,
                   exclude: Any = None, rule: Any = None, history: sp.csr_matrix | None = None,
                   attributes: pd.DataFrame | None = None, cache: dict[Any, Any] | None = None) -> ServingFilter:
    """The allow-list and per-row exclusions for rows named ``keys`` (``seen``: ``[rows, n_items]`` or None).

    ``rule``: a domain rule checked against each row's ``history`` over the item ``attributes``
    (`contrec.serving.rules`)."""
    n_items = len(items)
    allowed = blocked = None
    if allow is not None:
        allowed = _known(items, allow)
        if len(allowed) == 0:
            raise DataError(f"items: none of the {len(as_id_list(allow))} allowed item ids is in the model's "
                            f"catalogue ({n_items} items)")
    blocks = [] if seen is None else [sp.csr_matrix(seen)]
    if exclude is not None:
        if isinstance(exclude, (Mapping, pd.DataFrame)):
            blocks.append(_per_row(items, keys, exclude))
        else:
            gone = _known(items, exclude)
            if allowed is not None or len(gone) > n_items // 2:  # drop them from the searched items
                base = allowed if allowed is not None else np.arange(n_items)
                allowed = np.setdiff1d(base, gone, assume_unique=True)
            elif len(gone):  # one mask for every row, not the list repeated per row
                blocked = np.zeros(n_items, dtype=bool)
                blocked[gone] = True
    groups = None
    if rule is not None:
        from contrec.serving.rules import rule_groups

        if history is None:
            raise ConfigError("a serving rule needs each row's history")
        group, banned = rule_groups(rule, items, attributes, history, cache)
        # groups every row forbids (a plain filter's verdict) are one mask over items, not per row
        everyone = np.flatnonzero(np.bincount(banned.indices, minlength=banned.shape[1]) == banned.shape[0])
        if len(everyone) and banned.shape[0] > 0:
            blocked = np.zeros(n_items, dtype=bool) if blocked is None else blocked
            blocked |= np.isin(group, everyone)
            keep = sp.csr_matrix(np.ones((1, banned.shape[1]), dtype=np.float32))
            keep[0, everyone] = 0
            banned = banned.multiply(keep).tocsr()
            banned.eliminate_zeros()
        groups = (group, banned) if banned.nnz else None
    matrix = None
    if blocks:
        matrix = blocks[0] if len(blocks) == 1 else sum(blocks[1:], blocks[0]).tocsr()
        matrix.data[:] = 1.0
    if blocked is not None and allowed is not None:  # an allow-list is searched alone: fold the mask in
        allowed = allowed[~blocked[allowed]]
        blocked = None
    return ServingFilter(allowed, matrix, groups, blocked)


def filtered_search(index: FaissIndex, item_vectors: np.ndarray, vectors: np.ndarray, k: int,
                    flt: ServingFilter, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (dense item ids, index scores) of ``vectors`` under ``flt``; −1 / −inf pad short lists."""
    if flt.plain:
        return index.search(vectors, k, flt.exclude)
    everything = flt.allowed is None
    allowed = np.arange(len(item_vectors)) if everything else flt.allowed
    if len(allowed) == 0:
        return np.full((len(vectors), k), -1, np.int64), np.full((len(vectors), k), -np.inf, np.float32)
    exclude = None if flt.exclude is None else flt.exclude if everything else flt.exclude[:, allowed].tocsr()
    vectors_in = item_vectors if everything else item_vectors[allowed]  # no copy of the whole catalogue
    width = min(k, len(allowed))
    searcher = index if everything else FaissIndex(index.metric, threads=threads).build(
        np.ascontiguousarray(vectors_in))
    if flt.groups is not None or flt.blocked is not None:
        group = None if flt.groups is None else flt.groups[0] if everything else flt.groups[0][allowed]
        blocked = None if flt.blocked is None else flt.blocked if everything else flt.blocked[allowed]
        ids, scores = _rule_search(searcher, vectors_in, vectors, width, exclude, group,
                                   None if flt.groups is None else flt.groups[1], blocked)
    else:
        ids, scores = searcher.search(vectors, width, exclude)
    out_ids = np.where(ids >= 0, allowed[np.maximum(ids, 0)], -1)
    if width < k:  # fewer allowed items than k: pad as a short catalogue does
        pad = k - width
        out_ids = np.pad(out_ids, ((0, 0), (0, pad)), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
    return out_ids, scores


def _rule_search(index: FaissIndex, items: np.ndarray, queries: np.ndarray, k: int, exclude: sp.csr_matrix | None,
                 group: np.ndarray | None, banned: sp.csr_matrix | None, blocked: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Top-k under a rule: over-fetch from the index, drop forbidden items, refill short rows exactly.

    A rule usually forbids a small share of what a row would see first, so a list somewhat
    longer than k (already free of the excluded pairs) keeps k survivors for most rows; a
    row left short — a rule that forbids most of its best items — is answered by brute force
    over every item with the masks, so the result is exact either way.
    """
    n = len(items)
    remaining = n - (np.diff(exclude.indptr) if exclude is not None else 0)
    fetch = int(min(n, 2 * k + _RULE_MARGIN))
    ids, scores = index.search(queries, fetch, exclude)
    safe = np.maximum(ids, 0)
    dropped = ids < 0
    if blocked is not None:
        dropped |= blocked[safe]
    if banned is not None and group is not None:
        rows = np.repeat(np.arange(len(queries)), fetch)
        dropped |= _forbidden(banned, rows, group[safe].reshape(-1)).reshape(ids.shape)
    order = np.argsort(dropped, axis=1, kind="stable")[:, :k]  # survivors first, in rank order
    out_ids = np.take_along_axis(ids, order, axis=1)
    out_scores = np.take_along_axis(scores, order, axis=1).astype(np.float32)
    gone = np.take_along_axis(dropped, order, axis=1)
    out_ids[gone], out_scores[gone] = -1, -np.inf
    # short rows: fewer survivors than k although the fetch did not reach the catalogue's end
    short = np.flatnonzero(gone.any(axis=1) & (fetch < remaining))
    if len(short):
        ids_s, scores_s = dense_top_k(items, queries[short], k, l2=index.metric == "l2",
                                      exclude=None if exclude is None else exclude[short], group=group,
                                      banned=None if banned is None else banned[short], blocked=blocked)
        out_ids[short], out_scores[short] = ids_s, scores_s
    return out_ids, out_scores


_RULE_MARGIN = 32  # items fetched beyond 2k for a rule to drop before a row falls back to brute force


def _forbidden(banned: sp.csr_matrix, rows: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Whether each (row, group) pair is stored in ``banned``: one sorted-key lookup for all of them."""
    n_groups = banned.shape[1]
    keys = np.repeat(np.arange(banned.shape[0], dtype=np.int64), np.diff(banned.indptr)) * n_groups + banned.indices
    wanted = rows.astype(np.int64) * n_groups + groups
    if len(keys) == 0:
        return np.zeros(len(wanted), dtype=bool)
    keys = np.sort(keys)
    pos = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return keys[pos] == wanted
