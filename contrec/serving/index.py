"""FAISS retrieval, confined to this module: top-k over the whole catalogue, seen items excluded exactly.

Three kinds of index: ``exact`` (flat; the default, and what evaluation is defined by),
``ivf`` (inverted lists: the catalogue is clustered into ``nlist`` cells and a query
scans the ``nprobe`` nearest) and ``hnsw`` (a navigable small-world graph, ``hnsw_m``
links per node, beam width ``ef_search`` at query time). The approximate kinds trade a
little recall against the exact top-k for speed on large catalogues; what they trade is
measured by ``benchmarks/retrieval.py``.

Exclusion is exact without a refill loop: queries are sorted by how many items they exclude
and searched in chunks that over-fetch ``k + (largest exclusion count in the chunk)``
candidates, so after dropping excluded items at least k remain whenever the catalogue has
them; sorting keeps the over-fetch small for most chunks even when a few users have seen
thousands of items. Where a chunk would over-fetch more than ~√(catalogue) candidates, the
exact index scores it against every item instead (one matrix product), sets the excluded
cells to −inf and takes the top k — same result, and recommend-all with seen items filtered
then costs 0.7–1.4 × the unfiltered search instead of up to 12 × (benchmarks/retrieval.py).
"""

from __future__ import annotations

from typing import Literal

import faiss
import numpy as np
import scipy.sparse as sp

from contrec.errors import ConfigError, NotFittedError
from contrec.serving.dense import dense_top_k

__all__ = ["FaissIndex", "INDEX_KINDS"]

INDEX_KINDS = ("exact", "ivf", "hnsw")
# Over-fetching more than ~√n candidates from FAISS costs more than scoring every item and masking (measured:
# the crossover is below 64 candidates at 3,700 items and near 256 at 100,000; benchmarks/retrieval.py).
_DENSE_MIN_FETCH = 32


