"""The seeded power-law generator used by the scale and throughput benchmarks."""

import numpy as np
import pytest

import contrec
from contrec.data.synthetic import synthetic_interactions


def test_exact_size_distinct_pairs_and_determinism():
    a = synthetic_interactions(500, 300, 20_000, seed=3)
    b = synthetic_interactions(500, 300, 20_000, seed=3)
    assert len(a) == 20_000 and a.shape == (500, 300)
    keys = a.row_codes() * a.n_items + a.matrix.indices
    assert len(np.unique(keys)) == len(keys)
    assert a.fingerprint() == b.fingerprint()
    assert synthetic_interactions(500, 300, 20_000, seed=4).fingerprint() != a.fingerprint()


def test_popularity_and_activity_are_heavy_tailed():
    data = synthetic_interactions(2000, 1000, 100_000, seed=0)
    items = np.sort(data.item_counts())[::-1]
    users = np.sort(data.user_counts())[::-1]
    # the top 10 % of items and users carry two to three times their share of the interactions
    assert items[:100].sum() / items.sum() > 0.3
    assert users[:200].sum() / users.sum() > 0.2
    assert items[0] > 10 * np.median(items)


def test_taste_clusters_make_it_learnable():
    data = synthetic_interactions(400, 200, 12_000, n_clusters=4, affinity=0.9, seed=1)
    train, test = contrec.split_random(data, test_size=0.2, seed=0)
    model = contrec.ContrastiveRecommender(dim=16, epochs=10, verbose=False, seed=0).fit(train)
    pop = contrec.PopularityRecommender().fit(train)

    def ndcg(m):
        table = contrec.evaluate(m, train, test, k=10)
        return float(table.query("metric == 'ndcg'")["value"].iloc[0])

    assert ndcg(model) > ndcg(pop) + 0.02


@pytest.mark.parametrize("kwargs, message", [
    ({"n_users": 10, "n_items": 10, "n_interactions": 60}, "do not fit sparsely"),
    ({"n_users": 0, "n_items": 10, "n_interactions": 5}, "must be ≥ 1"),
    ({"n_users": 10, "n_items": 10, "n_interactions": 5, "affinity": 1.5}, "affinity must be in"),
])
def test_bad_sizes_are_refused(kwargs, message):
    with pytest.raises(contrec.ConfigError, match=message):
        synthetic_interactions(**kwargs)
