"""InfoNCE: a hand-computed case, full-softmax equivalence, masking and the logQ term."""

import math

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from contrec.nn.losses import bpr_loss, info_nce, info_nce_logits, weighted_info_nce
from contrec.nn.similarity import Cosine, Dot, Gaussian, KernelMixture, Laplacian
from contrec.data.positives import PositiveLookup


def test_two_by_three_by_hand():
    # users u0 = (1, 0), u1 = (0, 1); candidates v0 = (1, 0), v1 = (0, 0), v2 = (0, 2); τ = 0.5
    # dot scores: row 0 = (1, 0, 0) -> logits (2, 0, 0); row 1 = (0, 0, 2) -> logits (0, 0, 4)
    # log q = (0, log 2, 0) subtracted: row 0 -> (2, -0.693, 0); row 1 -> (0, -0.693, 4)
    # labels: row 0 -> column 0, row 1 -> column 2
    # loss0 = -2 + log(e^2 + 1/2 + 1) ; loss1 = -4 + log(1 + 1/2 + e^4); mean of both
    u = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    log_q = torch.tensor([0.0, math.log(2.0), 0.0])
    loss = info_nce(u, v, torch.tensor([0, 2]), similarity=Dot(max_norm=None), temperature=0.5, log_q=log_q)
    expected = ((-2 + math.log(math.e**2 + 0.5 + 1)) + (-4 + math.log(1 + 0.5 + math.e**4))) / 2
    assert abs(float(loss) - expected) < 1e-6


def test_every_item_with_uniform_q_equals_full_softmax(torch_generator):
    n_users, n_items, d, tau = 6, 40, 8, 0.2
    users = torch.randn(n_users, d, generator=torch_generator)
    items = torch.randn(n_items, d, generator=torch_generator)
    positives = torch.randint(0, n_items, (n_users,), generator=torch_generator)
    for sim in (Dot(max_norm=None), Cosine()):
        full = F.cross_entropy(sim.pairwise(users, items) / tau, positives)
        log_q = torch.full((n_items,), -math.log(n_items))  # uniform proposal over every item
        sampled = info_nce(users, items, positives, similarity=sim, temperature=tau, log_q=log_q)
        assert torch.allclose(full, sampled, atol=1e-6)


def test_masked_candidates_leave_the_softmax_but_the_label_stays():
    u = torch.tensor([[1.0, 0.0]])
    v = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    mask = torch.tensor([[True, True, False]])  # label column 0 is "masked" too: it must survive
    logits = info_nce_logits(u, v, torch.tensor([0]), similarity=Dot(max_norm=None), temperature=1.0, mask=mask)
    assert torch.isfinite(logits[0, 0]) and logits[0, 1] == float("-inf")
    loss = info_nce(u, v, torch.tensor([0]), similarity=Dot(max_norm=None), temperature=1.0, mask=mask)
    assert abs(float(loss) - (-1 + math.log(math.e + 1))) < 1e-6


def test_accidental_hits_are_every_known_positive_of_the_row_user():
    # user 0 likes items {1, 3}; user 1 likes {2}
    train = sp.csr_matrix(np.array([[0, 1, 0, 1], [0, 0, 1, 0]], dtype=np.float32))
    lookup = PositiveLookup(train)
    users = torch.tensor([0, 1])
    cand = torch.tensor([1, 2, 3, 3, 0])
    expected = torch.tensor([[True, False, True, True, False], [False, True, False, False, False]])
    assert torch.equal(lookup.shared(users, cand), expected)
    assert torch.equal(lookup.rowwise(users, cand.expand(2, 5)), expected)


def test_rowwise_candidates_match_shared():
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(3, 4, generator=g), torch.randn(5, 4, generator=g)
    labels = torch.tensor([0, 3, 4])
    shared = info_nce(u, v, labels, similarity=Cosine(), temperature=0.1)
    rowwise = info_nce(u, v.expand(3, 5, 4), labels, similarity=Cosine(), temperature=0.1)
    assert torch.allclose(shared, rowwise, atol=1e-6)


def test_bpr_by_hand():
    # -log σ(2 - 1) = log(1 + e^-1)
    assert abs(float(bpr_loss(torch.tensor([2.0]), torch.tensor([1.0]))) - math.log(1 + math.exp(-1))) < 1e-6


