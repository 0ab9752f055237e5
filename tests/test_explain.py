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
