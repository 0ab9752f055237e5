"""Explanations: the history items that count most for a recommended item's score."""

from __future__ import annotations

import numpy as np
import pytest

import contrec
from contrec.data.synthetic import synthetic_interactions
from contrec.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def train():
    return synthetic_interactions(50, 60, 700, seed=4)


def test_an_id_model_names_the_history_items_most_similar_to_the_item(train):
    model = contrec.ContrastiveRecommender(dim=8, epochs=2, validation_size=0, seed=0, threads=1,
                                           verbose=False).fit(train)
    user = str(model.users_.ids[3])
    item = model.recommend([user], k=1)["item"].iloc[0]
    why = model.explain(user, item, k=3)
    assert list(why.columns) == ["user", "item", "history_item", "effect", "method", "rank"]
    assert (why["method"] == "similarity").all() and why["rank"].tolist() == [1, 2, 3]
    history = model.items_.index(model.items_.ids[model.seen_[3].indices])
    i = model.items_.index(np.array([item]))[0]
    sims = model.item_vectors_[history] @ model.item_vectors_[i]  # cosine: unit vectors, inner product
    best = model.items_.ids[history[np.argsort(-sims)[:3]]]
    assert why["history_item"].tolist() == list(best)
    np.testing.assert_allclose(why["effect"], np.sort(sims)[::-1][:3], rtol=1e-5)


def test_a_history_model_measures_each_items_effect_by_leaving_it_out(train):
    model = contrec.ContrastiveRecommender(dim=8, epochs=2, validation_size=0, seed=0, threads=1, verbose=False,
                                           user_tower="history").fit(train)
    user, u = str(model.users_.ids[5]), 5
    item = model.recommend([user], k=1)["item"].iloc[0]
    why = model.explain(user, item, k=50)
    assert (why["method"] == "leave-one-out").all() and len(why) == model.seen_[u].nnz
    history = model.seen_[u].indices
    top = why["history_item"].iloc[0]
    rest = [h for h in model.items_.ids[history] if h != top]
    with_all = model.recommend_for_history({"q": list(model.items_.ids[history])}, k=len(model.items_) - len(history))
    without = model.recommend_for_history({"q": rest}, k=len(model.items_) - len(rest), filter_seen=False)
    drop = with_all.set_index("item").loc[item, "score"] - without.set_index("item").loc[item, "score"]
    assert why["effect"].iloc[0] == pytest.approx(drop, abs=1e-5)
    assert why["effect"].is_monotonic_decreasing


def test_baselines_explain_too_and_bad_ids_are_one_line(train):
    als = contrec.ImplicitALS(factors=4, iterations=2, seed=0, threads=1).fit(train)
    user = str(als.users_.ids[0])
    why = als.explain(user, str(als.items_.ids[1]), k=2)
    assert len(why) == 2 and (why["method"] == "leave-one-out").all()  # ALS folds users in from their items
    ease = contrec.EASE(l2=10.0).fit(train)  # linear in the history: an item's effect is its weight B[h, i]
    i = str(ease.items_.ids[1])
    why = ease.explain(user, i, k=3)
    h = ease.items_.index(why["history_item"].to_numpy())
    np.testing.assert_allclose(why["effect"], ease.item_vectors_[ease.items_.index(np.array([i]))[0]][h], atol=1e-5)
    bpr = contrec.ImplicitBPR(factors=4, iterations=2, seed=0, threads=1).fit(train)  # no fold-in: similarity
    assert (bpr.explain(user, str(als.items_.ids[1]), k=2)["method"] == "similarity").all()
    with pytest.raises(DataError, match="user id 'ghost' is not in the training data"):
        als.explain("ghost", str(als.items_.ids[1]))
    with pytest.raises(ConfigError, match="k must be ≥ 1"):
        als.explain(user, str(als.items_.ids[1]), k=0)


def test_a_feature_tower_explains_by_attribute_tokens_also_after_loading(tmp_path):
    import pandas as pd

    data = synthetic_interactions(50, 60, 700, seed=4)
    attrs = pd.DataFrame({"genres": [f"g{i % 4}|g{(i // 4) % 3 + 4}" for i in range(60)],
                          "year": [1990 + i % 7 for i in range(60)]}, index=data.items.ids)
    train = contrec.Interactions(data.matrix, data.users, data.items, None, attrs)
    model = contrec.ContrastiveRecommender(dim=8, epochs=2, validation_size=0, seed=0, threads=1, verbose=False,
                                           item_tower="features").fit(train)
    user, item = str(model.users_.ids[2]), str(model.items_.ids[7])
    why = model.explain(user, item, k=10, by="attributes")
    assert (why["method"] == "attribute leave-one-out").all() and set(why["attribute"]) == set(
        model.feature_tokens_.item_tokens(7))
    # the effect of a token: the score with all of them minus the score of the item encoded without it
    tower = model.item_encoder_
    rows = tower.tokens.weight[tower.indices[tower.indptr[7]:tower.indptr[8]]].detach()
    kept = [t for t, name in zip(rows, model.feature_tokens_.item_tokens(7)) if name != why["attribute"].iloc[0]]
    without = (sum(kept) / len(kept) + tower.id.weight[7].detach()).numpy()
    u = model.users_.index(np.array([user]))[0]
    served = model.similarity_.prepare(without[None, :])[0]
    full = model.score([user], [item])["score"].iloc[0]
    assert why["effect"].iloc[0] == pytest.approx(full - float(model.user_vectors_[u] @ served), abs=1e-5)
    model.save(tmp_path / "f.contrec")
    again = contrec.ContrastiveRecommender.load(tmp_path / "f.contrec").explain(user, item, k=10, by="attributes")
    pd.testing.assert_frame_equal(again, why, atol=1e-5)
    with pytest.raises(ConfigError, match="by='attributes' needs a feature item tower"):
        contrec.ContrastiveRecommender(dim=8, epochs=1, validation_size=0, threads=1, verbose=False).fit(
            train).explain(user, item, by="attributes")