# ---------------------------------------------------------------- debiased and hardness-weighted
def _one_row():
    # one user (1, 0) and candidates with dot scores 1 (positive), 0 and 2; τ = 1 so logits = scores
    u = torch.tensor([[1.0, 0.0]])
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    return u, v, torch.tensor([0])


def test_defaults_are_plain_info_nce_exactly(torch_generator):
    u = torch.randn(5, 4, generator=torch_generator)
    v = torch.randn(9, 4, generator=torch_generator)
    labels = torch.tensor([0, 1, 2, 3, 4])
    log_q = torch.randn(9, generator=torch_generator)
    mask = torch.rand(5, 9, generator=torch_generator) < 0.2
    plain = F.cross_entropy(info_nce_logits(u, v, labels, similarity=Cosine(), temperature=0.3, log_q=log_q,
                                            mask=mask), labels)
    assert torch.equal(info_nce(u, v, labels, similarity=Cosine(), temperature=0.3, log_q=log_q, mask=mask,
                                debias_prior=0.0, hardness=0.0), plain)
    # the weighted formula itself, at τ⁺ = β = 0, is the same cross-entropy
    logits = info_nce_logits(u, v, labels, similarity=Cosine(), temperature=0.3, log_q=log_q, mask=mask)
    raw = info_nce_logits(u, v, labels, similarity=Cosine(), temperature=0.3)
    assert torch.allclose(weighted_info_nce(logits, raw, labels, temperature=0.3), plain, atol=1e-6)


def test_debiased_by_hand():
    # N = 2 negatives with e^0 + e^2; τ⁺ = 0.1:
    # Ng = max((1 + e² − 2·0.1·e) / 0.9, 2·e^{−1/τ}) ; loss = −1 + log(e + Ng)
    u, v, labels = _one_row()
    ng = max((1 + math.e**2 - 2 * 0.1 * math.e) / 0.9, 2 * math.exp(-1))
    loss = info_nce(u, v, labels, similarity=Dot(max_norm=None), temperature=1.0, debias_prior=0.1)
    assert abs(float(loss) - (-1 + math.log(math.e + ng))) < 1e-5


