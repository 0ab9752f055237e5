"""Domain rules at serving time: an item is recommended only if the rule holds against the whole history.

The rule language is the domain-rule sampler's (`contrec.rules`): a rule relates two items
i and j through their attributes. At serving time i runs over the row's history — a user's
training items in `recommend`, the given items in `recommend_for_history`, the query item
in `similar_items` — and a candidate j is served only if ``rule(i, j)`` holds for **every**
history item i. So ``never_same(franchise)`` drops anything of a franchise the user already
has, ``differ(language)`` anything in a language they already watched, ``disjoint(genres)``
anything sharing a genre with their history, ``not has(genres, Horror)`` (a plain attribute
filter) every horror title. A row without history loses only the items that no item at
all would allow — exactly what the rule's plain filters forbid.

The work is per attribute group (items with the same values of the rule's attributes), not
per item: the rule is evaluated once between groups and each row's forbidden groups are one
sparse product. The search then masks a row's forbidden groups while it scores the items
(`contrec.serving.candidates.filtered_search`): nothing of size rows × items is ever stored.

Example:
    >>> model.recommend(["1"], k=10, rule="never_same(genres)")       # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from contrec.data.interactions import IdMap
from contrec.errors import ConfigError, DataError
from contrec.rules import AttributeTable, parse_rule

__all__ = ["rule_groups", "MAX_GROUPS"]

_CACHED_TABLES = 4  # attribute tables a model keeps (one per set of rule attributes)
MAX_GROUPS = 40_000  # the rule is evaluated between every pair of groups (in blocks)
MAX_FORBIDDEN = 100_000_000  # forbidden (group, group) pairs held as a sparse matrix (~1.2 GB at the limit)


def rule_groups(rule: Any, items: IdMap, attributes: pd.DataFrame | None, history: sp.csr_matrix,
                cache: dict[Any, Any] | None = None) -> tuple[np.ndarray, sp.csr_matrix]:
    """(group of every item ``[n_items]``, the groups ``rule`` forbids for each row of ``history`` ``[rows, G]``).

    ``cache``: a dict the caller keeps (a model keeps one) for the catalogue's attribute table and
    groups, which depend on the attributes alone — the per-call work is then the rule and the rows."""
    parsed = parse_rule(rule)
    if attributes is None:
        raise DataError(f"rule {parsed}: the model has no item attributes; fit it with item attributes "
                        "(contrec fit --item-attributes FILE, or data loaded with item_attributes=…; the MovieLens "
                        "loaders include title, year, genres)")
    key = (id(attributes), id(items), len(items), frozenset(parsed.attributes()))
    if cache is not None and key in cache:
        full, group, reps = cache[key]
    else:
        frame = attributes.copy()
        frame.index = pd.Index(frame.index.astype(str), dtype=object)
        frame = frame[~frame.index.duplicated()].reindex(pd.Index(items.ids, dtype=object))
        full = AttributeTable(frame, parsed.attributes())
        group, reps = full.groups()  # [n_items], one item per group
        if cache is not None:
            while len(cache) >= _CACHED_TABLES:  # the oldest goes: a server applies a few rules again and again
                cache.pop(next(iter(cache)))
            cache[key] = (full, group, reps)
    n_groups, n_items = len(reps), len(items)
    if n_groups > MAX_GROUPS:
        raise ConfigError(f"rule {parsed}: its attributes take {n_groups:,} distinct value combinations, more "
                          f"than {MAX_GROUPS:,} a serving rule evaluates pairwise; pass exclude= per user instead")
    # the rule between groups only: a group's representative stands for all its items
    table = full.subset(reps)
    step = max(1, (1 << 24) // max(n_groups, 1))
    rows, cols, ever = [], [], np.zeros(n_groups, dtype=bool)
    for s in range(0, n_groups, step):
        allowed = parsed.allowed(table, np.arange(s, min(s + step, n_groups)))  # [step, G]: a's item allows b's?
        ever |= allowed.any(axis=0)
        r, c = np.nonzero(~allowed)
        rows.append(r + s)
        cols.append(c)
        if sum(map(len, rows)) > MAX_FORBIDDEN:
            raise ConfigError(f"rule {parsed} forbids more than {MAX_FORBIDDEN:,} pairs of its {n_groups:,} "
                              "attribute groups; a filter that keeps so little is cheaper as items= (an allow-list)")
    rows_, cols_ = np.concatenate(rows), np.concatenate(cols)
    banned = sp.csr_matrix((np.ones(len(rows_), np.float32), (rows_, cols_)), shape=(n_groups, n_groups))
    member = sp.csr_matrix((np.ones(n_items, np.float32), (np.arange(n_items), group)), shape=(n_items, n_groups))
    has = sp.csr_matrix(history, dtype=np.float32) @ member  # [rows, G] history items per group
    has.data[:] = 1.0
    forbidden = (has @ banned).tocsr()  # [rows, G] > 0: forbidden
    empty = np.flatnonzero(np.diff(has.indptr) == 0)
    never = np.flatnonzero(~ever)  # groups no history item allows: a plain filter's verdict
    if len(empty) and len(never):
        forbidden = forbidden + sp.csr_matrix((np.ones(len(empty) * len(never), np.float32),
                                               (np.repeat(empty, len(never)), np.tile(never, len(empty)))),
                                              shape=forbidden.shape)
    forbidden.data[:] = 1.0
    forbidden.eliminate_zeros()
    return group, forbidden
