"""A step's candidate list: repeated items merged into one column give the loss, gradients and counts of the
full list; lists whose columns differ by more than the item are never merged."""

import math

import numpy as np
import pytest
import torch

import contrec
import contrec.training.candidates as candidates
from contrec.data.positives import PositiveLookup
from contrec.nn.losses import info_nce
from contrec.nn.similarity import get_similarity
from contrec.samplers import get_sampler
from contrec.training.candidates import StepStats, build_candidates, mergeable
from contrec.training.sharing import Draws
from tests.contracts import skewed_interactions


def _batch(data: contrec.Interactions, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    pick = np.random.default_rng(seed).choice(len(data), size, replace=False)
    return (torch.from_numpy(data.row_codes()[pick]), torch.from_numpy(data.matrix.indices[pick].astype(np.int64)))


def _step(data, sampler, config, bu, bi, merge: bool, monkeypatch):
    """The candidates and counts of one step, with repeats merged or (patched) not."""
    log_p = torch.log(torch.from_numpy(data.item_counts() / data.item_counts().sum())).float()
    with monkeypatch.context() as patch:
        if not merge:
            patch.setattr(candidates, "mergeable", lambda *args, **kwargs: False)
            patch.setattr(candidates, "_rule_mergeable", lambda *args, **kwargs: False)
        stats = StepStats()
        cands = build_candidates(bu, bi, sampler, PositiveLookup(data.matrix), log_p, config,
                                 torch.Generator().manual_seed(5), stats)
    return cands, stats


def _loss_and_grads(cands, bu, similarity, users, items, precision="float32"):
    u = users[bu].clone().requires_grad_()
    v = items.clone().requires_grad_()
    as_v = (lambda t: None if t is None else t.to(users.dtype))
    loss = info_nce(u, v[cands.encode], cands.labels, similarity=similarity, temperature=0.2,
                    log_q=as_v(cands.log_q), mask=cands.mask, positive_offset=as_v(cands.positive_offset),
                    precision=precision)
    loss.backward()
    return loss.item(), u.grad, v.grad


@pytest.mark.parametrize("sampler,params,extra", [
    ("uniform", {}, {}),
    ("popularity", {"alpha": 0.75}, {}),
    ("hard", {"top_m": 10, "refresh_every": 1000}, {}),
    ("mixed", {}, {}),
    ("uniform", {}, {"n_negatives": 0}),  # in-batch only: the batch's popular positives repeat
    ("uniform", {}, {"logq": False}),  # uncorrected: a merged column still stands for its copies
    ("domain-rule", {"rule": "disjoint(genres)"}, {}),  # shared rule draws: two values per item
    ("domain-rule", {"rule": "disjoint(genres)"}, {"logq": False}),
    ("domain-rule", {"rule": "differ(year)", "fallback": "skip"}, {}),
    ("domain-rule", {"rule": "disjoint(genres)", "fallback": "skip"}, {"n_negatives": 7}),
])
@pytest.mark.parametrize("kernel", ["cosine", "dot", "gaussian", "kernel-mixture"])
def test_merged_repeats_give_the_full_lists_loss_gradients_and_counts(monkeypatch, sampler, params, extra, kernel):
    board = skewed_interactions()  # 50 users, 20 items of power-law popularity, genres and years
    s = get_sampler(sampler, **params).fit(board)
    config = contrec.ContrastiveRecommender(**{"n_negatives": 64, **extra})._configs()[1]
    bu, bi = _batch(board, 48, seed=1)
    merged, merged_stats = _step(board, s, config, bu, bi, True, monkeypatch)
    full, full_stats = _step(board, s, config, bu, bi, False, monkeypatch)
    assert merged.positive_offset is not None and full.positive_offset is None
    assert merged.mask.shape[1] < full.mask.shape[1]  # 20 items: the 48 + 64 columns repeat
    assert torch.equal(merged.items[merged.labels], bi)  # each row's positive is its label column
    g = torch.Generator().manual_seed(0)
    users = torch.randn(board.n_users, 8, generator=g, dtype=torch.float64)
    items = torch.randn(board.n_items, 8, generator=g, dtype=torch.float64)
    similarity = get_similarity(kernel)
    a, b = _loss_and_grads(merged, bu, similarity, users, items), _loss_and_grads(full, bu, similarity, users, items)
    assert a[0] == pytest.approx(b[0], rel=1e-6)  # log q is float32 in both lists
    for x, y in zip(a[1:], b[1:]):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-8)
    for field in ("sampled", "false_negatives", "candidates", "masked"):
        assert getattr(merged_stats, field) == getattr(full_stats, field), field
    assert merged_stats.scored == len(bu) * merged.mask.shape[1] < full_stats.scored


def test_merged_bfloat16_matches_the_full_list_within_rounding(board, monkeypatch):
    s = get_sampler("uniform").fit(board)
    config = contrec.ContrastiveRecommender(n_negatives=64)._configs()[1]
    bu, bi = _batch(board, 48, seed=2)
    g = torch.Generator().manual_seed(0)
    users, items = torch.randn(board.n_users, 8, generator=g), torch.randn(board.n_items, 8, generator=g)
    runs = [_loss_and_grads(_step(board, s, config, bu, bi, merge, monkeypatch)[0], bu, get_similarity("cosine"),
                            users, items, precision="bfloat16") for merge in (True, False)]
    assert runs[0][0] == pytest.approx(runs[1][0], rel=1e-2)