def test_debias_floor_binds_when_the_prior_is_large():
    # τ⁺ = 0.9: (1 + e² − 2·0.9·e)/0.1 is still positive here, but with a huge positive it would go
    # negative; check the floor 2·e^{−1/τ} with a positive logit of 5
    u = torch.tensor([[1.0, 0.0]])
    v = torch.tensor([[5.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    loss = info_nce(u, v, torch.tensor([0]), similarity=Dot(max_norm=None), temperature=1.0, debias_prior=0.9)
    assert abs(float(loss) - (-5 + math.log(math.e**5 + 2 * math.exp(-1)))) < 1e-5


def test_hardness_weighted_by_hand():
    # β = 1: w ∝ (e^0, e^2), neg = N · Σ w e^l / Σ w = 2 (1·1 + e²·e²) / (1 + e²); loss = −1 + log(e + neg)
    u, v, labels = _one_row()
    neg = 2 * (1 + math.e**4) / (1 + math.e**2)
    loss = info_nce(u, v, labels, similarity=Dot(max_norm=None), temperature=1.0, hardness=1.0)
    assert abs(float(loss) - (-1 + math.log(math.e + neg))) < 1e-5


def test_candidate_index_matches_materialised_rows(torch_generator):
    u = torch.randn(3, 4, generator=torch_generator)
    distinct = torch.randn(6, 4, generator=torch_generator)
    index = torch.tensor([[0, 1, 2, 5], [1, 1, 3, 4], [2, 0, 5, 3]])
    labels = torch.tensor([0, 2, 1])
    a = info_nce(u, distinct, labels, similarity=Cosine(), temperature=0.2, candidate_index=index)
    b = info_nce(u, distinct[index], labels, similarity=Cosine(), temperature=0.2)
    assert torch.allclose(a, b, atol=1e-6)


def test_fused_shared_path_equals_autograd_cross_entropy(torch_generator):
    # info_nce's fused path (inner-product kernels, shared candidates) must give the same loss
    # and gradients as cross-entropy over info_nce_logits, for every kind of correction and mask
    import pytest

    B, M, d = 7, 13, 5
    labels = torch.randint(0, M, (B,), generator=torch_generator)
    mask = torch.rand(B, M, generator=torch_generator) < 0.3
    mask[torch.arange(B), labels] = True  # the label column is always a known positive; it must stay
    for similarity in (Cosine(), Dot(max_norm=None)):
        for log_q in (None, torch.randn(M, generator=torch_generator), torch.randn(B, M, generator=torch_generator)):
            for m in (None, mask):
                u = torch.randn(B, d, generator=torch_generator, requires_grad=True)
                v = torch.randn(M, d, generator=torch_generator, requires_grad=True)
                fused = info_nce(u, v, labels, similarity=similarity, temperature=0.3, log_q=log_q, mask=m)
                g_fused = torch.autograd.grad(2.5 * fused, (u, v))
                plain = F.cross_entropy(info_nce_logits(u, v, labels, similarity=similarity, temperature=0.3,
                                                        log_q=log_q, mask=m), labels)
                g_plain = torch.autograd.grad(2.5 * plain, (u, v))
                assert abs(fused.item() - plain.item()) < 1e-5
                for a, b in zip(g_fused, g_plain):
                    assert torch.allclose(a, b, atol=1e-6)
    u = torch.randn(B, d, requires_grad=True)
    loss = info_nce(u, torch.randn(M, d), labels, similarity=Dot(max_norm=None), temperature=1.0)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="inplace"):  # never a silently wrong gradient
        loss.backward()


def test_fused_distance_path_equals_autograd_cross_entropy(torch_generator, monkeypatch):
    # the distance kernels' fused loss (squared distances from one matmul, the kernel's slope, two matmuls
    # back) against autograd through info_nce_logits, with every correction: log q, a mask that covers the
    # label column, a merged column's positive offset; on free, ball and unit vectors
    import pytest

    from contrec.nn import losses

    B, M, d = 7, 13, 5
    labels = torch.randint(0, M, (B,), generator=torch_generator)
    mask = torch.rand(B, M, generator=torch_generator) < 0.3
    mask[torch.arange(B), labels] = True
    offset = torch.rand(B, generator=torch_generator)
    kernels = (Gaussian(), Gaussian(max_norm=None), Gaussian(normalize=True), Laplacian(), Laplacian(normalize=True),
               KernelMixture(), KernelMixture(weight=0.3, max_norm=None), KernelMixture(normalize=True))
    calls = []
    apply = losses._SharedDistanceXent.apply
    monkeypatch.setattr(losses._SharedDistanceXent, "apply", lambda *args: calls.append(1) or apply(*args))
    for kernel in kernels:
        for log_q, m, off in ((None, None, None), (torch.randn(M, generator=torch_generator), mask, None),
                              (torch.randn(B, M, generator=torch_generator), mask, offset)):
            u = torch.randn(B, d, generator=torch_generator, requires_grad=True)
            v = torch.randn(M, d, generator=torch_generator, requires_grad=True)
            fused = info_nce(u, v, labels, similarity=kernel, temperature=0.7, log_q=log_q, mask=m,
                             positive_offset=off)
            g_fused = torch.autograd.grad(2.5 * fused, (u, v))
            logits = info_nce_logits(u, v, labels, similarity=kernel, temperature=0.7, log_q=log_q, mask=m,
                                     positive_offset=off)
            plain = F.cross_entropy(logits, labels)
            g_plain = torch.autograd.grad(2.5 * plain, (u, v))
            assert fused.item() == pytest.approx(plain.item(), rel=1e-5, abs=1e-5), kernel
            for a, b in zip(g_fused, g_plain):
                assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), kernel
    assert len(calls) == 3 * len(kernels)  # every one of them took the fused path


def test_a_distance_kernel_without_its_own_slope_gets_one_by_autograd(torch_generator):
    from contrec.nn.similarity import _DistanceKernel

    class Cubed(_DistanceKernel):  # a kernel a user might add: only its score of the squared distance
        base_name = "cubed"

        def _from_squared(self, sq):
            return -(sq + 1.0) ** 1.5

    sq = torch.rand(4, 6, generator=torch_generator) * 3
    score, slope = Cubed().score_and_slope_(sq.clone())
    assert torch.allclose(score, -(sq + 1.0) ** 1.5) and torch.allclose(slope, -1.5 * (sq + 1.0) ** 0.5)
    for kernel in (Gaussian(), Laplacian(), KernelMixture(weight=0.3)):  # the written-out slopes agree
        general = _DistanceKernel.score_and_slope_(kernel, sq.clone())
        own = kernel.score_and_slope_(sq.clone())
        assert torch.allclose(general[0], own[0]) and torch.allclose(general[1], torch.as_tensor(own[1]).expand_as(sq))
