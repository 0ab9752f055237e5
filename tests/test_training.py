"""Training with every sampler: it runs, reports false negatives and sampler cost, and learns."""

import numpy as np
import torch
import pytest

import contrec
from contrec import ContrastiveRecommender, split_random

from .contracts import skewed_interactions

TINY = dict(dim=8, epochs=2, batch_size=32, n_negatives=16, lr=0.05, verbose=False, seed=0)

SAMPLER_SETUPS = [
    ("uniform", {}),
    ("uniform", {"exclude_positives": True}),
    ("popularity", {"alpha": 0.75}),
    ("hard", {"top_m": 5, "refresh_every": 3}),
    ("dynamic-hard", {"pool_size": 16}),
    ("domain-rule", {"rule": "disjoint(genres)"}),
    ("domain-rule", {"rule": "disjoint(genres)", "draw": "per-row"}),
    ("mixed", {"components": [{"name": "domain-rule", "weight": 0.5, "rule": "disjoint(genres)"},
                              {"name": "uniform", "weight": 0.5}]}),
    ("domain-rule", {"rule": "same(decade)", "fallback": "skip", "exclude_positives": True}),
    ("mixed", {"components": {"popularity": 0.5, "hard": 0.3, "uniform": 0.2}}),
    ("in-batch", {}),
]


@pytest.mark.parametrize("name,params", SAMPLER_SETUPS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SAMPLER_SETUPS)])
def test_every_sampler_trains_and_reports(name, params):
    train = skewed_interactions(n_users=60, n_items=30)
    model = ContrastiveRecommender(sampler=name, sampler_params=params, **TINY).fit(train)
    for record in model.history_:
        assert 0.0 <= record["false_negative_rate"] <= 1.0
        assert 0.0 <= record["masked_share"] <= 1.0
        assert 0.0 <= record["sampler_share"] <= 1.0
        assert np.isfinite(record["loss"])
    if params.get("exclude_positives"):
        assert all(r["false_negative_rate"] == 0.0 for r in model.history_)
    if name == "hard":
        assert model.history_[0]["refreshes"] >= 2  # every 3 steps and at the epoch end
    assert len(model.recommend(train.users.ids[:2], k=3)) == 6


def test_false_negative_rate_is_the_density_for_uniform_draws():
    train = skewed_interactions(n_users=200, n_items=20)  # 4 of 20 items per user: 20 % positives
    model = ContrastiveRecommender(sampler="uniform", **{**TINY, "n_negatives": 256, "epochs": 1}).fit(train)
    assert model.history_[0]["false_negative_rate"] == pytest.approx(0.2, abs=0.02)


@pytest.mark.parametrize("extra", [{"logq": False}, {"debias_prior": 0.05}, {"hardness": 0.5},
                                   {"in_batch": False, "sampler": "popularity"}])
def test_loss_options_train(extra):
    data = skewed_interactions(n_users=80, n_items=30)
    train, test = split_random(data, 0.25, seed=0)
    model = ContrastiveRecommender(**{**TINY, "epochs": 3, **extra}).fit(train)
    table = contrec.evaluate(model, train, test, k=5)
    assert np.isfinite(table["value"]).all()


def test_bad_loss_options():
    train = skewed_interactions()
    with pytest.raises(contrec.ConfigError, match=r"debias_prior must be in \[0, 1\)"):
        ContrastiveRecommender(debias_prior=1.0, **TINY).fit(train)
    with pytest.raises(contrec.ConfigError, match="hardness must be ≥ 0"):
        ContrastiveRecommender(hardness=-1.0, **TINY).fit(train)


@pytest.mark.parametrize("draw", ["shared", "per-row"])
def test_mask_in_batch_masks_every_negative_the_rule_forbids(monkeypatch, draw):
    # with mask_in_batch, whatever a candidate's source, the loss never sees a negative the rule forbids
    import torch

    import contrec.training.step as training
    from contrec.samplers import DomainRuleSampler

    train = skewed_interactions(n_users=60, n_items=30)
    seen = []
    real = training.info_nce

    def spy(user, candidates, labels, **kw):
        seen.append((kw["mask"].clone(), kw.get("candidate_index")))
        return real(user, candidates, labels, **kw)

    monkeypatch.setattr(training, "info_nce", spy)
    sampler = DomainRuleSampler("disjoint(genres)", draw=draw, mask_in_batch=True)
    ContrastiveRecommender(sampler=sampler, **{**TINY, "epochs": 1}).fit(train)
    genres = [set(g.split("|")) for g in train.item_attributes.loc[train.items.ids, "genres"]]
    users = torch.from_numpy(train.row_codes())
    items = torch.from_numpy(train.matrix.indices.astype(np.int64))
    assert seen
    # re-run the first batch's candidate layout: the batch's positives come first, so column c < B
    # of row b is row c's positive; a kept one must share no genre with row b's positive
    perm = torch.randperm(len(users), generator=torch.Generator().manual_seed(0))
    batch = items[perm[:TINY["batch_size"]]]
    mask = seen[0][0]
    B = len(batch)
    checked = 0
    for b in range(B):
        mine = genres[int(batch[b])]
        if all(mine & g for g in genres):
            continue  # the rule allows nothing for this positive: fallback="uniform" forbids nothing
        for c in range(B):
            if c != b and not mask[b, c]:
                assert not mine & genres[int(batch[c])]
                checked += 1
    assert checked > 0