def test_a_merged_column_by_hand():
    # one row, its positive item 0 listed twice (in-batch and drawn), item 1 once; dot scores 1 and 0; τ = 1;
    # no correction. Full list: positive (e¹), its drawn copy masked (a known positive), item 1 (e⁰).
    # Merged: column 0 stands for 2 copies (log q = −log 2), column 1 for one; the positive gets log 2 back.
    u = torch.tensor([[1.0, 0.0]])
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    mask = torch.tensor([[True, False]])  # the row's own positive is a known positive
    loss = info_nce(u, v, torch.tensor([0]), similarity=get_similarity("dot", max_norm=None), temperature=1.0,
                    log_q=torch.tensor([-math.log(2.0), 0.0]), mask=mask,
                    positive_offset=torch.tensor([math.log(2.0)]))
    assert float(loss) == pytest.approx(-1 + math.log(math.e + 1), abs=1e-6)
    with pytest.raises(ValueError, match="mask"):
        info_nce(u, v, torch.tensor([0]), similarity=get_similarity("cosine"), temperature=1.0,
                 positive_offset=torch.tensor([0.0]))


@pytest.mark.parametrize("reason,kwargs,draws", [
    ("per-row draws", {}, Draws(torch.arange(4), torch.zeros(4, 3, dtype=torch.long), per_row=True)),
    ("invalid draws", {}, Draws(torch.arange(4), torch.arange(3), valid=torch.ones(4, 3, dtype=torch.bool))),
    ("no in-batch", {"in_batch": False}, Draws(torch.arange(4), torch.arange(3))),
    ("debiased", {"debias_prior": 0.05}, Draws(torch.arange(4), torch.arange(3))),
    ("hardness", {"hardness": 1.0}, Draws(torch.arange(4), torch.arange(3))),
    ("pairwise", {"objective": "bpr"}, Draws(torch.arange(4), torch.arange(3))),
])
def test_lists_that_count_candidates_one_by_one_are_not_merged(reason, kwargs, draws):
    config = contrec.ContrastiveRecommender(**kwargs)._configs()[1]
    uniform = get_sampler("uniform")
    assert mergeable(Draws(torch.arange(4), torch.arange(3)), uniform, config.__class__(), None)
    assert not mergeable(draws, uniform, config, None), reason
    assert not mergeable(Draws(torch.arange(4), torch.arange(3)), uniform, config.__class__(),
                         torch.zeros(4, 7)), "a row-dependent correction"


def test_rule_lists_that_are_not_merged(monkeypatch):
    """A rule that masks in-batch candidates too, per-row rule draws and a mixture with a rule keep the full
    list: their columns differ by row in more than the rule's yes or no."""
    data = skewed_interactions()
    config = contrec.ContrastiveRecommender(n_negatives=64)._configs()[1]
    bu, bi = _batch(data, 48, seed=1)
    for sampler in (get_sampler("domain-rule", rule="disjoint(genres)", mask_in_batch=True).fit(data),
                    get_sampler("domain-rule", rule="disjoint(genres)", draw="per-row").fit(data),
                    get_sampler("mixed", components={"uniform": 0.5, "domain-rule": 0.5}).fit(data)):
        cands, stats = _step(data, sampler, config, bu, bi, True, monkeypatch)
        assert cands.positive_offset is None and cands.mask.shape[1] == 48 + 64, sampler
        assert stats.scored == 48 * (48 + 64) or cands.index is not None


def test_a_rule_merge_masks_columns_without_a_copy_for_the_row(monkeypatch):
    data = skewed_interactions()
    s = get_sampler("domain-rule", rule="disjoint(genres)").fit(data)
    config = contrec.ContrastiveRecommender(n_negatives=64)._configs()[1]
    bu, bi = _batch(data, 48, seed=3)
    cands, _ = _step(data, s, config, bu, bi, True, monkeypatch)
    forbidden = s.forbidden(bu, bi, cands.items)
    only_drawn = ~torch.isin(cands.items, bi)  # columns with no in-batch copy
    gone = forbidden & only_drawn[None, :]
    assert bool(gone.any()) and bool(cands.mask[gone].all())
    assert torch.equal(cands.log_q[gone], torch.zeros(int(gone.sum())))


def test_a_fit_reports_the_share_of_columns_it_scored(board):
    model = contrec.ContrastiveRecommender(dim=8, epochs=1, batch_size=64, n_negatives=64, validation_size=0,
                                           verbose=False).fit(board)
    assert 0 < model.history_[0]["scored_share"] < 1  # 30 items: most of the 128 columns repeat
    per_row = contrec.ContrastiveRecommender(dim=8, epochs=1, batch_size=64, n_negatives=16, validation_size=0,
                                             verbose=False, objective="bpr").fit(board)
    assert per_row.history_[0]["scored_share"] == pytest.approx(1.0)
