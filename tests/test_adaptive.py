"""Defaults that adapt: the automatic validation carve, weighted positives, learning-rate schedules."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import chisquare

import contrec
from contrec import ContrastiveRecommender
from contrec.data.interactions import binary_matrix
from contrec.models import selection
from contrec.models.selection import validation_carve
from contrec.training.optimizer import Optimizer
from contrec.training.config import TrainingConfig
from contrec.training.weights import draw_weights, weighted_draw

from .conftest import checkerboard

SMALL = dict(dim=8, batch_size=32, n_negatives=8, lr=0.05, verbose=False, seed=0)


def _data():
    """Each user likes a third of 30 items (10 positives: one of them goes to the carve)."""
    return checkerboard(n_users=45, n_items=30, groups=3)


def test_the_default_fit_early_stops_on_its_own_carve_then_trains_on_everything():
    data = _data()
    model = ContrastiveRecommender(epochs=6, patience=2, user_tower="id", **SMALL).fit(data)
    (trial,) = model.selection_  # the tower pinned: one carve fit
    fit_part, carve = validation_carve(data, 0.1, seed=0)
    assert len(carve) > 0 and len(fit_part) + len(carve) == len(data)
    # the carve fit is an ordinary early-stopped fit on the rest
    alone = ContrastiveRecommender(epochs=6, patience=2, validation_size=0, **SMALL).fit(fit_part, carve)
    assert trial["best_epoch"] == alone.best_epoch_ == model.best_epoch_
    assert trial["validation_ndcg"] == pytest.approx(max(r["validation"] for r in alone.history_))
    # the final model: every positive, exactly the chosen number of epochs, everything known
    assert len(model.history_) == model.best_epoch_ and "validation" not in model.history_[0]
    same = ContrastiveRecommender(epochs=model.best_epoch_, validation_size=0, user_tower="id", **SMALL).fit(data)
    np.testing.assert_array_equal(model.user_vectors_, same.user_vectors_)
    assert (model.seen_ != binary_matrix(data.matrix)).nnz == 0


def test_given_validation_or_a_zero_share_means_no_carve():
    data = _data()
    train, valid = contrec.split_random(data, 0.2, seed=1)
    assert ContrastiveRecommender(epochs=2, **SMALL).fit(train, valid).selection_ == []
    fixed = ContrastiveRecommender(epochs=2, validation_size=0, **SMALL).fit(data)
    assert fixed.selection_ == [] and len(fixed.history_) == 2 and fixed.best_epoch_ is None
    with pytest.raises(contrec.ConfigError, match="validation_size must be in"):
        ContrastiveRecommender(validation_size=1.0).check()


def test_open_settings_adapt_and_pinned_ones_do_not(monkeypatch):
    data = _data()
    monkeypatch.setattr(selection, "ADAPTIVE", (selection.Adaptive("temperature", None, (0.1, 0.5), 0.0, 0.2),))
    model = ContrastiveRecommender(epochs=3, user_tower="id", **SMALL).fit(data)
    assert [t["settings"] for t in model.selection_] == [{"temperature": 0.1}, {"temperature": 0.5}]
    best = max(model.selection_, key=lambda t: t["validation_ndcg"])
    assert model.temperature_ == best["settings"]["temperature"] and model.chosen_["epochs"] == best["best_epoch"]
    pinned = ContrastiveRecommender(epochs=3, temperature=0.3, user_tower="id", **SMALL).fit(data)
    assert [t["settings"] for t in pinned.selection_] == [{}] and pinned.temperature_ == 0.3


def _trial(tower: str, ndcg: float) -> selection.Trial:
    return selection.Trial({"user_tower": tower}, ndcg, 5, 1.0)


def test_a_challenger_must_beat_the_incumbent_by_its_margin():
    """The history tower replaces the ID tower only when it is more than 3 % better on the carve."""
    assert selection._winner([_trial("id", 0.2000), _trial("history", 0.2059)]).settings["user_tower"] == "id"
    assert selection._winner([_trial("id", 0.2000), _trial("history", 0.2061)]).settings["user_tower"] == "history"
    assert selection._winner([_trial("id", 0.2000), _trial("history", 0.1500)]).settings["user_tower"] == "id"
    line = selection._choice([_trial("id", 0.2), _trial("history", 0.201)], _trial("id", 0.2))
    assert "history': +0.5 %, under its 3 % margin" in line


def test_the_user_tower_adapts_on_the_carve_unless_pinned_and_is_id_without_one():
    data = _data()
    auto = ContrastiveRecommender(epochs=3, **SMALL).fit(data)
    assert [t["settings"] for t in auto.selection_] == [{"user_tower": "id"}, {"user_tower": "history"}]
    ndcg = {t["settings"]["user_tower"]: t["validation_ndcg"] for t in auto.selection_}
    assert auto.user_tower_ == ("history" if ndcg["history"] > 1.03 * ndcg["id"] else "id")
    assert auto.chosen_["user_tower"] == auto.user_tower_ and auto.get_params()["user_tower"] == "auto"
    # the chosen tower trains exactly as if it had been pinned
    pinned = ContrastiveRecommender(epochs=auto.best_epoch_, validation_size=0, **{**SMALL, "user_tower": auto.user_tower_}
                                    ).fit(data)
    np.testing.assert_array_equal(auto.user_vectors_, pinned.user_vectors_)
    assert [t["settings"] for t in ContrastiveRecommender(epochs=2, user_tower="id", **SMALL).fit(data).selection_] == [{}]
    no_carve = ContrastiveRecommender(epochs=2, validation_size=0, **SMALL).fit(data)
    assert no_carve.user_tower_ == "id" and no_carve.selection_ == []
    train, valid = contrec.split_random(data, 0.2, seed=1)  # validation given: nothing is carved or chosen
    assert ContrastiveRecommender(epochs=2, **SMALL).fit(train, valid).user_tower_ == "id"


def test_a_challenger_stops_after_half_the_patience():
    seen = []

    class Spy(ContrastiveRecommender):
        def fit(self, *args, **kwargs):
            seen.append((self.user_tower, self.patience))
            return super().fit(*args, **kwargs)

    Spy(epochs=3, patience=5, **SMALL).fit(_data())
    assert seen[:3] == [("auto", 5), ("id", 5), ("history", 3)]  # the model, then its two carve fits


def test_the_default_fit_trains_at_most_three_fixed_fits():
    """Issue 17's bound on the default fit: its carve fits and its refit together train at most 3 × the
    positive-epochs of one fit with the same settings pinned. Patience above the epoch cap makes every carve fit
    run to the cap, the worst case: two carve fits of ``epochs`` on 90 % of the positives, one refit."""
    trained = []

    class Counting(ContrastiveRecommender):
        def fit(self, data, *args, **kwargs):
            out = super().fit(data, *args, **kwargs)
            trained.append(len(data) * len(self.history_))  # positives seen: the carve fits first, then the refit
            return out

    data, epochs = _data(), 4
    model = Counting(epochs=epochs, patience=epochs + 1, **SMALL).fit(data)
    assert len(trained) == 3 and [t["settings"]["user_tower"] for t in model.selection_] == ["id", "history"]
    assert trained[0] == trained[1] == epochs * (len(data) - len(validation_carve(data, 0.1, seed=0)[1]))
    assert sum(trained) <= 3 * epochs * len(data)


def test_only_towers_the_other_settings_allow_are_tried():
    data = _data()
    graph_items = ContrastiveRecommender(epochs=2, item_tower="graph", **SMALL).fit(data)
    assert [t["settings"] for t in graph_items.selection_] == [{"user_tower": "id"}]  # history beside graph: no
    ssl = ContrastiveRecommender(epochs=2, ssl_weight=0.1, **SMALL).fit(data)
    assert [t["settings"] for t in ssl.selection_] == [{"user_tower": "history"}] and ssl.user_tower_ == "history"


def test_the_choice_survives_save_and_load(tmp_path, monkeypatch):
    data = _data()
    model = ContrastiveRecommender(epochs=3, **SMALL).fit(data)
    again = ContrastiveRecommender.load(model.save(tmp_path / "m.contrec"))
    assert again.selection_ == model.selection_ and again.best_epoch_ == model.best_epoch_
    assert again.chosen_ == model.chosen_ and again.user_tower_ == model.user_tower_
    # a history tower chosen on the carve (here the only candidate) serves new users after loading
    monkeypatch.setattr(selection, "ADAPTIVE", (selection.Adaptive("user_tower", "auto", ("history",), 0.03, "id"),))
    history = ContrastiveRecommender(epochs=3, **SMALL).fit(data)
    assert history.user_tower_ == "history"
    again = ContrastiveRecommender.load(history.save(tmp_path / "h.contrec"))
    assert again.user_tower_ == "history" and again.get_params()["user_tower"] == "auto"
    np.testing.assert_array_equal(again.recommend_for_history([["i0", "i1"]], k=3)["item"],
                                  history.recommend_for_history([["i0", "i1"]], k=3)["item"])


def test_users_too_small_to_carve_train_on_everything():
    data = contrec.Interactions.from_frame(pd.DataFrame({"user": list("aabbcc"), "item": list("xyxzyz")}))
    model = ContrastiveRecommender(epochs=2, **SMALL).fit(data)  # round(2 · 0.1) = 0 held out per user
    assert model.selection_ == [] and len(model.history_) == 2


# ---------------------------------------------------------------- weights
def test_draw_weights_by_hand():
    w = np.array([1.0, 4.0, 9.0, 100.0])
    assert draw_weights(w, "none") is None
    np.testing.assert_allclose(draw_weights(w, "log1p"), np.log1p(w))
    np.testing.assert_allclose(draw_weights(w, "linear"), w)
    np.testing.assert_allclose(draw_weights(w, "capped"), np.minimum(w, np.quantile(w, 0.95)))
    with pytest.raises(contrec.DataError, match="positive, finite weights"):
        draw_weights(np.array([1.0, 0.0]), "linear")


def test_weighted_draws_follow_the_weights():
    f = np.array([1.0, 2.0, 3.0, 10.0])
    rows = weighted_draw(torch.from_numpy(np.cumsum(f)), 80_000, torch.Generator().manual_seed(0)).numpy()
    counts = np.bincount(rows, minlength=4)
    assert chisquare(counts, f / f.sum() * len(rows)).pvalue > 0.001


def _heavy_pairs():
    """Each user has two items; the first is played 50 times, the second once."""
    users = [f"u{u}" for u in range(60) for _ in range(2)]
    items = [f"i{(u + k) % 30}" for u in range(60) for k in (0, 7)]
    weights = [50.0 if k == 0 else 1.0 for _ in range(60) for k in (0, 7)]
    return contrec.Interactions.from_frame(pd.DataFrame({"user": users, "item": items, "w": weights}), weight="w")


def test_heavier_positives_are_drawn_more_and_the_batch_log_q_follows(monkeypatch):
    from contrec.training import loop

    seen = []
    original = loop.step_loss
    monkeypatch.setattr(loop, "step_loss", lambda bu, bi, *a, **k: seen.append((bu.clone(), bi.clone(),
                                                                                 a[4].clone()))
                        or original(bu, bi, *a, **k))
    data = _heavy_pairs()
    ContrastiveRecommender(epochs=4, validation_size=0, positive_weights="linear", **SMALL).fit(data)
    users, items = (torch.cat([step[j] for step in seen]).numpy() for j in (0, 1))
    weights = np.asarray(data.matrix[users.copy(), items.copy()]).ravel()
    assert (weights == 50.0).mean() > 0.9  # 50 / 51 of the draws are the heavy pairs
    log_p = seen[0][2].numpy()
    expected = np.bincount(data.matrix.indices, weights=data.matrix.data, minlength=data.n_items)
    np.testing.assert_allclose(np.exp(log_p), expected / expected.sum(), rtol=1e-5)


def test_weighted_fits_are_reproducible_and_say_nothing_about_ignored_weights():
    import warnings

    data = _heavy_pairs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = ContrastiveRecommender(epochs=2, positive_weights="log1p", **SMALL).fit(data)
    b = ContrastiveRecommender(epochs=2, positive_weights="log1p", **SMALL).fit(data)
    np.testing.assert_array_equal(a.user_vectors_, b.user_vectors_)
    with pytest.raises(contrec.ConfigError, match="positive_weights must be one of"):
        ContrastiveRecommender(positive_weights="sqrt").check()


# ---------------------------------------------------------------- schedules
@pytest.mark.parametrize("schedule, at_half", [("constant", 1.0), ("linear", 0.5), ("cosine", 0.5)])
def test_learning_rate_schedules(schedule, at_half):
    towers = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    opt = Optimizer(*towers, TrainingConfig(lr=0.1, lr_schedule=schedule))
    opt.schedule(0.5)
    assert opt.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * at_half)
    opt.schedule(0.0)
    assert opt.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1)


@pytest.mark.parametrize("model", [ContrastiveRecommender(epochs=1, **SMALL), contrec.ImplicitALS(factors=4),
                                   contrec.EASE(), contrec.PopularityRecommender()], ids=lambda m: type(m).__name__)
def test_fitting_leaves_the_callers_weights_as_they_were(model):
    """A fit once set every weight of the caller's data to 1 in place (the positive lookup shared its
    arrays): an ALS fitted next on the same object then lost its confidence weights."""
    data = _heavy_pairs()
    before = data.matrix.copy()
    model.fit(data)
    assert (data.matrix != before).nnz == 0 and data.matrix.data.max() == 50.0
