"""Every recommender (contrec's and the baselines) passes the same contract."""


import contrec

from .contracts import RecommenderContract


class TestContrastive(RecommenderContract):
    def make_model(self):
        return contrec.ContrastiveRecommender(dim=16, epochs=15, batch_size=64, n_negatives=32, lr=0.05,
                                              verbose=False)


class TestALS(RecommenderContract):
    def make_model(self):
        return contrec.ImplicitALS(factors=8, iterations=10, regularization=0.1, threads=1)


class TestBPR(RecommenderContract):
    def make_model(self):
        return contrec.ImplicitBPR(factors=8, iterations=200, learning_rate=0.05, threads=1)


class TestPopularity(RecommenderContract):
    expected_precision = 0.0  # not personalised: the checkerboard's items are equally popular

    def make_model(self):
        return contrec.PopularityRecommender()


def test_popularity_ranks_by_count_with_stable_ties():
    import pandas as pd

    df = pd.DataFrame({"user": ["a", "b", "c", "c", "b"], "item": ["x", "y", "y", "z", "z"]})
    data = contrec.Interactions.from_frame(df)
    model = contrec.PopularityRecommender().fit(data)
    recs = model.recommend("a", k=3, filter_seen=False)
    assert recs["item"].tolist() == ["y", "z", "x"]  # y and z tie at 2: the first-seen item wins
    assert recs["score"].tolist() == [2.0, 2.0, 1.0]


def test_popularity_ties_stay_ordered_at_large_counts():
    """Issue 15.7: with counts near 1,000 a float32 tie-break of count − index/(10 n) rounded away."""
    import numpy as np
    import scipy.sparse as sp

    n_users, n_items = 1200, 2000
    counts = np.full(n_items, 1000)  # every item seen by 1,000 users: one big tie
    counts[1500] = 1001
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.choice(n_users, c, replace=False) for c in counts])
    cols = np.repeat(np.arange(n_items), counts)
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    data = contrec.Interactions(matrix, contrec.data.IdMap([f"u{u}" for u in range(n_users)]),
                                contrec.data.IdMap([f"i{i}" for i in range(n_items)]))
    model = contrec.PopularityRecommender().fit(data)
    ids, scores = model.top_k(np.array([0]), 50)
    assert ids[0, 0] == 1500 and np.all(np.diff(ids[0, 1:]) > 0)  # then the tie, in index order
    assert scores[0, 0] == 1001 and np.all(scores[0, 1:] == 1000)


class TestItemKNN(RecommenderContract):
    def make_model(self):
        return contrec.ItemKNN(neighbours=20, threads=1)


class TestEASE(RecommenderContract):
    def make_model(self):
        return contrec.EASE(l2=1.0)


def _random_data(n_users=40, n_items=25, density=0.2, seed=0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    u, i = np.nonzero(mask)
    return contrec.Interactions.from_frame(pd.DataFrame({"user": u.astype(str), "item": i.astype(str)}))


def test_ease_columns_solve_their_constrained_ridge_problems():
    """Each column b_j of EASE minimises ‖x_j − X b_j‖² + λ‖b_j‖² with b_jj = 0 (Steck 2019)."""
    import numpy as np

    data = _random_data()
    lam = 3.0
    model = contrec.EASE(l2=lam).fit(data)
    weights = model.item_vectors_.T.astype(np.float64)  # [i, j] = B_ij
    x = data.matrix.toarray()
    assert np.allclose(np.diag(weights), 0.0)
    for j in (0, 7, 24):
        others = np.delete(np.arange(x.shape[1]), j)
        a = x[:, others]
        b = np.linalg.solve(a.T @ a + lam * np.eye(len(others)), a.T @ x[:, j])
        assert np.allclose(weights[others, j], b, atol=1e-5)
    # served scores are X B
    users = np.arange(5)
    ids, scores = model.top_k(users, 3)
    expected = (x @ weights)[users[:, None], ids]
    assert np.allclose(scores, expected, atol=1e-4)


def test_itemknn_ranks_like_implicit_cosine_recommender():
    import numpy as np
    from implicit.nearest_neighbours import CosineRecommender

    data = _random_data(seed=1)
    ours = contrec.ItemKNN(neighbours=10, threads=1).fit(data)
    ref = CosineRecommender(K=10, num_threads=1)
    ref.fit(data.matrix.astype(np.float32).tocsr(), show_progress=False)
    users = np.arange(data.n_users)
    ref_ids, ref_scores = ref.recommend(users, data.matrix.astype(np.float32).tocsr(), N=5,
                                        filter_already_liked_items=True)
    ids, scores = ours.top_k(users, 5, exclude=data.matrix)
    assert np.allclose(scores, ref_scores, atol=1e-4)
    # same lists up to the order of exact ties
    for row in range(len(users)):
        assert set(ids[row][scores[row] > scores[row, -1] + 1e-6]) <= set(ref_ids[row])


def test_make_baseline_by_name_and_bad_names():
    import pytest

    from contrec.models.baselines import make_baseline

    assert isinstance(make_baseline("item-knn", neighbours=5), contrec.ItemKNN)
    assert isinstance(make_baseline("ALS", factors=4), contrec.ImplicitALS)
    with pytest.raises(contrec.ConfigError, match="unknown baseline 'svd'"):
        make_baseline("svd")
    with pytest.raises(contrec.ConfigError, match="baseline 'ease'"):
        make_baseline("ease", lambda_=3)
    with pytest.raises(contrec.ConfigError, match="l2 must be a positive"):
        contrec.EASE(l2=-1).fit(_random_data())


def test_ease_refuses_in_one_line_when_memory_is_short(monkeypatch):
    """Issue 15.8: the memory guard estimates EASE's peak and names it with the machine's free memory."""
    import pandas as pd
    import pytest

    import contrec.runtime.memory

    df = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "z"]})
    data = contrec.Interactions.from_frame(df)
    monkeypatch.setattr(contrec.runtime.memory, "available_memory", lambda: 50)
    with pytest.raises(contrec.ConfigError, match=r"EASE on 3 items .* needs about .* only 50 B is free"):
        contrec.EASE().fit(data)


