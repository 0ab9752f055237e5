"""FAISS index against a numpy brute force, with exact seen-item exclusion."""

import numpy as np
import pytest
import scipy.sparse as sp

from contrec.errors import ConfigError, NotFittedError
from contrec.index import FaissIndex


def brute_force(queries, items, k, exclude, metric="ip"):
    scores = queries @ items.T if metric == "ip" else -((queries[:, None, :] - items[None]) ** 2).sum(-1)
    scores = scores.astype(np.float64)
    if exclude is not None:
        scores[exclude.toarray() > 0] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def check_same_ranking(ids, scores, ref_ids, ref_scores):
    """Equal scores row by row; ids equal except inside groups of tied scores."""
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-5)
    for row in range(len(ids)):
        for s in np.unique(np.round(ref_scores[row], 4)):
            a = set(ids[row][np.round(scores[row], 4) == s])
            b = set(ref_ids[row][np.round(ref_scores[row], 4) == s])
            if len(a) == len(b) and np.isfinite(s):
                tied_at_cutoff = np.isclose(s, ref_scores[row][-1], atol=1e-4)
                assert a == b or tied_at_cutoff


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_matches_brute_force_with_exclusion(rng, metric):
    items = rng.normal(size=(300, 16)).astype(np.float32)
    queries = rng.normal(size=(57, 16)).astype(np.float32)
    exclude = sp.random(57, 300, density=0.2, format="csr", random_state=1)
    exclude.data[:] = 1
    index = FaissIndex(metric, batch_size=10).build(items)
    ids, scores = index.search(queries, 25, exclude)
    ref_ids, ref_scores = brute_force(queries, items, 25, exclude, metric)
    check_same_ranking(ids, scores, ref_ids, ref_scores)
    assert not np.any(exclude.toarray()[np.arange(57)[:, None], ids] > 0)


def test_always_k_items_when_available_and_pads_when_not(rng):
    items = rng.normal(size=(10, 4)).astype(np.float32)
    exclude = sp.csr_matrix(np.array([[1] * 7 + [0] * 3, [1] * 2 + [0] * 8], dtype=np.float32))
    ids, scores = FaissIndex().build(items).search(rng.normal(size=(2, 4)).astype(np.float32), 5, exclude)
    assert list(ids[0, 3:]) == [-1, -1] and np.all(np.isneginf(scores[0, 3:]))
    assert set(ids[0, :3]) == {7, 8, 9}
    assert np.all(ids[1] >= 2) and len(set(ids[1])) == 5


def test_ids_mapping_and_errors(rng):
    items = rng.normal(size=(5, 3)).astype(np.float32)
    index = FaissIndex().build(items, ids=np.array([50, 51, 52, 53, 54]))
    ids, _ = index.search(items[:1], 5)
    assert set(ids[0]) == {50, 51, 52, 53, 54}
    with pytest.raises(ConfigError, match=r"k must be between 1 and the catalogue size 5 \(got 6\)"):
        index.search(items[:1], 6)
    with pytest.raises(ConfigError, match="queries must be"):
        index.search(np.zeros((1, 4), np.float32), 2)
    with pytest.raises(NotFittedError):
        FaissIndex().search(items, 1)
    with pytest.raises(ConfigError, match="NaN"):
        FaissIndex().build(np.full((2, 2), np.nan, np.float32))
