"""Updating a saved model with new interactions: rows carry over, new users and items join, files round-trip."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import torch

import contrec
from contrec.errors import ConfigError
from contrec.models.warm import prepare_update


def _logs(seed: int = 0) -> tuple[contrec.Interactions, contrec.Interactions, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    rows = {(f"u{u}", f"i{i}") for u in range(40) for i in rng.choice(30, 6, replace=False)}
    old = pd.DataFrame(sorted(rows), columns=["user", "item"])
    # the week: old users with new items, new users with old and new items, one new item seen by new users only
    more = pd.DataFrame([("u1", "i30"), ("u2", "i30"), ("n1", "i3"), ("n1", "i4"), ("n2", "i31"), ("n1", "i31"),
                         ("u1", "i2")], columns=["user", "item"])
    attrs = pd.DataFrame({"genres": [f"g{i % 3}" for i in range(32)]}, index=[f"i{i}" for i in range(32)])
    return (contrec.Interactions.from_frame(old, item_attributes=attrs),
            contrec.Interactions.from_frame(more.drop_duplicates(), item_attributes=attrs), more)


def _model(**extra) -> contrec.ContrastiveRecommender:
    settings = {"dim": 8, "epochs": 3, "validation_size": 0, "seed": 0, "threads": 1, "verbose": False, **extra}
    return contrec.ContrastiveRecommender(**settings)


def test_an_update_extends_the_maps_keeps_old_rows_and_starts_new_rows_at_their_neighbours():
    old, more, _ = _logs()
    model = _model().fit(old)
    train, known, warm = prepare_update(model, more, "union")
    assert list(train.users.ids[:len(model.users_)]) == list(model.users_.ids)  # old ids keep their rows
    assert set(train.users.ids[len(model.users_):]) == {"n1", "n2"}
    assert set(train.items.ids[len(model.items_):]) == {"i30", "i31"}
    old_pairs = set(map(tuple, old.to_frame()[["user", "item"]].astype(str).to_numpy()))
    fresh = {p for p in map(tuple, more.to_frame()[["user", "item"]].astype(str).to_numpy()) if p not in old_pairs}
    assert known.nnz == len(old) + len(fresh) and train.matrix.nnz == known.nnz
    from contrec.nn.encoders import IdEncoder

    user, item = IdEncoder(train.n_users, 8), IdEncoder(train.n_items, 8)
    counts = warm.apply(user, item, train)
    assert counts == {"new_users": 2, "new_items": 2, "new_users_started": 1, "new_items_started": 2}
    old_u, old_i = model.tower_states_["user"]["embedding.weight"], model.tower_states_["item"]["embedding.weight"]
    assert torch.equal(user.embedding.weight[:len(old_u)], torch.from_numpy(old_u))
    assert torch.equal(item.embedding.weight[:len(old_i)], torch.from_numpy(old_i))
    n1 = int(train.users.index(np.array(["n1"]))[0])
    i3, i4 = model.items_.index(np.array(["i3", "i4"]))
    np.testing.assert_allclose(user.embedding.weight[n1].detach().numpy(), (old_i[i3] + old_i[i4]) / 2, rtol=1e-6)
    i31 = int(train.items.index(np.array(["i31"]))[0])  # seen by n1 and n2 only: started from their fresh rows
    n2 = int(train.users.index(np.array(["n2"]))[0])
    expected = (user.embedding.weight[n1] + user.embedding.weight[n2]).detach().numpy() / 2
    np.testing.assert_allclose(item.embedding.weight[i31].detach().numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("train_on", ["union", "new"])
def test_a_warm_started_model_loads_recommends_new_users_and_items_and_saves_again(tmp_path, train_on):
    old, more, frame = _logs()
    _model().fit(old).save(tmp_path / "m.contrec")
    model = contrec.ContrastiveRecommender.load(tmp_path / "m.contrec")
    model.fit(more, warm_start=True, train_on=train_on, update_epochs=2)
    assert len(model.history_) == 2 and model.update_["new_users"] == 2
    recs = model.recommend(["n1", "n2", "u1"], k=5)
    assert set(recs["user"]) == {"n1", "n2", "u1"}
    for user, items in frame.groupby("user")["item"]:  # every old and new positive stays known
        assert not set(recs[recs["user"] == user]["item"]) & set(items)
    known_u1 = set(old.to_frame().query("user == 'u1'")["item"])
    assert not set(recs[recs["user"] == "u1"]["item"]) & known_u1
    assert "i30" in set(model.items_.ids) and model.score(["n2"], ["i31"])["score"].notna().all()
    model.save(tmp_path / "again.contrec")
    again = contrec.ContrastiveRecommender.load(tmp_path / "again.contrec")
    pd.testing.assert_frame_equal(again.recommend(["n1"], k=5), model.recommend(["n1"], k=5))
    again.fit(more, warm_start=True, update_epochs=1)  # and once more, from the file
    assert len(again.users_) == len(model.users_)


@pytest.mark.parametrize("towers", [{"user_tower": "history"}, {"user_tower": "simplex", "projection": 8},
                                    {"user_tower": "graph", "item_tower": "graph"}])
def test_history_simplex_graph_towers_and_heads_continue_too(towers, tmp_path):
    old, more, _ = _logs()
    first = _model(**towers).fit(old)
    first.save(tmp_path / "m.contrec")
    model = contrec.ContrastiveRecommender.load(tmp_path / "m.contrec")
    before = {side: {k: v.copy() for k, v in params.items()} for side, params in model.tower_states_.items()}
    model.fit(more, warm_start=True, update_epochs=1)
    assert set(model.tower_states_["user"]) == set(before["user"])  # the same weights, grown and trained
    recs = model.recommend(["n1", "u3"], k=4)
    assert set(recs["user"]) == {"n1", "u3"} and len(recs) == 8
    if towers["user_tower"] in ("history", "simplex"):  # a new user is encoded from its items
        assert len(model.recommend_for_history({"q": ["i30", "i3"]}, k=3)) == 3


def test_a_feature_tower_continues_token_rows_by_their_text_and_starts_new_items_from_their_features(tmp_path):
    old, more, _ = _logs()
    _model(item_tower="features").fit(old).save(tmp_path / "f.contrec")
    model = contrec.ContrastiveRecommender.load(tmp_path / "f.contrec")
    before = model.tower_states_["item"]["tokens.weight"].copy()
    vocabulary = model.feature_tokens_.vocabulary if hasattr(model, "feature_tokens_") else None
    from contrec.models.warm import prepare_update

    train, _, warm = prepare_update(model, more, "union")
    from contrec.nn.towers import build_item_tower, build_user_tower, feature_tokens

    towers, _, _ = model._configs(chosen=model.chosen_)
    tokens = feature_tokens(towers, train)
    item = build_item_tower(towers, train, torch.Generator().manual_seed(1), tokens)
    user = build_user_tower(towers, train.n_users, train.matrix, torch.Generator().manual_seed(1))
    counts = warm.apply(user, item, train, tokens)
    assert counts["new_items"] == 2 and counts["new_items_started"] == 2
    for n, token in enumerate(warm.vocabulary):  # every old token row, wherever the new vocabulary puts it
        assert torch.equal(item.tokens.weight[tokens.vocabulary.index(token)], torch.from_numpy(before[n]))
    assert float(item.id.weight[len(model.items_):].detach().abs().sum()) == 0.0  # new items: their features alone
    assert vocabulary is None or tuple(vocabulary) == warm.vocabulary
    model.fit(more, warm_start=True, update_epochs=1)
    assert len(model.recommend(["n1"], k=3)) == 3


def test_updates_refuse_what_they_cannot_continue():
    old, more, _ = _logs()
    with pytest.raises(ConfigError, match="train_on='all' is not valid"):
        _model().fit(old).fit(more, warm_start=True, train_on="all")
    with pytest.raises(ConfigError, match="epochs must be ≥ 1"):
        _model().fit(old).fit(more, warm_start=True, update_epochs=0)


def test_cli_fit_from_a_saved_model(tmp_path, cli):
    old, _, frame = _logs()
    old.to_frame()[["user", "item"]].to_csv(tmp_path / "old.csv", index=False)
    frame.to_csv(tmp_path / "week.csv", index=False)
    cli("fit", tmp_path / "old.csv", "-o", tmp_path / "m.contrec", "--epochs", "2", "--validation-size", "0", "--dim",
        "8", "--threads", "1", "--quiet", check=True)
    done = cli("fit", tmp_path / "week.csv", "--from", tmp_path / "m.contrec", "--update-epochs", "1", "--threads", "1",
               "-o", tmp_path / "u.contrec", check=True)
    assert "2 new users, 2 new items" in done.stderr
    recs = cli("recommend", tmp_path / "u.contrec", "--users", "n1", "-k", "3", check=True).stdout
    assert recs.count("\n") == 4
    bad = cli("fit", tmp_path / "week.csv", "--from", tmp_path / "m.contrec", "--lr", "0.1", "-o", tmp_path / "x.contrec")
    assert bad.returncode == 1 and "--lr: --from continues a saved model with its own settings" in bad.stderr
    assert bad.stderr.strip().count("\n") == 0 and not (tmp_path / "x.contrec").exists()
