"""The spectral start: a randomised SVD that is right, vectors that carry the graph, towers started from them."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import contrec
from contrec.nn.encoders import HistoryEncoder, IdEncoder
from contrec.nn.spectral import randomized_svd, spectral_vectors
from contrec.nn.towers import TowerConfig, start_towers

from .conftest import checkerboard


def normalised(matrix):
    dense = (matrix.toarray() > 0).astype(np.float64)
    du, di = dense.sum(1), dense.sum(0)
    return dense / np.sqrt(np.maximum(du, 1))[:, None] / np.sqrt(np.maximum(di, 1))[None, :]


def test_randomized_svd_finds_the_top_singular_values(rng):
    matrix = sp.random(80, 50, density=0.15, format="csr", random_state=3)
    u, s, vt = randomized_svd(matrix, 6, seed=0)
    exact = np.linalg.svd(matrix.toarray(), compute_uv=False)[:6]
    # a random sparse matrix has a flat spectrum, the randomised method's hardest case: still within 0.1 %
    np.testing.assert_allclose(s, exact, rtol=1e-3)
    np.testing.assert_allclose(u.T @ u, np.eye(6), atol=1e-8)  # orthonormal singular vectors
    np.testing.assert_allclose(u.T @ (matrix @ vt.T), np.diag(s), atol=1e-8)


def test_spectral_vectors_are_the_best_rank_k_picture_of_the_normalised_graph():
    matrix = sp.random(40, 30, density=0.2, format="csr", random_state=5)
    users, items = spectral_vectors(matrix, 4, seed=1)
    target = normalised(matrix)
    best = np.linalg.svd(target, compute_uv=False)
    residual = np.linalg.norm(target - users @ items.T)
    assert residual == pytest.approx(np.sqrt((best[4:] ** 2).sum()), rel=1e-3)  # Eckart–Young: nothing beats it
    again = spectral_vectors(matrix, 4, seed=1)
    np.testing.assert_array_equal(again[0], users)  # deterministic for a seed


def test_rank_is_capped_by_the_matrix():
    users, items = spectral_vectors(sp.csr_matrix(np.eye(3)), 8)
    assert users.shape == (3, 3) and items.shape == (3, 3)


def test_start_towers_puts_every_seen_row_on_its_spectral_direction_and_keeps_the_scale():
    board = checkerboard(12, 10)
    matrix = board.matrix.tolil()
    matrix[:, 9] = 0  # item 9 never seen: keeps its random start
    matrix = matrix.tocsr()
    matrix.eliminate_zeros()
    gen = torch.Generator().manual_seed(0)
    users, items = IdEncoder(12, 6, generator=gen), IdEncoder(10, 6, generator=gen)
    before = items.embedding.weight.detach().clone()
    start_towers(TowerConfig(dim=6, init="spectral"), users, items, matrix)
    u_vec, i_vec = spectral_vectors(matrix, 6)
    k = u_vec.shape[1]
    assert not i_vec[9].any()  # no interactions: no spectral position at all
    got = items.embedding.weight.detach().numpy()
    for row in range(9):
        a, b = got[row, :k], i_vec[row]
        assert abs(a @ b) == pytest.approx(np.linalg.norm(a) * np.linalg.norm(b), rel=1e-5)  # same direction
    torch.testing.assert_close(items.embedding.weight[9], before[9])
    assert items.embedding.weight[:9].norm(dim=1).mean().item() == pytest.approx(before[:9].norm(dim=1).mean().item(),
                                                                                  rel=0.05)
    # before any training the checkerboard is already there: even users score even items higher
    scores = users.embedding.weight.detach()[:, :k] @ items.embedding.weight.detach()[:9, :k].T
    assert all(scores[u, u % 2::2].mean() > scores[u, 1 - u % 2::2].mean() for u in range(12))


def test_towers_without_an_id_table_keep_their_random_start():
    board = checkerboard(12, 10)
    gen = torch.Generator().manual_seed(0)
    history = HistoryEncoder(board.matrix, 4, generator=gen)
    items = IdEncoder(10, 4, generator=gen)
    before = {k: v.clone() for k, v in history.state_dict().items()}
    start_towers(TowerConfig(dim=4, init="spectral"), history, items, board.matrix)
    for key, value in history.state_dict().items():
        torch.testing.assert_close(value, before[key])
    random_start = IdEncoder(10, 4, generator=torch.Generator().manual_seed(0))
    start_towers(TowerConfig(dim=4, init="random"), random_start, random_start, board.matrix)  # a no-op
    torch.testing.assert_close(random_start.embedding.weight,
                               IdEncoder(10, 4, generator=torch.Generator().manual_seed(0)).embedding.weight)


@pytest.mark.parametrize("towers", [{}, {"user_tower": "graph", "item_tower": "graph"}, {"user_tower": "history"}])
def test_a_spectral_model_trains_round_trips_and_repeats(board, tmp_path, towers):
    params = dict(dim=8, epochs=4, batch_size=64, n_negatives=16, lr=0.05, verbose=False, seed=0, init="spectral",
                  validation_size=0, **towers)
    model = contrec.ContrastiveRecommender(**params).fit(board)
    recs = model.recommend("u0", k=5, filter_seen=False)
    assert all(int(i[1:]) % 2 == 0 for i in recs["item"])
    again = contrec.ContrastiveRecommender(**params).fit(board)
    np.testing.assert_array_equal(again.item_vectors_, model.item_vectors_)
    loaded = contrec.ContrastiveRecommender.load(model.save(tmp_path / "m.contrec"))
    assert loaded.init == "spectral" and loaded.recommend("u0", k=5, filter_seen=False).equals(recs)


def test_init_is_checked():
    with pytest.raises(contrec.ConfigError, match="init must be one of 'random', 'spectral' \\(got 'svd'\\)"):
        contrec.ContrastiveRecommender(init="svd").check()