class FaissIndex:
    """FAISS index over item vectors (inner product or L2): exact by default, or IVF / HNSW.

    Args:
        metric: ``"ip"`` (score = inner product) or ``"l2"`` (score = −squared distance),
            as declared by the similarity's ``faiss_metric``.
        batch_size: queries per FAISS call.
        threads: FAISS OpenMP threads (None leaves FAISS's setting alone).
        kind: ``"exact"``, ``"ivf"`` or ``"hnsw"``.
        nlist: IVF cells (None: 4·√n, at most n/39 so every cell has training points).
        nprobe: IVF cells scanned per query.
        hnsw_m: HNSW links per node.
        ef_construction: HNSW beam width while building.
        ef_search: HNSW beam width while searching (raised to the number of items fetched
            when a query must over-fetch to exclude seen items).
        seed: IVF's k-means seed.

    Example:
        >>> import numpy as np
        >>> index = FaissIndex("ip").build(np.eye(3, dtype=np.float32))
        >>> ids, scores = index.search(np.array([[1.0, 0.5, 0.0]], dtype=np.float32), k=2)
        >>> ids.tolist(), scores.tolist()
        ([[0, 1]], [[1.0, 0.5]])
    """

    def __init__(self, metric: Literal["ip", "l2"] = "ip", batch_size: int = 2048, threads: int | None = None,
                 kind: str = "exact", nlist: int | None = None, nprobe: int = 16, hnsw_m: int = 32,
                 ef_construction: int = 200, ef_search: int = 128, seed: int = 0) -> None:
        if metric not in ("ip", "l2"):
            raise ConfigError(f"unknown FAISS metric {metric!r}; choose 'ip' or 'l2'")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be ≥ 1 (got {batch_size})")
        if kind not in INDEX_KINDS:
            raise ConfigError(f"unknown index kind {kind!r}; choose one of: {', '.join(INDEX_KINDS)}")
        for name, value in (("nprobe", nprobe), ("hnsw_m", hnsw_m), ("ef_construction", ef_construction),
                            ("ef_search", ef_search)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer (got {value!r})")
        if nlist is not None and (not isinstance(nlist, (int, np.integer)) or nlist < 1):
            raise ConfigError(f"nlist must be a positive integer or None (got {nlist!r})")
        self.metric = metric
        self.batch_size = batch_size
        self.threads = threads
        self.kind = kind
        self.exact = kind == "exact"
        self.nlist, self.nprobe, self.hnsw_m = nlist, int(nprobe), int(hnsw_m)
        self.ef_construction, self.ef_search, self.seed = int(ef_construction), int(ef_search), int(seed)
        self._index: faiss.Index | None = None
        self._ids: np.ndarray | None = None
        self._vectors: np.ndarray | None = None
        self._exact: FaissIndex | None = None

    @property
    def n_items(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def build(self, vectors: np.ndarray, ids: np.ndarray | None = None) -> "FaissIndex":
        """Index ``vectors`` ``[n, d]`` (replacing what was there); ``ids`` maps rows to returned ids."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] == 0:
            raise ConfigError(f"need a non-empty [n_items, dim] matrix to index (got shape {vectors.shape})")
        if not np.isfinite(vectors).all():
            raise ConfigError("item vectors contain NaN or infinity; the model diverged (lower lr)")
        if self.threads is not None:
            faiss.omp_set_num_threads(int(self.threads))
        self._index = self._make(vectors)
        self._ids = None if ids is None else np.asarray(ids, dtype=np.int64)
        # the caller's array, no copy: the exact kind scores it densely when excluding, the approximate
        # kinds fall back to it for short rows
        self._vectors = vectors
        self._exact = None
        return self

    def _make(self, vectors: np.ndarray) -> "faiss.Index":
        n, d = vectors.shape
        metric = faiss.METRIC_INNER_PRODUCT if self.metric == "ip" else faiss.METRIC_L2
        if self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, self.hnsw_m, metric)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
        elif self.kind == "ivf":
            nlist = self.nlist or int(np.clip(4 * np.sqrt(n), 1, max(n // 39, 1)))
            if nlist > n:
                raise ConfigError(f"nlist={nlist} is larger than the catalogue ({n} items)")
            quantizer = faiss.IndexFlatIP(d) if self.metric == "ip" else faiss.IndexFlatL2(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, metric)
            index.cp.seed = self.seed
            index.train(vectors)
            index.nprobe = min(self.nprobe, nlist)
            self._quantizer = quantizer  # the IVF index does not own it: keep it alive
        else:
            index = faiss.IndexFlatIP(d) if self.metric == "ip" else faiss.IndexFlatL2(d)
        index.add(vectors)
        return index

    def _search(self, queries: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        assert self._index is not None
        if self.kind == "hnsw":
            # the beam must be at least as wide as the list asked for
            self._index.hnsw.efSearch = max(self.ef_search, fetch)
        distances, ids = self._index.search(queries, fetch)
        return distances, ids

    def search(self, queries: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items per query, best first.

        Args:
            queries: ``[Q, d]`` query vectors.
            k: items per query; 1 ≤ k ≤ catalogue size.
            exclude: ``[Q, n_items]`` CSR; stored entries of row q are never returned for query q.

        Returns:
            (ids ``[Q, k]`` int64, scores ``[Q, k]`` float32). Where fewer than k items remain
            after exclusion the row is padded with id −1 and score −inf.
        """
        if self._index is None:
            raise NotFittedError("FaissIndex.search called before build")
        n = self.n_items
        if not 1 <= k <= n:
            raise ConfigError(f"k must be between 1 and the catalogue size {n} (got {k})")
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self._index.d:
            raise ConfigError(f"queries must be [Q, {self._index.d}] (got shape {queries.shape})")
        if exclude is not None and exclude.shape != (len(queries), n):
            raise ConfigError(f"exclude must be [{len(queries)}, {n}] (got shape {exclude.shape})")
        if self.threads is not None:
            faiss.omp_set_num_threads(int(self.threads))
        out_ids = np.full((len(queries), k), -1, dtype=np.int64)
        out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        if exclude is None:
            for s in range(0, len(queries), self.batch_size):
                d, i = self._search(queries[s:s + self.batch_size], k)
                scores = np.where(i >= 0, self._scores(d), -np.inf).astype(np.float32)  # ANN may find < k
                out_ids[s:s + len(i)], out_scores[s:s + len(i)] = i, scores
        else:
            exclude = sp.csr_matrix(exclude)
            n_excl = np.diff(exclude.indptr)
            order = np.argsort(n_excl, kind="stable")
            for s in range(0, len(order), self.batch_size):
                rows = order[s:s + self.batch_size]
                fetch = int(min(n, k + n_excl[rows].max()))
                if self.exact and fetch > max(_DENSE_MIN_FETCH, np.sqrt(n)):
                    ids, scores = self._dense_top_k(queries[rows], k, exclude[rows])
                else:
                    d, i = self._search(queries[rows], fetch)  # [c, fetch]
                    ids, scores = _drop_excluded(i, self._scores(d), exclude[rows], k, n)
                out_ids[rows], out_scores[rows] = ids, scores
        if not self.exact:
            self._fill_short_rows(queries, k, exclude, out_ids, out_scores)
        if self._ids is not None:
            valid = out_ids >= 0
            out_ids[valid] = self._ids[out_ids[valid]]
        return out_ids, out_scores

    def _dense_top_k(self, queries: np.ndarray, k: int, exclude: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Exact filtered top-k by brute force: score queries against every item, mask, take the top k."""
        assert self._vectors is not None
        return dense_top_k(self._vectors, queries, k, l2=self.metric == "l2", exclude=exclude)

    def _fill_short_rows(self, queries: np.ndarray, k: int, exclude: sp.csr_matrix | None, out_ids: np.ndarray,
                         out_scores: np.ndarray) -> None:
        """Exact search for the rows an approximate index returned short although k items remain.

        IVF probes a few cells and HNSW walks a beam: for a user who has seen nearly the whole
        catalogue, every candidate they reach may be excluded. Those rows (few, by nature) are
        answered exactly, so a list is short only when the catalogue itself runs out.
        """
        remaining = self.n_items - (np.diff(exclude.indptr) if exclude is not None else 0)
        short = np.flatnonzero((out_ids >= 0).sum(axis=1) < np.minimum(k, remaining))
        if len(short) == 0:
            return
        if self._exact is None:
            assert self._vectors is not None
            self._exact = FaissIndex(self.metric, self.batch_size, self.threads).build(self._vectors)
        ids, scores = self._exact.search(queries[short], k, None if exclude is None else exclude[short])
        out_ids[short], out_scores[short] = ids, scores

    def _scores(self, distances: np.ndarray) -> np.ndarray:
        return distances if self.metric == "ip" else -distances


def _drop_excluded(ids: np.ndarray, scores: np.ndarray, exclude: sp.csr_matrix, k: int, n: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Remove excluded (row, id) pairs and keep each row's first k survivors, order preserved."""
    c, fetch = ids.shape
    rows = np.repeat(np.arange(c, dtype=np.int64), np.diff(exclude.indptr))
    banned = np.sort(rows * n + exclude.indices)  # [nnz] keys row*n+item
    keys = np.arange(c, dtype=np.int64)[:, None] * n + ids  # [c, fetch]
    pos = np.searchsorted(banned, keys)
    hit = (pos < len(banned)) & (banned[np.minimum(pos, len(banned) - 1)] == keys) if len(banned) else \
        np.zeros_like(keys, dtype=bool)
    drop = hit | (ids < 0)
    order = np.argsort(drop, axis=1, kind="stable")[:, :k]  # survivors first, in rank order
    out_ids = np.take_along_axis(ids, order, axis=1)
    out_scores = np.take_along_axis(scores, order, axis=1).astype(np.float32)
    gone = np.take_along_axis(drop, order, axis=1)
    out_ids[gone] = -1
    out_scores[gone] = -np.inf
    return out_ids, out_scores
