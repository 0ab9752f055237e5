"""Exact filtered top-k by brute force, blocked over queries and items.

When a query may lose many of its best items to filters (a heavy user's seen items, a
serving rule, long exclusion lists), over-fetching from FAISS stops paying; scoring every
item, masking and taking the top is exact whatever is filtered. It is done in tiles of
queries × items (``_CELLS`` scores at a time), so the item vectors are read once per query
tile rather than once per few queries — a skinny product over a million items is memory-bound
— and each tile's top k is merged with the running best, as FAISS's flat index does.

Masks per tile: ``exclude`` (a CSR of (row, item) pairs, e.g. the seen items) and
``banned`` + ``group`` (a rule's forbidden groups per row, and each item's group).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["dense_top_k"]

_CELLS = 1 << 22  # query × item scores per tile (16 MiB of float32)
_QUERY_TILE = 2048  # tiles of many queries × few items: the item block stays in cache


def dense_top_k(items: np.ndarray, queries: np.ndarray, k: int, *, l2: bool = False,
                exclude: sp.csr_matrix | None = None, group: np.ndarray | None = None,
                banned: sp.csr_matrix | None = None, blocked: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of each query over ``items`` (inner product, or −‖q − v‖² with ``l2``).

    Args:
        items: ``[n, d]`` item vectors.
        queries: ``[Q, d]``.
        k: list length (≤ n).
        exclude: ``[Q, n]`` CSR: stored entries are never returned for their row.
        group, banned: ``[n]`` group of each item and ``[Q, G]`` CSR of each row's forbidden groups.
        blocked: ``[n]`` bool, items no row may hold.

    Returns:
        (ids ``[Q, k]``, scores ``[Q, k]``), best first; −1 / −inf where fewer than k items pass.
    """
    vectors = torch.from_numpy(np.ascontiguousarray(items, dtype=np.float32))
    n = len(vectors)
    sq = (vectors * vectors).sum(1) if l2 else None
    group_t = None if group is None else torch.from_numpy(np.asarray(group, dtype=np.int64))
    blocked_t = None if blocked is None else torch.from_numpy(np.asarray(blocked, dtype=bool))
    out_ids = np.full((len(queries), k), -1, dtype=np.int64)
    out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    q_tile = min(_QUERY_TILE, max(1, len(queries)))
    i_tile = max(256, _CELLS // q_tile)
    for s in range(0, len(queries), q_tile):
        q = torch.from_numpy(np.ascontiguousarray(queries[s:s + q_tile], dtype=np.float32))  # [c, d]
        c = len(q)
        qq = (q * q).sum(1, keepdim=True) if l2 else None
        gone = None
        if exclude is not None:
            block = exclude[s:s + c].tocoo()
            gone = torch.from_numpy(np.sort(block.row.astype(np.int64) * n + block.col))  # keys row·n + item
        forbidden = None if banned is None else torch.from_numpy(banned[s:s + c].toarray() > 0)  # [c, G]
        best = _Best(c, k)
        for b in range(0, n, i_tile):
            e = min(b + i_tile, n)
            scores = q @ vectors[b:e].T  # [c, e − b]
            if sq is not None:  # −‖q − v‖², as FAISS L2 reports it (negated)
                scores.mul_(2.0).sub_(sq[None, b:e]).sub_(qq)
            if blocked_t is not None:
                scores.masked_fill_(blocked_t[None, b:e], -np.inf)
            # only rows whose tile holds a score above their current k-th best can change: after
            # the first tiles few do, so masks and top-k run on those rows alone
            need = torch.nonzero(scores.amax(dim=1) > best.threshold, as_tuple=True)[0]
            if len(need) == 0:
                continue
            sub = scores[need] if len(need) < c else scores
            _mask_rows(sub, need, b, e, n, gone, forbidden, group_t)
            top = torch.topk(sub, min(k, e - b), dim=1)
            best.merge(need, top.values, top.indices + b)
        out_ids[s:s + c] = np.where(np.isneginf(best.values.numpy()), -1, best.ids.numpy())
        out_scores[s:s + c] = best.values.numpy()
    return out_ids, out_scores


def _mask_rows(sub: torch.Tensor, rows: torch.Tensor, b: int, e: int, n: int, gone: torch.Tensor | None,
               forbidden: torch.Tensor | None, group: torch.Tensor | None) -> None:
    """Set the filtered cells of ``sub`` (the tile's ``rows``, items ``b:e``) to −inf."""
    m, w = sub.shape
    if forbidden is not None and group is not None:
        sub.masked_fill_(forbidden[rows].gather(1, group[b:e].expand(m, w)), -np.inf)
    if gone is not None and len(gone):
        lo = torch.searchsorted(gone, rows * n + b)
        hi = torch.searchsorted(gone, rows * n + e)
        count = hi - lo
        if int(count.sum()):
            at = torch.arange(int(count.sum())) - torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
            keys = gone[torch.repeat_interleave(lo, count) + at]
            sub[torch.repeat_interleave(torch.arange(m), count), keys % n - b] = -np.inf


class _Best:
    """Each row's k best (value, id) so far, best first."""

    def __init__(self, rows: int, k: int) -> None:
        self.k = k
        self.values = torch.full((rows, k), -np.inf)
        self.ids = torch.full((rows, k), -1, dtype=torch.int64)

    @property
    def threshold(self) -> torch.Tensor:
        return self.values[:, -1]  # [rows]: the k-th best, −inf while a row has fewer than k

    def merge(self, rows: torch.Tensor, values: torch.Tensor, ids: torch.Tensor) -> None:
        """Merge ``[m, w]`` candidates (values best first per row; −inf: none) into ``rows``' lists."""
        both_v = torch.cat([self.values[rows], values], dim=1)
        both_i = torch.cat([self.ids[rows], ids], dim=1)
        keep = torch.topk(both_v, self.k, dim=1)
        self.values[rows] = keep.values
        self.ids[rows] = both_i.gather(1, keep.indices)
