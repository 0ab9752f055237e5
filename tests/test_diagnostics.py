"""Embedding diagnostics against hand-computed values."""

import numpy as np
import pytest
import scipy.sparse as sp

import contrec
from contrec.nn.diagnostics import (
    alignment,
    average_ranks,
    effective_rank,
    embedding_diagnostics,
    norm_popularity_correlation,
    uniformity,
)


def test_alignment_by_hand():
    users = np.array([[2.0, 0.0], [0.0, 3.0]])
    items = np.array([[0.0, 1.0], [5.0, 0.0]])
    positives = sp.csr_matrix(np.array([[1, 1], [1, 0]]))
    # (u0, i0): ‖e1 − e2‖² = 2; (u0, i1): 0; (u1, i0): 0 → mean 2/3
    assert alignment(users, items, positives) == pytest.approx(2 / 3)


def test_uniformity_by_hand():
    assert uniformity(np.array([[1.0, 0.0], [2.0, 0.0]])) == pytest.approx(0.0)  # same direction: distance 0
    assert uniformity(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-8.0)  # −2 · ‖e1 + e1‖² = −8
    three = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])  # pair distances² 4, 2, 2
    assert uniformity(three) == pytest.approx(np.log((np.exp(-8) + 2 * np.exp(-4)) / 3))


def test_effective_rank_by_hand():
    assert effective_rank(np.eye(3)) == pytest.approx(3.0)
    assert effective_rank(np.outer(np.arange(1, 5), [1.0, 2.0])) == pytest.approx(1.0)
    s = np.array([3.0, 1.0])
    p = s / s.sum()
    assert effective_rank(np.diag(s)) == pytest.approx(np.exp(-(p * np.log(p)).sum()))


def test_norm_popularity_correlation():
    assert norm_popularity_correlation(np.array([1.0, 2.0, 3.0]), np.array([5, 10, 40])) == pytest.approx(1.0)
    assert norm_popularity_correlation(np.array([3.0, 2.0, 1.0]), np.array([5, 10, 40])) == pytest.approx(-1.0)
    assert np.isnan(norm_popularity_correlation(np.ones(3), np.array([5, 10, 40])))
    assert np.isnan(norm_popularity_correlation(np.array([1.0, np.nan, 3.0]), np.array([5, 10, 40])))
    # hand-computed with ties: norms rank (1, 2.5, 2.5, 4), counts rank (2, 1, 4, 3):
    # centred (−1.5, 0, 0, 1.5) · (−0.5, −1.5, 1.5, 0.5) = 1.5; norms 4.5, 5 → 1.5 / √22.5
    assert norm_popularity_correlation(np.array([0.1, 0.5, 0.5, 0.9]), np.array([7, 3, 20, 9])) == \
        pytest.approx(1.5 / np.sqrt(22.5))


def test_average_ranks_match_scipy_on_ties():
    from scipy.stats import rankdata, spearmanr

    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 500):
        values = rng.integers(0, 6, n).astype(np.float64)  # many ties
        np.testing.assert_array_equal(average_ranks(values), rankdata(values, method="average"))
    norms, counts = rng.random(300).round(2), rng.integers(1, 40, 300)
    assert norm_popularity_correlation(norms, counts) == pytest.approx(spearmanr(norms, counts).statistic, abs=1e-12)


def test_fitted_model_reports_diagnostics_and_keeps_them_through_save(board, tmp_path):
    model = contrec.ContrastiveRecommender(dim=8, epochs=5, batch_size=64, n_negatives=16, lr=0.05, verbose=False,
                                           seed=0).fit(board)
    d = model.diagnostics_
    assert set(d) == {"alignment", "item_uniformity", "user_uniformity", "effective_rank", "norm_popularity_spearman"}
    assert 0 <= d["alignment"] <= 4 and -4 <= d["item_uniformity"] <= 0 and 1 <= d["effective_rank"] <= 8
    assert model.history_[-1]["diagnostics"] == d
    again = contrec.ContrastiveRecommender.load(model.save(tmp_path / "m.contrec"))
    assert embedding_diagnostics(again) == pytest.approx(embedding_diagnostics(model), nan_ok=True)
    als = contrec.ImplicitALS(factors=4, iterations=3, threads=1).fit(board)
    assert np.isfinite(embedding_diagnostics(als)["alignment"])  # baselines work too


def test_cli_evaluate_prints_diagnostics(board, tmp_path, capsys):
    from contrec.cli import main

    train, held_out = contrec.split_random(board, test_size=0.2, seed=0)
    model = contrec.ContrastiveRecommender(dim=8, epochs=3, batch_size=64, n_negatives=16, verbose=False).fit(train)
    path = model.save(tmp_path / "m.contrec")
    test = tmp_path / "test.csv"
    held_out.to_frame().head(20).to_csv(test, index=False)  # held-out pairs: train pairs would be refused
    assert main(["evaluate", str(path), str(test), "--diagnostics", "-q"]) == 0
    out = capsys.readouterr().out
    assert "alignment" in out and "effective_rank" in out and "norm_popularity_spearman" in out


def test_diagnostics_per_epoch_when_asked(board):
    model = contrec.ContrastiveRecommender(dim=8, epochs=3, batch_size=64, n_negatives=16, verbose=False, seed=0,
                                           epoch_diagnostics=True, user_tower="id").fit(board)
    per_epoch = [r["diagnostics"] for r in model.history_]
    assert len(per_epoch) == 3 and all(set(d) >= {"alignment", "effective_rank"} for d in per_epoch)
    # training pulls positives together: alignment falls from the first epoch to the last
    assert per_epoch[-1]["alignment"] < per_epoch[0]["alignment"]
    assert per_epoch[-1] == pytest.approx(model.diagnostics_, nan_ok=True)


def test_effective_rank_paths_agree_and_wide_item_item_vectors_are_skipped(monkeypatch):
    """Issue 15.8: the Gram path equals the SVD; vectors too large to decompose cheaply give NaN, not 10 GB."""
    import contrec.nn.diagnostics as diag

    rng = np.random.default_rng(0)
    tall = rng.normal(size=(3000, 12)) @ np.diag(np.linspace(1, 5, 12))
    wide = tall.T.copy()
    full = diag.effective_rank(tall)
    monkeypatch.setattr(diag, "_SVD_MAX_FLOATS", 100)  # force the Gram path
    assert diag.effective_rank(tall) == pytest.approx(full, rel=1e-9)
    assert diag.effective_rank(wide) == pytest.approx(full, rel=1e-9)
    monkeypatch.setattr(diag, "_GRAM_MAX_SIDE", 10)
    assert np.isnan(diag.effective_rank(tall))


def test_alignment_in_bounded_blocks_equals_the_direct_formula(monkeypatch):
    import scipy.sparse as sp

    import contrec.nn.diagnostics as diag

    rng = np.random.default_rng(1)
    users, items = rng.normal(size=(30, 500)), rng.normal(size=(500, 500))
    positives = sp.random(30, 500, density=0.1, format="csr", random_state=2)
    u = users / np.linalg.norm(users, axis=1, keepdims=True)
    v = items / np.linalg.norm(items, axis=1, keepdims=True)
    rows, cols = positives.nonzero()
    expected = float(((u[rows] - v[cols]) ** 2).sum(1).mean())
    monkeypatch.setattr(diag, "_CHUNK_FLOATS", 5_000)  # 10 positives per block
    assert diag.alignment(users, items, positives) == pytest.approx(expected, rel=1e-12)
