"""FAISS index against a numpy brute force, with exact seen-item exclusion."""

import numpy as np
import pytest
import scipy.sparse as sp

import contrec
from contrec.errors import ConfigError, NotFittedError
from contrec.serving.index import FaissIndex


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


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_filtered_search_in_small_chunks_agrees_with_the_unfiltered_faiss_search(rng, metric, monkeypatch):
    """Heavy exclusions are answered by brute force in chunks: chunk edges change nothing, and a light
    exclusion (FAISS over-fetch) and a heavy one both match the brute-force ranking."""
    import contrec.serving.dense as dense_module

    # 7 queries × 256 items per tile: 9 query tiles and 2 item tiles, both with a ragged last one
    monkeypatch.setattr(dense_module, "_QUERY_TILE", 7)
    monkeypatch.setattr(dense_module, "_CELLS", 7 * 64)
    items = rng.normal(size=(300, 16)).astype(np.float32)
    queries = rng.normal(size=(60, 16)).astype(np.float32)
    index = FaissIndex(metric).build(items)
    plain_ids, plain_scores = index.search(queries, 20)
    ids, scores = index.search(queries, 20, sp.csr_matrix((60, 300), dtype=np.float32))
    check_same_ranking(ids, scores, plain_ids, plain_scores)
    heavy = sp.random(60, 300, density=0.9, format="csr", random_state=2)  # 270 of 300 seen on average
    heavy.data[:] = 1
    ids, scores = index.search(queries, 20, heavy)
    ref_ids, ref_scores = brute_force(queries, items, 20, heavy, metric)
    check_same_ranking(ids, scores, ref_ids, ref_scores)
    assert not np.any(heavy.toarray()[np.arange(60)[:, None], np.where(ids >= 0, ids, 0)][ids >= 0] > 0)


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_the_tiled_brute_force_masks_groups_and_pairs_exactly(rng, metric, monkeypatch):
    """Tiles of queries × items, each row's running top-k merged tile by tile: the same list as one
    brute-force ranking, whatever the tile edges, with forbidden groups and excluded pairs masked."""
    import contrec.serving.dense as dense_module
    from contrec.serving.dense import dense_top_k

    monkeypatch.setattr(dense_module, "_QUERY_TILE", 5)
    monkeypatch.setattr(dense_module, "_CELLS", 5 * 64)  # item tiles of 256 over 700 items
    items = rng.normal(size=(700, 8)).astype(np.float32)
    queries = rng.normal(size=(23, 8)).astype(np.float32)
    group = rng.integers(0, 12, 700)
    banned = sp.random(23, 12, density=0.3, format="csr", random_state=3)
    exclude = sp.random(23, 700, density=0.2, format="csr", random_state=4)
    exclude.data[:] = 1
    blocked = rng.random(700) < 0.1
    mask = exclude.toarray() > 0
    mask |= (banned.toarray() > 0)[:, group] | blocked[None, :]
    ids, scores = dense_top_k(items, queries, 15, l2=metric == "l2", exclude=exclude, group=group, banned=banned,
                              blocked=blocked)
    ref_ids, ref_scores = brute_force(queries, items, 15, sp.csr_matrix(mask.astype(np.float32)), metric)
    check_same_ranking(ids, scores, ref_ids, ref_scores)
    few = sp.csr_matrix(np.ones((23, 12), np.float32))  # every group forbidden: nothing passes
    ids, scores = dense_top_k(items, queries, 4, group=group, banned=few)
    assert (ids == -1).all() and np.isneginf(scores).all()


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


@pytest.mark.parametrize("kind, params", [("ivf", {"nlist": 20, "nprobe": 12}), ("hnsw", {"ef_search": 64})])
@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_approximate_indexes_find_the_exact_top_k_and_never_return_excluded_items(kind, params, metric):
    rng = np.random.default_rng(0)
    items = rng.normal(size=(2000, 16)).astype(np.float32)
    queries = rng.normal(size=(50, 16)).astype(np.float32)
    exclude = sp.random(50, 2000, density=0.02, format="csr", random_state=1)
    k = 10
    exact_ids, _ = FaissIndex(metric).build(items).search(queries, k, exclude)
    approx = FaissIndex(metric, kind=kind, **params).build(items)
    assert not approx.exact
    ids, scores = approx.search(queries, k, exclude)
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, exact_ids)])
    assert recall >= 0.9
    for row, got in enumerate(ids):
        assert not set(got[got >= 0]) & set(exclude[row].indices)
    assert np.all(np.diff(scores, axis=1) <= 1e-5)  # best first


def test_index_kind_and_parameters_are_checked():
    with pytest.raises(contrec.ConfigError, match="unknown index kind 'annoy'"):
        FaissIndex("ip", kind="annoy")
    with pytest.raises(contrec.ConfigError, match="ef_search must be a positive integer"):
        FaissIndex("ip", kind="hnsw", ef_search=0)


def test_models_serve_from_an_approximate_index_and_keep_it_through_save(board, tmp_path):
    model = contrec.ContrastiveRecommender(dim=8, epochs=3, verbose=False, index="hnsw",
                                           index_params={"ef_search": 32}).fit(board)
    assert model.index_.kind == "hnsw"
    exact = model.recommend("u0", k=5)
    again = contrec.ContrastiveRecommender.load(model.save(tmp_path / "m.contrec"))
    assert again.index_.kind == "hnsw" and again.index_.ef_search == 32
    assert list(again.recommend("u0", k=5)["item"]) == list(exact["item"])
    als = contrec.ImplicitALS(factors=4, iterations=2).fit(board).set_index("ivf", nlist=2, nprobe=2)
    assert als.index_.kind == "ivf" and len(als.recommend("u1", k=3)) == 3
    with pytest.raises(contrec.ConfigError, match="unknown index parameter"):
        als.set_index("hnsw", efsearch=3)
    with pytest.raises(contrec.ConfigError, match="index_params has an unknown key"):
        contrec.ContrastiveRecommender(dim=8, epochs=1, verbose=False, index_params={"probes": 3}).fit(board)


@pytest.mark.parametrize("kind, params", [("ivf", {"nlist": 60, "nprobe": 1}), ("hnsw", {"ef_search": 16})])
def test_approximate_indexes_return_k_items_for_nearly_complete_histories(kind, params):
    """Issue 15.6: a user who has seen 3,660 of 3,700 items still gets k = 20 unseen ones (exact fallback)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    n, d = 3700, 16
    items = rng.normal(size=(n, d)).astype(np.float32)
    queries = rng.normal(size=(3, d)).astype(np.float32)
    seen = np.ones((3, n), dtype=bool)
    seen[0, rng.choice(n, 40, replace=False)] = False   # 40 unseen left: k = 20 of them must come back
    seen[1, rng.choice(n, 5, replace=False)] = False    # only 5 left: a list of 5, padded
    seen[2, :] = rng.random(n) < 0.3                     # an ordinary user
    exclude = sp.csr_matrix(seen.astype(np.float32))
    index = FaissIndex("ip", kind=kind, **params).build(items)
    ids, scores = index.search(queries, 20, exclude)
    exact_ids, _ = FaissIndex("ip").build(items).search(queries, 20, exclude)
    assert (ids[0] >= 0).sum() == 20 and (ids[1] >= 0).sum() == 5 and (ids[2] >= 0).sum() == 20
    assert not seen[0, ids[0]].any() and not seen[1, ids[1][ids[1] >= 0]].any()
    np.testing.assert_array_equal(ids[:2], exact_ids[:2])  # the short rows were answered exactly
