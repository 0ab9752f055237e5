"""Contract for every tower, and what each tower is for: cold items, new users, projection heads."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import contrec
from contrec.nn.encoders import (
    ENCODER_PRESETS,
    FeatureEncoder,
    HistoryEncoder,
    IdEncoder,
    Projected,
    segment_gather,
    segment_sample,
)
from contrec.nn.features import FeatureTokens, item_feature_tokens
from contrec.nn.graph import GraphEncoder, link_graph, normalized_adjacency
from contrec.nn.simplex import SimplexEncoder

HISTORY = sp.csr_matrix(np.array([[1, 1, 0, 0, 1], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0], [1, 0, 0, 1, 0]],
                                 dtype=np.float32))
TOKENS = FeatureTokens(np.array([0, 2, 3, 3, 4, 5]), np.array([0, 2, 1, 0, 2]), ("g=a", "g=b", "y=1"), ("g", "y"))


def _towers():
    gen = torch.Generator().manual_seed(0)
    return {
        "id": IdEncoder(5, 8, generator=gen),
        "features": FeatureEncoder(5, 8, TOKENS, known=np.array([1, 1, 0, 1, 1], bool), generator=gen),
        "history-mean": HistoryEncoder(HISTORY, 8, generator=gen),
        "history-attention": HistoryEncoder(HISTORY, 8, pooling="attention", user_id=True, dropout=0.5,
                                            generator=gen),
        "projected": Projected(IdEncoder(5, 8, generator=gen), hidden=16, out_dim=6, generator=gen),
        "simplex": SimplexEncoder(HISTORY, 8, dropout=0.5, cap=2, generator=gen),
        "graph-user": _graph_pair(gen)[0],
        "graph-item": _graph_pair(gen)[1],
    }


def _graph_pair(gen, layers=2):
    users, items = GraphEncoder(4, 8, generator=gen), GraphEncoder(5, 8, generator=gen)
    link_graph(users, items, HISTORY, layers)
    return users, items


@pytest.mark.parametrize("name", list(_towers()))
def test_tower_contract(name):
    tower = _towers()[name]
    ids = torch.arange(tower.n)
    out = tower(ids)
    assert out.shape == (tower.n, tower.dim) and torch.isfinite(out).all()
    tower.eval()
    np.testing.assert_allclose(tower.encode_all(batch_size=2).numpy(), tower(ids).detach().numpy(), atol=1e-6)
    tower.train()
    assert tower.training  # encode_all puts the mode back
    # gradients reach the parameters
    tower(ids, exclude=torch.zeros(tower.n, dtype=torch.long)).pow(2).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tower.parameters())
    # same seed, same tower
    again = _towers()[name]
    again.eval()
    np.testing.assert_array_equal(again.encode_all().numpy(), tower.encode_all().numpy())


def test_segment_gather_matches_python():
    indptr, indices = torch.from_numpy(HISTORY.indptr.astype(np.int64)), torch.from_numpy(HISTORY.indices.astype(
        np.int64))
    rows = torch.tensor([3, 0, 2, 0])
    values, segment = segment_gather(indptr, indices, rows)
    expected = [(pos, item) for pos, r in enumerate(rows.tolist()) for item in HISTORY[r].indices]
    assert list(zip(segment.tolist(), values.tolist())) == expected


def test_history_mean_pooling_by_hand_and_target_exclusion():
    tower = HistoryEncoder(HISTORY, 4, generator=torch.Generator().manual_seed(1)).eval()
    e = tower.items.weight.detach()
    out = tower(torch.tensor([0, 2])).detach()
    torch.testing.assert_close(out[0], (e[0] + e[1] + e[4]) / 3)
    torch.testing.assert_close(out[1], torch.zeros(4))  # no history: the zero vector
    left_out = tower(torch.tensor([0]), exclude=torch.tensor([1])).detach()
    torch.testing.assert_close(left_out[0], (e[0] + e[4]) / 2)


def test_attention_pooling_is_a_weighted_mean():
    tower = HistoryEncoder(HISTORY, 4, pooling="attention", generator=torch.Generator().manual_seed(2)).eval()
    e = tower.items.weight.detach()
    w = torch.softmax(e[[0, 1, 4]] @ tower.query.detach() / 2.0, 0)
    torch.testing.assert_close(tower(torch.tensor([0])).detach()[0], (w[:, None] * e[[0, 1, 4]]).sum(0))


def test_history_dropout_only_while_training():
    tower = HistoryEncoder(HISTORY, 4, dropout=0.5, generator=torch.Generator().manual_seed(3))
    tower.eval()
    a, b = tower(torch.tensor([0])), tower(torch.tensor([0]))
    torch.testing.assert_close(a, b)
    tower.train()
    views = {tuple(np.round(tower(torch.tensor([0])).detach().numpy()[0], 5)) for _ in range(20)}
    assert len(views) > 1


def test_feature_tower_uses_features_alone_for_items_without_interactions():
    tower = FeatureEncoder(5, 4, TOKENS, known=np.array([1, 1, 0, 1, 1], bool), id_dropout=0.0,
                           generator=torch.Generator().manual_seed(4)).eval()
    t, ids = tower.tokens.weight.detach(), tower.id.weight.detach()
    out = tower(torch.arange(5)).detach()
    torch.testing.assert_close(out[0], (t[0] + t[2]) / 2 + ids[0])
    torch.testing.assert_close(out[2], torch.zeros(4))  # unknown and without tokens: nothing to go on
    # a known item without tokens is its ID vector alone
    torch.testing.assert_close(out[3] - ids[3], t[0])


def test_item_feature_tokens_from_movielens_like_attributes():
    attrs = pd.DataFrame({"title": [f"Movie {i}" for i in range(30)],
                          "year": [1950 + i for i in range(30)],
                          "genres": ["Comedy|Drama" if i % 2 else "Action" for i in range(30)]})
    tokens = item_feature_tokens(attrs, buckets=3)
    assert tokens.columns == ("year", "genres")  # the title is free text
    assert tokens.item_tokens(1) == ["year=[1950, 1960)", "genres=Comedy", "genres=Drama"]
    assert tokens.item_tokens(29)[0] == "year=[1969, 1979]"
    assert tokens.coverage() == 1.0
    with pytest.raises(contrec.ConfigError, match="'rating' is not among"):
        item_feature_tokens(attrs, ["rating"])


def _genre_world(n_users=120, per_genre=40, cold_per_genre=6, seed=0):
    """Users like one genre; some items of each genre never occur in training (cold)."""
    rng = np.random.default_rng(seed)
    items = [f"i{j}" for j in range(2 * per_genre)]
    genre = ["A" if j < per_genre else "B" for j in range(2 * per_genre)]
    cold = {j for g in range(2) for j in range(g * per_genre, g * per_genre + cold_per_genre)}
    rows = []
    for u in range(n_users):
        g = u % 2
        pool = [j for j in range(g * per_genre, (g + 1) * per_genre) if j not in cold]
        rows += [(f"u{u}", items[j]) for j in rng.choice(pool, 12, replace=False)]
    frame = pd.DataFrame(rows, columns=["user", "item"])
    attrs = pd.DataFrame({"genres": genre}, index=items)
    data = contrec.Interactions.from_frame(frame, item_attributes=attrs)
    # put the cold items in the catalogue: same id space, no training rows
    full = contrec.Interactions.from_frame(
        pd.concat([frame, pd.DataFrame({"user": "u0", "item": [items[j] for j in sorted(cold)]})]),
        item_attributes=attrs)
    is_cold = np.isin(full.items.ids, [items[j] for j in cold])
    train = full.subset(~is_cold[full.matrix.indices])
    return train, is_cold, np.array([g == "A" for g in full.item_attributes["genres"]]), data


def test_cold_items_are_recommended_from_their_features():
    train, is_cold, genre_a, _ = _genre_world()
    assert (train.item_counts()[is_cold] == 0).all()
    model = contrec.ContrastiveRecommender(dim=16, epochs=30, batch_size=128, n_negatives=64, lr=0.05,
                                           item_tower="features", verbose=False, seed=0).fit(train)
    cold = np.flatnonzero(is_cold)
    users = np.arange(train.n_users)
    user_likes_a = np.array([int(u[1:]) % 2 == 0 for u in train.users.ids])
    scores = model.user_vectors_[users] @ model.item_vectors_[cold].T  # cosine: prepared unit vectors
    # every user ranks the cold items of their own genre above the cold items of the other
    own = np.where(user_likes_a[:, None], genre_a[cold][None, :], ~genre_a[cold][None, :])
    assert (scores[own].reshape(len(users), -1).min(1) > scores[~own].reshape(len(users), -1).max(1)).mean() > 0.95
    # and they reach the top-k of the full catalogue
    recs = model.recommend(["u1"], k=len(train.items.ids) // 2)
    assert set(recs["item"]) & set(train.items.ids[cold])


def test_id_tower_cannot_place_cold_items():
    train, is_cold, genre_a, _ = _genre_world()
    model = contrec.ContrastiveRecommender(dim=16, epochs=30, batch_size=128, n_negatives=64, lr=0.05,
                                           verbose=False, seed=0).fit(train)
    cold = np.flatnonzero(is_cold)
    user_likes_a = np.array([int(u[1:]) % 2 == 0 for u in train.users.ids])
    scores = model.user_vectors_ @ model.item_vectors_[cold].T
    own = np.where(user_likes_a[:, None], genre_a[cold][None, :], ~genre_a[cold][None, :])
    separated = (scores[own].reshape(len(scores), -1).min(1) > scores[~own].reshape(len(scores), -1).max(1)).mean()
    assert separated < 0.5


@pytest.fixture(scope="module")
def history_model():
    _, _, _, data = _genre_world()
    return data, contrec.ContrastiveRecommender(dim=16, epochs=20, batch_size=128, n_negatives=64, lr=0.05,
                                                user_tower="history", verbose=False, seed=0).fit(data)


def test_recommend_for_history_equals_recommend_for_a_training_user(history_model):
    data, model = history_model
    user = data.users.ids[5]
    items = data.items.ids[data.matrix[5].indices]
    by_history = model.recommend_for_history({user: list(items)}, k=10)
    by_id = model.recommend(user, k=10)
    assert list(by_history["item"]) == list(by_id["item"])
    np.testing.assert_allclose(by_history["score"], by_id["score"], rtol=1e-5)
    assert list(by_history.columns) == ["query", "item", "score", "rank"]


def test_recommend_for_history_serves_new_users_and_checks_ids(history_model):
    data, model = history_model
    genre_a = data.item_attributes["genres"].to_numpy() == "A"
    a_items = list(data.items.ids[genre_a][:3])
    recs = model.recommend_for_history([a_items, []], k=5)
    first = recs[recs["query"] == 0]["item"]
    assert len(first) == 5 and not set(first) & set(a_items)
    assert (data.item_attributes.loc[list(first), "genres"] == "A").all()
    assert (recs["query"] == 1).sum() == 5  # an empty history still gets a (neutral) list
    with pytest.raises(contrec.DataError, match="item id 'nope' is not in the catalogue"):
        model.recommend_for_history([["nope"]], k=5)
    assert len(model.recommend_for_history([["nope", a_items[0]]], k=5, unknown="skip")) == 5


def test_recommend_for_history_survives_save_and_load(history_model, tmp_path):
    _, model = history_model
    again = contrec.ContrastiveRecommender.load(model.save(tmp_path / "h.contrec"))
    query = [["i10", "i11", "i12"], ["i50"]]
    pd.testing.assert_frame_equal(again.recommend_for_history(query, k=7), model.recommend_for_history(query, k=7))


def test_recommend_for_history_needs_a_history_tower(board):
    model = contrec.ContrastiveRecommender(dim=8, epochs=1, verbose=False, user_tower="id").fit(board)
    with pytest.raises(contrec.ConfigError, match="user_tower='history'.*this one has user_tower='id'"):
        model.recommend_for_history([["i0"]])


@pytest.mark.parametrize("serve_from", ["head", "tower"])
def test_projection_head_serves_head_or_tower_output(board, serve_from):
    model = contrec.ContrastiveRecommender(dim=8, epochs=2, projection=16, serve_from=serve_from, verbose=False,
                                           seed=0).fit(board)
    assert model.item_vectors_.shape == (board.n_items, 8)
    assert len(model.recommend("u0", k=3)) == 3


@pytest.mark.parametrize("preset", list(ENCODER_PRESETS))
def test_every_encoder_preset_fits_and_recommends(preset):
    _, _, _, data = _genre_world(n_users=40)
    model = contrec.ContrastiveRecommender(dim=8, epochs=2, batch_size=64, n_negatives=16, verbose=False, seed=0,
                                           **ENCODER_PRESETS[preset]).fit(data)
    assert len(model.recommend(data.users.ids[0], k=4)) == 4


def test_fits_are_reproducible_with_history_dropout_and_ssl():
    _, _, _, data = _genre_world(n_users=40)
    params = dict(dim=8, epochs=2, batch_size=64, n_negatives=16, verbose=False, seed=3, user_tower="history",
                  history_dropout=0.3, ssl_weight=0.2)
    a = contrec.ContrastiveRecommender(**params).fit(data)
    b = contrec.ContrastiveRecommender(**params).fit(data)
    np.testing.assert_array_equal(a.user_vectors_, b.user_vectors_)


@pytest.mark.parametrize("params, message", [
    ({"user_tower": "lightgcn"}, "user_tower must be one of"),
    ({"user_tower": "graph", "optimizer": "sparse-adam"}, "use optimizer='adam'"),
    ({"user_tower": "graph", "item_tower": "features"}, "both towers must be 'id' or 'graph'"),
    ({"user_tower": "history", "item_tower": "graph"}, "both towers must be 'id' or 'graph'"),
    ({"graph_layers": 0}, "graph_layers must be"),
    ({"history_cap": -1}, "history_cap must be"),
    ({"ssl_weight": 0.1, "user_tower": "id"}, "ssl_weight needs user_tower='history'"),
    ({"objective": "bpr", "hardness": 1.0}, "with objective='infonce'"),
    ({"history_dropout": 1.0}, "history_dropout must be in"),
    ({"projection": -1}, "projection must be an integer"),
    ({"item_tower": "features"}, "needs item attributes"),
])
def test_tower_parameters_are_checked(board, params, message):
    with pytest.raises(contrec.ConfigError, match=message):
        contrec.ContrastiveRecommender(verbose=False, **params).fit(board)


def test_graph_tower_is_the_layer_mean_of_the_normalised_propagation_by_hand():
    users, items = _graph_pair(torch.Generator().manual_seed(0), layers=2)
    r = HISTORY.toarray()
    du, di = r.sum(1), r.sum(0)
    norm = np.where(r > 0, 1 / np.sqrt(np.outer(np.maximum(du, 1), np.maximum(di, 1))), 0.0)
    np.testing.assert_allclose(normalized_adjacency(HISTORY).toarray(), norm, rtol=1e-6)
    n_u = r.shape[0]
    adj = np.block([[np.zeros((n_u, n_u)), norm], [norm.T, np.zeros((r.shape[1], r.shape[1]))]])
    e0 = np.vstack([users.embedding.weight.detach().numpy(), items.embedding.weight.detach().numpy()])
    mean = (e0 + adj @ e0 + adj @ adj @ e0) / 3  # LightGCN: K = 2, layers 0..2 weighted alike
    np.testing.assert_allclose(users.encode_all().numpy(), mean[:n_u], atol=1e-6)
    np.testing.assert_allclose(items.encode_all().numpy(), mean[n_u:], atol=1e-6)
    assert np.allclose(users.encode_all()[2].numpy(), users.embedding.weight[2].detach().numpy() / 3)  # no edges


def test_graph_gradients_equal_dense_autograd_and_one_step_propagates_once(monkeypatch):
    users, items = _graph_pair(torch.Generator().manual_seed(1))
    calls = []
    prop = users.propagation
    original = prop._propagate
    monkeypatch.setattr(prop, "_propagate", lambda u, i: calls.append(1) or original(u, i))
    loss = (users(torch.tensor([0, 3])) * items(torch.tensor([1, 4]))).sum()
    loss.backward()
    assert len(calls) == 1  # the item side reused the user side's tables in the same step
    got = users.embedding.weight.grad.clone(), items.embedding.weight.grad.clone()
    # the same loss with dense matrices and torch's own autograd
    r = torch.from_numpy(normalized_adjacency(HISTORY).toarray())
    u0 = users.embedding.weight.detach().clone().requires_grad_()
    i0 = items.embedding.weight.detach().clone().requires_grad_()
    u1, i1 = r @ i0, r.T @ u0
    u2, i2 = r @ i1, r.T @ u1
    ((u0 + u1 + u2)[[0, 3]] / 3 * ((i0 + i1 + i2)[[1, 4]] / 3)).sum().backward()
    torch.testing.assert_close(got[0], u0.grad)
    torch.testing.assert_close(got[1], i0.grad)
    users(torch.tensor([0]))  # the same side again: a new step, propagated anew
    assert len(calls) == 2


def test_segment_sample_caps_heavy_rows_uniformly_and_keeps_light_rows_whole():
    from scipy.stats import chisquare

    indptr = torch.tensor([0, 3, 103])
    indices = torch.arange(103)
    gen = torch.Generator().manual_seed(0)
    flat, segment = segment_sample(indptr, indices, torch.tensor([0, 1]), 10, gen)
    assert flat[segment == 0].tolist() == [0, 1, 2] and (segment == 1).sum() == 10
    draws = torch.cat([segment_sample(indptr, indices, torch.tensor([1]), 10, gen)[0] for _ in range(3000)])
    counts = np.bincount(draws.numpy() - 3, minlength=100)
    assert chisquare(counts).pvalue > 0.001  # every item of a heavy history is equally likely


def test_history_cap_bounds_training_histories_but_serving_pools_everything():
    heavy = sp.csr_matrix(np.ones((2, 50), dtype=np.float32))
    tower = HistoryEncoder(heavy, 4, cap=5, generator=torch.Generator().manual_seed(0))
    seen = []
    original = tower.pool
    tower.pool = lambda items, segment, n: seen.append(len(items)) or original(items, segment, n)
    tower(torch.tensor([0, 1]))
    assert seen[-1] == 10  # 5 per user while training
    tower.eval()
    tower(torch.tensor([0, 1]))
    assert seen[-1] == 100
    np.testing.assert_allclose(tower.encode_all()[0].numpy(), tower.items.weight.mean(0).detach().numpy(),
                               atol=1e-6)


def test_simplex_gate_mixes_the_id_vector_and_the_transformed_history():
    tower = SimplexEncoder(HISTORY, 4, generator=torch.Generator().manual_seed(0))
    tower.eval()
    with torch.no_grad():
        tower.transform.weight.mul_(2.0)
        tower.gate.bias.fill_(1.0)  # g = σ(1) with zero gate weights
        pooled = tower.items.weight[[0, 1, 4]].mean(0)
        expected = torch.sigmoid(torch.tensor(1.0)) * tower.user.weight[0] + \
            (1 - torch.sigmoid(torch.tensor(1.0))) * 2.0 * pooled
        torch.testing.assert_close(tower(torch.tensor([0]))[0], expected)
        # a new user has no ID vector: the transformed history alone
        torch.testing.assert_close(tower.encode_histories(HISTORY[:1])[0], 2.0 * pooled)


@pytest.mark.parametrize("towers", [{"user_tower": "graph", "item_tower": "graph"}, {"user_tower": "graph"},
                                    {"item_tower": "graph"}, {"user_tower": "simplex"}])
@pytest.mark.parametrize("similarity", ["cosine", "dot", "laplacian", "kernel-mixture"])
def test_graph_and_simplex_towers_train_with_every_kernel(towers, similarity):
    _, _, _, data = _genre_world(n_users=40)
    model = contrec.ContrastiveRecommender(dim=8, epochs=2, batch_size=64, n_negatives=16, verbose=False, seed=0,
                                           similarity=similarity, validation_size=0, **towers).fit(data)
    assert np.isfinite(model.history_[-1]["loss"]) and len(model.recommend(data.users.ids[0], k=4)) == 4


@pytest.mark.parametrize("sampler", ["uniform", "popularity", "hard", "dynamic-hard", "domain-rule", "mixed"])
def test_graph_towers_train_with_every_sampler(sampler):
    _, _, _, data = _genre_world(n_users=40)
    params = {"domain-rule": {"rule": "disjoint(genres)"}}.get(sampler)
    a, b = (contrec.ContrastiveRecommender(dim=8, epochs=2, batch_size=64, n_negatives=16, verbose=False, seed=0,
                                           sampler=sampler, sampler_params=params, user_tower="graph",
                                           item_tower="graph", validation_size=0).fit(data) for _ in range(2))
    np.testing.assert_array_equal(a.user_vectors_, b.user_vectors_)  # reproducible under a seed


def test_graph_and_simplex_models_save_without_pickle_and_load(tmp_path):
    _, _, _, data = _genre_world(n_users=40)
    for towers in ({"user_tower": "graph", "item_tower": "graph"}, {"user_tower": "simplex"}):
        model = contrec.ContrastiveRecommender(dim=8, epochs=2, batch_size=64, n_negatives=16, verbose=False,
                                               seed=0, validation_size=0, **towers).fit(data)
        again = contrec.ContrastiveRecommender.load(model.save(tmp_path / "m.contrec"))
        pd.testing.assert_frame_equal(again.recommend(data.users.ids[:3], k=5), model.recommend(data.users.ids[:3],
                                                                                                k=5))
    query = [list(data.items.ids[:4])]
    pd.testing.assert_frame_equal(again.recommend_for_history(query, k=5), model.recommend_for_history(query, k=5))
