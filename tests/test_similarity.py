"""Contract for every similarity: consistent scores, and FAISS ranks exactly in the kernel's order."""

import numpy as np
import pytest
import torch

import contrec
from contrec.serving.index import FaissIndex
from contrec.nn.losses import info_nce
from contrec.nn.similarity import Cosine, Gaussian, KernelMixture, Laplacian, get_similarity

from .conftest import checkerboard

NAMES = ["dot", "cosine", "gaussian", "laplacian", "kernel-mixture", "gaussian-normalized", "laplacian-normalized",
         "kernel-mixture-normalized"]


def test_every_registered_similarity_is_under_contract():
    assert set(NAMES) == set(contrec.nn.similarity.SIMILARITIES)


BALLS = [("dot", {"max_norm": None}), ("gaussian", {"max_norm": None}), ("kernel-mixture", {"max_norm": None}),
         ("dot", {"max_norm": 2.5}), ("laplacian", {"max_norm": 1.0}), ("gaussian", {"max_norm": 0.5})]


@pytest.mark.parametrize("name, params", [(n, {}) for n in NAMES] + BALLS)
def test_pairwise_equals_rowwise_and_faiss_matches_brute_force(name, params):
    sim = get_similarity(name, **params)
    assert sim.name == name
    gen = torch.Generator().manual_seed(0)
    users = torch.randn(7, 5, generator=gen) * 2
    items = torch.randn(60, 5, generator=gen) * 2
    pair = sim.pairwise(users, items)
    row = sim.rowwise(users, items.expand(7, -1, -1))
    assert torch.allclose(pair, row, atol=1e-4)
    k = 10
    brute = np.argsort(-pair.numpy(), axis=1, kind="stable")[:, :k]
    index = FaissIndex(sim.faiss_metric).build(sim.prepare(items.numpy()))
    ids, _ = index.search(sim.prepare(users.numpy()), k)
    # same items in the same order (continuous random data: no exact ties)
    np.testing.assert_array_equal(ids, brute)
    # and what the index returned, turned into the kernel's score, is s(u, v) itself (issue 15.7)
    _, values = index.search(sim.prepare(users.numpy()), k)
    np.testing.assert_allclose(sim.from_index(values), np.take_along_axis(pair.numpy(), brute, 1), rtol=1e-4,
                               atol=1e-3)


def test_distance_kernels_by_hand():
    u, v = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    assert Gaussian(max_norm=None).pairwise(u, v).tolist() == [[-25.0, -1.0]]
    assert Laplacian().pairwise(u, v)[0].tolist() == pytest.approx([-5.0, -1.0])
    assert Gaussian().pairwise(u, v).tolist() == [[-1.0, -1.0]]  # the default unit ball: (3, 4) → (0.6, 0.8)
    unit = Gaussian(normalize=True).pairwise(torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 5.0]]))
    assert unit.item() == pytest.approx(-2.0)  # ‖e1 − e2‖² = 2


def test_laplacian_gradient_is_finite_at_zero_distance():
    u = torch.ones(1, 4, requires_grad=True)
    Laplacian().pairwise(u, torch.ones(1, 4)).sum().backward()
    assert torch.isfinite(u.grad).all()


def test_normalized_distance_kernels_rank_like_cosine():
    gen = torch.Generator().manual_seed(1)
    users, items = torch.randn(5, 8, generator=gen), torch.randn(40, 8, generator=gen) * 3
    cos = np.argsort(-Cosine().pairwise(users, items).numpy(), axis=1)
    for sim in (Gaussian(normalize=True), Laplacian(normalize=True)):
        np.testing.assert_array_equal(np.argsort(-sim.pairwise(users, items).numpy(), axis=1), cos)


