"""precision="bfloat16": the score matmuls in bfloat16, everything else as in float32."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import contrec
from contrec.cli import main
from contrec.nn.losses import info_nce, pairwise_loss
from contrec.nn.similarity import Cosine, Dot

from .conftest import SAMPLE_CSV

B, M, d = 16, 40, 12


def _close_not_equal(low: torch.Tensor, full: torch.Tensor, rtol: float) -> None:
    assert low.dtype == torch.float32  # the towers get float32 gradients
    scale = full.abs().max().item()
    error = (low - full).abs().max().item()
    assert error <= rtol * scale, (error, scale)
    assert error > 0  # bfloat16 really ran: the same numbers would mean the float32 path


def _losses_and_grads(make_loss, precision: str, *tensors: torch.Tensor):
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    loss = make_loss(*leaves, precision=precision)
    return loss.detach(), torch.autograd.grad(loss, leaves)


@pytest.mark.parametrize("case", ["fused", "fused-logq-mask", "per-row-index", "per-row-vectors", "learned-tau",
                                  "bpr", "dot-ball"])
def test_bfloat16_loss_and_gradients_stay_within_bfloat16_rounding_of_float32(case, torch_generator):
    g = torch_generator
    u, v = torch.randn(B, d, generator=g), torch.randn(M, d, generator=g)
    labels = torch.randint(0, M, (B,), generator=g)
    log_q, mask = torch.randn(M, generator=g), torch.rand(B, M, generator=g) < 0.1
    index = torch.randint(0, M, (B, 8), generator=g)
    rows = torch.randn(B, 8, d, generator=g)
    cosine = {"similarity": Cosine(), "temperature": 0.2}
    make = {
        "fused": (lambda u, v, precision: info_nce(u, v, labels, **cosine, precision=precision), (u, v)),
        "fused-logq-mask": (lambda u, v, precision: info_nce(u, v, labels, **cosine, log_q=log_q, mask=mask,
                                                             precision=precision), (u, v)),
        "per-row-index": (lambda u, v, precision: info_nce(u, v, labels % 8, **cosine, candidate_index=index,
                                                           precision=precision), (u, v)),
        "per-row-vectors": (lambda u, r, precision: info_nce(u, r, labels % 8, **cosine, precision=precision),
                            (u, rows)),
        "learned-tau": (lambda u, v, precision: info_nce(u, v, labels, similarity=Cosine(),
                                                         temperature=torch.tensor(0.2), precision=precision), (u, v)),
        "bpr": (lambda u, v, precision: pairwise_loss(u, v, labels, **cosine, precision=precision), (u, v)),
        "dot-ball": (lambda u, v, precision: info_nce(u, v, labels, similarity=Dot(), temperature=0.2,
                                                      log_q=log_q, precision=precision), (u, v)),
    }[case]
    full_loss, full_grads = _losses_and_grads(*make[:1], "float32", *make[1])
    low_loss, low_grads = _losses_and_grads(*make[:1], "bfloat16", *make[1])
    _close_not_equal(low_loss, full_loss, 1e-2)
    for low, full in zip(low_grads, full_grads):
        _close_not_equal(low, full, 3e-2)


def test_the_fused_bfloat16_path_equals_cross_entropy_over_bfloat16_logits(torch_generator):
    # the fused kernel and the generic (autograd) path must agree at bfloat16 too
    from contrec.nn.losses import info_nce_logits

    u = torch.randn(B, d, generator=torch_generator, requires_grad=True)
    v = torch.randn(M, d, generator=torch_generator, requires_grad=True)
    labels = torch.randint(0, M, (B,), generator=torch_generator)
    log_q = torch.randn(M, generator=torch_generator)
    fused = info_nce(u, v, labels, similarity=Cosine(), temperature=0.2, log_q=log_q, precision="bfloat16")
    plain = F.cross_entropy(info_nce_logits(u, v, labels, similarity=Cosine(), temperature=0.2, log_q=log_q,
                                            precision="bfloat16"), labels)
    assert abs(fused.item() - plain.item()) < 1e-5
    for a, b in zip(torch.autograd.grad(fused, (u, v)), torch.autograd.grad(plain, (u, v))):
        torch.testing.assert_close(a, b, atol=2e-3, rtol=2e-2)  # bfloat16 backward operands: rounding apart


KW = dict(dim=8, epochs=3, batch_size=64, n_negatives=16, validation_size=0, threads=1, verbose=False, seed=4)


def test_a_bfloat16_fit_is_reproducible_saves_float32_vectors_and_loads(board, tmp_path):
    first = contrec.ContrastiveRecommender(precision="bfloat16", **KW).fit(board)
    again = contrec.ContrastiveRecommender(precision="bfloat16", **KW).fit(board)
    full = contrec.ContrastiveRecommender(**KW).fit(board)
    np.testing.assert_array_equal(first.item_vectors_, again.item_vectors_)
    assert first.item_vectors_.dtype == np.float32
    assert not np.array_equal(first.item_vectors_, full.item_vectors_)  # it did train in bfloat16
    np.testing.assert_allclose(first.history_[-1]["loss"], full.history_[-1]["loss"], rtol=2e-2)
    loaded = contrec.ContrastiveRecommender.load(first.save(tmp_path / "bf16.contrec"))
    assert loaded.precision == "bfloat16"
    assert loaded.recommend(["u0", "u1"], k=5).equals(first.recommend(["u0", "u1"], k=5))


@pytest.mark.parametrize("similarity", ["laplacian", "gaussian", "kernel-mixture", "laplacian-normalized"])
def test_bfloat16_refuses_distance_kernels_in_one_line(similarity):
    with pytest.raises(contrec.ConfigError, match="needs an inner-product kernel") as err:
        contrec.ContrastiveRecommender(similarity=similarity, precision="bfloat16").check()
    assert "\n" not in str(err.value)


def test_an_unknown_precision_is_a_config_error():
    with pytest.raises(contrec.ConfigError, match="precision must be one of 'float32', 'bfloat16'"):
        contrec.ContrastiveRecommender(precision="float16").check()


def test_a_device_without_fast_bfloat16_is_told_so(board, monkeypatch):
    import contrec.training.loop as loop

    monkeypatch.setattr(loop, "native_bfloat16", lambda device: False)
    with pytest.warns(RuntimeWarning, match="no fast bfloat16 matmuls"):
        contrec.ContrastiveRecommender(precision="bfloat16", **KW).fit(board)


def test_cli_fit_precision(tmp_path):
    out = tmp_path / "m.contrec"
    read = ["--user", "user_id", "--item", "item_id", "--rating", "rating", "--min-rating", "4"]
    fit = ["--epochs", "2", "--dim", "8", "--n-negatives", "16", "--batch-size", "64", "-q", "--validation-size", "0"]
    assert main(["fit", str(SAMPLE_CSV), *read, *fit, "--precision", "bfloat16", "-o", str(out)]) == 0
    assert contrec.ContrastiveRecommender.load(out).precision == "bfloat16"


def test_a_float32_checkpoint_resumes_in_bfloat16(board, tmp_path):
    # like the device, the precision is how a run computes, not what it trains: a resume may change it
    kw = {**KW, "epochs": 2}
    ckpt = tmp_path / "run.ckpt"
    contrec.ContrastiveRecommender(**kw).fit(board, checkpoint=ckpt)
    longer = contrec.ContrastiveRecommender(**{**kw, "epochs": 4}, precision="bfloat16").fit(board, resume=ckpt)
    assert [r["epoch"] for r in longer.history_][-1] == 4
    with pytest.raises(contrec.ConfigError):  # what it trains still has to match
        contrec.ContrastiveRecommender(**{**kw, "dim": 16}, precision="bfloat16").fit(board, resume=ckpt)