def test_dynamic_hard_pool_is_scored_without_dropout_noise():
    """Issue 15.7: the pool is ranked by the model, not by its dropout noise; the towers' mode is restored."""
    import scipy.sparse as sp

    from contrec.nn.encoders import HistoryEncoder, IdEncoder
    from contrec.nn.similarity import Cosine
    from contrec.training import pool_scorer

    gen = torch.Generator().manual_seed(0)
    history = sp.random(6, 20, density=0.4, format="csr", random_state=0)
    history.data[:] = 1.0
    users = HistoryEncoder(history, 8, dropout=0.5, generator=gen, seed=0)
    items = IdEncoder(20, 8, generator=gen)
    users.train(), items.train()
    score = pool_scorer(users, items, Cosine())
    u, pool = torch.arange(6), torch.randint(0, 20, (6, 10), generator=gen)
    first, second = score(u, pool), score(u, pool)
    assert users.training and items.training
    users.eval()
    with torch.no_grad():
        clean = Cosine().pairwise(users(u), items(torch.arange(20))).gather(1, pool)
    assert torch.equal(first, second) and torch.allclose(first, clean)


def test_the_validator_keeps_the_best_epoch_and_stops_after_patience():
    import torch

    from contrec.nn.encoders import IdEncoder
    from contrec.training.validation import Validator

    train, valid = split_random(skewed_interactions(n_users=30, n_items=20), 0.3, seed=0)
    tower = IdEncoder(20, 4, generator=torch.Generator().manual_seed(0))
    validator = Validator(train, valid, k=5, patience=2)
    weights = []
    for epoch, score in enumerate([0.1, 0.3, 0.2, 0.25], 1):
        with torch.no_grad():
            tower.embedding.weight.fill_(float(epoch))
        weights.append(epoch)
        validator.record(epoch, score, tower, tower)
        if validator.should_stop(epoch):
            break
    assert (validator.best_epoch, validator.best_score, epoch) == (2, 0.3, 4)  # two epochs without a better one
    validator.restore(tower, tower)
    assert tower.embedding.weight[0, 0].item() == 2.0  # the best epoch's towers are back
    vectors = torch.nn.functional.normalize(torch.randn(train.n_users, 4, generator=torch.Generator()), dim=1)
    score = validator.score(vectors.numpy(), tower.encode_all().numpy(), "ip")
    assert 0.0 <= score <= 1.0


def test_towers_and_kernels_declare_what_the_trainer_may_call():
    import torch

    from contrec.nn.encoders import IdEncoder, Projected, serving_vectors
    from contrec.nn.similarity import Cosine, Laplacian

    ids = IdEncoder(5, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(contrec.ConfigError, match="no random views; ssl_weight needs user_tower='history'"):
        ids.augmented_pair(torch.arange(2), 0.5)
    assert ids.history() is None and torch.equal(ids.project(torch.ones(2, 4)), torch.ones(2, 4))
    head = Projected(ids, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(serving_vectors(head, "tower"), ids.encode_all())  # the tower's own output
    assert serving_vectors(head, "head").shape == (5, 4)
    assert Cosine().inner_product and Cosine().components == ()
    assert not Laplacian().inner_product
    with pytest.raises(contrec.ConfigError, match="not an inner-product kernel"):
        Laplacian().embed(torch.ones(1, 2))


def test_a_learned_temperature_moves_and_is_reported():
    train, valid = split_random(skewed_interactions(n_users=40, n_items=20), 0.25, seed=0)
    fixed = ContrastiveRecommender(dim=8, epochs=3, batch_size=32, n_negatives=8, verbose=False).fit(train, valid)
    assert fixed.temperature_ == 0.2 and "temperature" not in fixed.history_[0]
    model = ContrastiveRecommender(dim=8, epochs=3, batch_size=32, n_negatives=8, verbose=False, lr=0.05,
                                   learn_temperature=True).fit(train, valid)
    taus = [r["temperature"] for r in model.history_]
    assert len(set(taus)) == len(taus) and all(0.01 <= t <= 1000 for t in taus)  # trained, inside its bounds
    best = next(r for r in model.history_ if r["best"])
    assert model.temperature_ == best["temperature"]  # the τ of the epoch that is served
    for objective in ("bpr", "triplet"):  # every objective takes a learned τ
        ContrastiveRecommender(dim=8, epochs=1, batch_size=32, n_negatives=8, verbose=False, objective=objective,
                               learn_temperature=True).fit(train)
