"""Metrics against hand-computed values, plus properties over random rankings."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from contrec.errors import ConfigError
from contrec.evaluation.metrics import (coverage, hit_rate_at_k, map_at_k, mean_popularity, mrr_at_k, ndcg_at_k,
                             precision_at_k, recall_at_k)


def rel(rows, n_items=10):
    r, c = zip(*[(u, i) for u, items in enumerate(rows) for i in items]) if any(rows) else ((), ())
    return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(rows), n_items))


# user 0: ranked [1, 2, 3, 4, 5], relevant {2, 5, 9}: hits at ranks 2 and 5, |R| = 3
# user 1: ranked [7, 8, 0, -1, -1] (list ran short), relevant {7}: hit at rank 1, |R| = 1
# user 2: ranked [1, 2, 3, 4, 5], relevant {} -> NaN (not evaluated)
RANKED = np.array([[1, 2, 3, 4, 5], [7, 8, 0, -1, -1], [1, 2, 3, 4, 5]])
RELEVANT = rel([[2, 5, 9], [7], []])
L = math.log2


@pytest.mark.parametrize("fn,k,expected", [
    # precision@5: 2/5; 1/5
    (precision_at_k, 5, [0.4, 0.2]),
    # recall@5 = hits / min(5, |R|): 2/3; 1/1
    (recall_at_k, 5, [2 / 3, 1.0]),
    # recall@1: user 0 misses at rank 1; user 1 hits
    (recall_at_k, 1, [0.0, 1.0]),
    # NDCG@5 user 0: (1/log2 3 + 1/log2 6) / (1 + 1/log2 3 + 1/log2 4); user 1: 1/1
    (ndcg_at_k, 5, [(1 / L(3) + 1 / L(6)) / (1 + 1 / L(3) + 1 / L(4)), 1.0]),
    # NDCG@2 user 0: (1/log2 3) / (1 + 1/log2 3)  (ideal over min(2, 3) = 2 ranks)
    (ndcg_at_k, 2, [(1 / L(3)) / (1 + 1 / L(3)), 1.0]),
    # MAP@5 user 0: (P@2 + P@5) / min(5, 3) = (1/2 + 2/5) / 3; user 1: P@1 / 1
    (map_at_k, 5, [(0.5 + 0.4) / 3, 1.0]),
    # MRR: first hit at rank 2; at rank 1
    (mrr_at_k, 5, [0.5, 1.0]),
    (mrr_at_k, 1, [0.0, 1.0]),
    (hit_rate_at_k, 5, [1.0, 1.0]),
    (hit_rate_at_k, 1, [0.0, 1.0]),
])
def test_hand_computed(fn, k, expected):
    values = fn(RANKED, RELEVANT, k)
    np.testing.assert_allclose(values[:2], expected, rtol=1e-12)
    assert np.isnan(values[2])


def test_coverage_and_popularity():
    # top-2 lists use items {1, 2, 7, 8} of 10
    assert coverage(RANKED, 10, 2) == pytest.approx(0.4)
    pop = np.linspace(0, 0.9, 10)  # item i has popularity i/10
    # user 1's top-5 has two valid items (7, 8) and three pads: mean (0.7 + 0.8) / 2
    np.testing.assert_allclose(mean_popularity(RANKED, pop, 5)[:2], [0.3, (0.7 + 0.8 + 0.0) / 3])


def test_bad_k_and_shapes():
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        ndcg_at_k(RANKED, RELEVANT, 0)
    with pytest.raises(ConfigError, match="fewer than k=6"):
        recall_at_k(RANKED, RELEVANT, 6)
    with pytest.raises(ConfigError, match="rows"):
        recall_at_k(RANKED[:2], RELEVANT, 2)


@st.composite
def rankings(draw):
    n_items = draw(st.integers(2, 30))
    n_users = draw(st.integers(1, 8))
    k = draw(st.integers(1, n_items))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    ranked = np.stack([rng.permutation(n_items)[:k] for _ in range(n_users)])
    relevant = [list(rng.choice(n_items, size=rng.integers(1, n_items + 1), replace=False)) for _ in range(n_users)]
    return ranked, rel(relevant, n_items), k


@settings(max_examples=60, deadline=None)
@given(rankings())
def test_metrics_are_in_unit_interval(case):
    ranked, relevant, k = case
    for fn in (precision_at_k, recall_at_k, ndcg_at_k, map_at_k, mrr_at_k, hit_rate_at_k):
        values = fn(ranked, relevant, k)
        assert np.all((values >= -1e-12) & (values <= 1 + 1e-12)), fn.__name__


@settings(max_examples=60, deadline=None)
@given(rankings())
def test_perfect_ranking_scores_one(case):
    _, relevant, k = case
    # put each user's relevant items first
    ranked = np.stack([np.concatenate([r.indices, np.setdiff1d(np.arange(relevant.shape[1]), r.indices)])[:k]
                       for r in relevant])
    for fn in (ndcg_at_k, recall_at_k, map_at_k, mrr_at_k, hit_rate_at_k):
        np.testing.assert_allclose(fn(ranked, relevant, k), 1.0, err_msg=fn.__name__)