@pytest.mark.parametrize("name", ["gaussian", "laplacian-normalized"])
def test_model_trains_and_round_trips_with_a_distance_kernel(board, tmp_path, name):
    model = contrec.ContrastiveRecommender(dim=16, epochs=15, batch_size=64, n_negatives=32, lr=0.05,
                                           temperature=1.0, similarity=name, verbose=False, seed=0).fit(board)
    recs = model.recommend("u0", k=5, filter_seen=False)
    assert all(int(i[1:]) % 2 == 0 for i in recs["item"])  # u0 likes the even items of the checkerboard
    path = model.save(tmp_path / "m.contrec")
    again = contrec.ContrastiveRecommender.load(path)
    assert again.similarity_.name == name
    assert again.recommend("u0", k=5, filter_seen=False).equals(recs)


def test_gaussian_on_unit_vectors_is_cosine_with_twice_the_temperature():
    """−‖u−v‖² = 2·cos − 2 on unit vectors: the constant cancels in the softmax."""
    from contrec.nn.losses import info_nce

    gen = torch.Generator().manual_seed(3)
    u, v = torch.randn(6, 8, generator=gen), torch.randn(20, 8, generator=gen)
    labels = torch.arange(6)
    log_q = torch.log(torch.rand(20, generator=gen))
    a = info_nce(u, v, labels, similarity=Gaussian(normalize=True), temperature=0.4, log_q=log_q)
    b = info_nce(u, v, labels, similarity=Cosine(), temperature=0.2, log_q=log_q)
    assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_kernel_mixture_is_served_exactly_by_l2_with_k_candidates(weight):
    # the mixture score falls with the distance for every weight, so exact L2 top-k needs no re-scoring
    sim = KernelMixture(weight=weight)
    gen = torch.Generator().manual_seed(3)
    users, items = torch.randn(20, 6, generator=gen), torch.randn(300, 6, generator=gen) * 1.5
    k = 20
    brute = np.argsort(-sim.pairwise(users, items).numpy(), axis=1, kind="stable")[:, :k]
    ids, _ = FaissIndex("l2").build(sim.prepare(items.numpy())).search(sim.prepare(users.numpy()), k)
    np.testing.assert_array_equal(ids, brute)