def test_ease_in_float32_in_place_matches_the_float64_closed_form():
    import numpy as np
    import scipy.sparse as sp

    from contrec.models.baselines import ease_item_vectors

    rng = np.random.default_rng(0)
    x = sp.csr_matrix((rng.random((300, 2600)) < 0.01).astype(np.float32))  # spans two 2048-blocks
    g = (x.T @ x).toarray().astype(np.float64) + 30.0 * np.eye(2600)
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    got = ease_item_vectors(x, 30.0)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, b.T, atol=2e-5)


def test_implicit_fits_without_its_openblas_warning():
    # implicit warns when a BLAS under it runs several threads; the fit limits BLAS to one thread, which only
    # reaches the libraries loaded by then — so a fresh process (nothing of implicit imported yet) must stay quiet
    import subprocess
    import sys

    code = ("import pandas as pd, contrec\n"
            "df = pd.DataFrame({'user': list('aabbcc'), 'item': list('xyyzzx')})\n"
            "data = contrec.Interactions.from_frame(df)\n"
            "contrec.ImplicitALS(factors=2, iterations=2, threads=1).fit(data)\n"
            "contrec.ImplicitBPR(factors=2, iterations=2, threads=1).fit(data)\n")
    env = {**__import__("os").environ, "OPENBLAS_NUM_THREADS": "2"}
    run = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code], capture_output=True, text=True,
                         env=env)
    assert run.returncode == 0, run.stderr[-500:]


def _weighted_toy(seed: int, how: str = "none"):
    """A toy log with play-count-like weights (1–49), and the same log with each weight turned as ``how`` says."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    rows = [(f"u{u}", f"i{i}", int(rng.integers(1, 50))) for u in range(40) for i in rng.choice(30, 6, replace=False)]
    data = contrec.Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item", "w"]), weight="w")
    turned = data.matrix.tocsr().astype(np.float32)
    turned.data = np.ones_like(turned.data) if how == "none" else np.log1p(turned.data)
    return data, contrec.Interactions(matrix=sp.csr_matrix(turned), users=data.users, items=data.items)


def test_als_confidence_none_is_als_on_the_binary_matrix_and_linear_is_the_weights_as_given():
    import numpy as np
    import pytest

    from contrec.errors import ConfigError

    data, binary = _weighted_toy(0)
    log_data = _weighted_toy(0, "log1p")[1]

    def vectors(d, **kw):
        return contrec.ImplicitALS(factors=4, iterations=3, threads=1, **kw).fit(d).item_vectors_

    np.testing.assert_array_equal(vectors(data, confidence="none"), vectors(binary))
    np.testing.assert_array_equal(vectors(data, confidence="log1p"), vectors(log_data))
    np.testing.assert_array_equal(vectors(data), vectors(data, confidence="linear"))
    assert not np.array_equal(vectors(data), vectors(binary))  # the weights matter under "linear"
    with pytest.raises(ConfigError, match="confidence must be one of"):
        contrec.ImplicitALS(confidence="sqrt").fit(data)


def test_itemknn_weights_none_is_itemknn_on_the_binary_matrix():
    import numpy as np
    import pytest

    from contrec.errors import ConfigError

    data, binary = _weighted_toy(1)

    def scores(d, **kw):
        m = contrec.ItemKNN(neighbours=10, threads=1, **kw).fit(d)
        return m.user_vectors_ @ m.item_vectors_.T

    np.testing.assert_array_equal(scores(data, weights="none"), scores(binary))
    np.testing.assert_array_equal(scores(data), scores(data, weights="linear"))
    assert not np.allclose(scores(data), scores(binary))  # the weights count under "linear"
    with pytest.raises(ConfigError, match="weights must be one of"):
        contrec.ItemKNN(weights="sqrt").fit(data)