def test_kernel_mixture_is_trained_on_its_own_score_like_every_kernel():
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(4)
    u, v = torch.randn(6, 4, generator=gen), torch.randn(9, 4, generator=gen)
    labels = torch.arange(6)
    log_q = torch.randn(9, generator=gen)

    def loss(sim):
        return info_nce(u, v, labels, similarity=sim, temperature=0.5, log_q=log_q)

    mixture = KernelMixture(weight=0.3)
    by_hand = F.cross_entropy(mixture.pairwise(u, v) / 0.5 - log_q, labels)  # one softmax over s/τ − log q
    assert loss(mixture).item() == pytest.approx(by_hand.item(), rel=1e-6)
    for radius in (None, 1.0):
        assert loss(KernelMixture(weight=1.0, max_norm=radius)).item() == pytest.approx(
            loss(Laplacian(max_norm=radius)).item(), rel=1e-6)
        assert loss(KernelMixture(weight=0.0, max_norm=radius)).item() == pytest.approx(
            loss(Gaussian(max_norm=radius)).item(), rel=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_every_kernel_declares_the_temperature_it_trains_with(name):
    sim = get_similarity(name)
    assert sim.default_temperature > 0
    model = contrec.ContrastiveRecommender(similarity=name, dim=4, epochs=1, batch_size=32, n_negatives=4,
                                           verbose=False).fit(checkerboard())
    assert model.temperature_ == sim.default_temperature  # temperature=None: the kernel's own


def test_gaussian_on_the_sphere_at_twice_the_temperature_is_cosine():
    gen = torch.Generator().manual_seed(5)
    u, v = torch.randn(5, 3, generator=gen), torch.randn(7, 3, generator=gen)
    labels, log_q = torch.tensor([0, 1, 2, 3, 4]), torch.randn(7, generator=gen)
    cosine = info_nce(u, v, labels, similarity=Cosine(), temperature=0.2, log_q=log_q)
    gaussian = info_nce(u, v, labels, similarity=Gaussian(normalize=True), temperature=0.4, log_q=log_q)
    assert gaussian.item() == pytest.approx(cosine.item(), rel=1e-5)  # −‖u−v‖² = 2·cos − 2 on unit vectors
    assert Gaussian(normalize=True).default_temperature == 2 * Cosine().default_temperature


def test_the_ball_scales_long_vectors_back_and_leaves_short_ones_alone():
    x = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    for sim in (get_similarity("dot", max_norm=2.0), get_similarity("gaussian", max_norm=2.0)):
        inside = sim.embed(x) if sim.inner_product else sim._vectors(x)
        np.testing.assert_allclose(inside.numpy(), [[1.2, 1.6], [0.3, 0.4], [0.0, 0.0]], rtol=1e-6)
        np.testing.assert_allclose(sim.prepare(x.numpy()), inside.numpy(), rtol=1e-6)  # served as trained
    free = get_similarity("dot", max_norm=None)
    assert free.embed(x) is x


def test_default_temperatures_follow_the_radius():
    """Dot and Gaussian scores scale with R², so the default τ does too: a bigger ball is the same model."""
    assert get_similarity("dot").default_temperature == Cosine().default_temperature  # unit ball: cosine's range
    assert get_similarity("dot", max_norm=3.0).default_temperature == pytest.approx(9 * 0.2)
    assert get_similarity("gaussian").default_temperature == get_similarity("gaussian-normalized").default_temperature
    assert get_similarity("gaussian", max_norm=2.0).default_temperature == pytest.approx(4 * 0.4)
    assert get_similarity("dot", max_norm=None).default_temperature == 40.0  # free norms keep their own τ
    assert get_similarity("gaussian", max_norm=None).default_temperature == 100.0
    gen = torch.Generator().manual_seed(6)
    u, v = torch.randn(5, 3, generator=gen) * 4, torch.randn(7, 3, generator=gen) * 4
    labels, log_q = torch.arange(5), torch.randn(7, generator=gen)
    for name in ("dot", "gaussian"):
        small, big = get_similarity(name, max_norm=1.0), get_similarity(name, max_norm=3.0)
        a = info_nce(u, v, labels, similarity=small, temperature=small.default_temperature, log_q=log_q)
        b = info_nce(u * 3, v * 3, labels, similarity=big, temperature=big.default_temperature, log_q=log_q)
        assert a.item() == pytest.approx(b.item(), rel=1e-5)


@pytest.mark.parametrize("params", [{}, {"max_norm": None}, {"max_norm": 0.5}])
def test_the_ball_is_what_the_model_serves_and_survives_a_round_trip(board, tmp_path, params):
    model = contrec.ContrastiveRecommender(similarity="dot", similarity_params=params, dim=8, epochs=6, batch_size=64,
                                           n_negatives=16, lr=0.05, validation_size=0, verbose=False,
                                           seed=0).fit(board)
    radius = params.get("max_norm", 1.0)
    norms = np.linalg.norm(model.item_vectors_, axis=1)
    if radius is None:
        assert norms.max() > 1.0  # free norms grow past the unit ball
    else:
        assert norms.max() <= radius * (1 + 1e-5)
    assert model.temperature_ == get_similarity("dot", **params).default_temperature
    again = contrec.ContrastiveRecommender.load(model.save(tmp_path / "m.contrec"))
    assert again.similarity_.max_norm == (None if radius is None else float(radius))
    assert again.recommend("u0", k=5).equals(model.recommend("u0", k=5))


def test_the_cli_frees_the_norms_with_json_null(tmp_path):
    import pandas as pd

    from contrec.cli.main import main

    data = tmp_path / "board.csv"
    pd.DataFrame([(f"u{u}", f"i{i}") for u in range(20) for i in range(16) if u % 2 == i % 2],
                 columns=["user", "item"]).to_csv(data, index=False)
    for params, radius in (('{"max_norm": null}', None), ("{}", 1.0)):
        out = tmp_path / f"m{radius}.contrec"
        assert main(["fit", str(data), "-o", str(out), "--similarity", "dot", "--similarity-params", params,
                     "--dim", "8", "--epochs", "2", "--validation-size", "0", "--quiet"]) in (0, None)
        assert contrec.ContrastiveRecommender.load(out).similarity_.max_norm == radius


def test_similarity_parameters_are_checked():
    assert get_similarity("kernel-mixture-normalized", weight=0.2).normalize
    with pytest.raises(contrec.ConfigError, match="weight must be in"):
        get_similarity("kernel-mixture", weight=2.0)
    with pytest.raises(contrec.ConfigError, match="similarity 'cosine': .*(takes no|unexpected keyword)"):
        get_similarity("cosine", weight=0.2)
    with pytest.raises(contrec.ConfigError, match="choose one of"):
        get_similarity("rbf")
    for bad in (0, -1.0, "1", True):
        with pytest.raises(contrec.ConfigError, match="max_norm must be a positive number or None"):
            get_similarity("dot", max_norm=bad)
    with pytest.raises(contrec.ConfigError, match="max_norm does not apply to gaussian-normalized"):
        get_similarity("gaussian-normalized", max_norm=2.0)
    with pytest.raises(contrec.ConfigError, match="similarity 'cosine': .*(takes no|unexpected keyword)"):
        get_similarity("cosine", max_norm=1.0)


@pytest.mark.parametrize("name", NAMES)
def test_faiss_top_k_is_a_valid_top_k_under_ties(name):
    # duplicated item vectors tie exactly: any order among them is right, but the scores returned
    # must be the k best scores and every returned item must score at least the k-th best
    sim = get_similarity(name)
    gen = torch.Generator().manual_seed(5)
    base = torch.randn(15, 4, generator=gen)
    items = torch.cat([base, base, base[:5]])  # 35 items, many exact ties
    users = torch.randn(6, 4, generator=gen)
    k = 12
    truth = sim.pairwise(users, items).numpy()
    ids, _ = FaissIndex(sim.faiss_metric).build(sim.prepare(items.numpy())).search(sim.prepare(users.numpy()), k)
    for row, got in zip(truth, ids):
        assert len(set(got.tolist())) == k
        best = np.sort(row)[::-1][:k]
        np.testing.assert_allclose(np.sort(row[got])[::-1], best, rtol=1e-4, atol=1e-4)


def test_a_trained_kernel_mixture_is_served_exactly(board):
    model = contrec.ContrastiveRecommender(dim=8, epochs=5, batch_size=64, n_negatives=16, similarity="kernel-mixture",
                                           similarity_params={"weight": 0.4}, temperature=1.0, verbose=False,
                                           seed=0).fit(board)
    sim = model.similarity_
    scores = sim.pairwise(torch.from_numpy(model.user_vectors_), torch.from_numpy(model.item_vectors_)).numpy()
    k = 10
    ids, _ = model.top_k(np.arange(board.n_users), k)  # k candidates from exact L2, no re-scoring
    np.testing.assert_allclose(np.take_along_axis(scores, ids, 1), -np.sort(-scores, axis=1)[:, :k], rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("name", ["laplacian", "kernel-mixture"])
def test_recommendation_scores_are_the_kernel_score(board, name):
    """Issue 15.7: the score column of a Laplacian or mixture model is s(u, v), not FAISS's squared L2."""
    model = contrec.ContrastiveRecommender(dim=8, epochs=2, batch_size=64, n_negatives=16, similarity=name,
                                           temperature=1.0, verbose=False, seed=0).fit(board)
    recs = model.recommend(["u0", "u1"], k=5)
    users = model.users_.index(recs["user"].to_numpy())
    items = model.items_.index(recs["item"].to_numpy())
    expected = model.similarity_.rowwise(torch.from_numpy(model.user_vectors_[users]),
                                         torch.from_numpy(model.item_vectors_[items])[:, None, :]).numpy()[:, 0]
    np.testing.assert_allclose(recs["score"].to_numpy(), expected, rtol=1e-4, atol=1e-4)
