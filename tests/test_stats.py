"""Statistics against hand-computed values and scipy references."""

import numpy as np
import pytest
from scipy import stats

from contrec.evaluation.stats import compare_to_best, holm, mean_ci, paired_tests


def test_mean_ci_by_hand():
    mean, half = mean_ci([0.30, 0.32, 0.34])
    # sd = 0.02, t(0.975, df=2) = 4.302653
    assert mean == pytest.approx(0.32)
    assert half == pytest.approx(4.302653 * 0.02 / np.sqrt(3), rel=1e-6)


def test_mean_ci_matches_scipy_interval_and_edge_cases():
    x = np.array([1.0, 2.5, 2.0, 4.0, 3.1])
    lo, hi = stats.t.interval(0.95, df=4, loc=x.mean(), scale=stats.sem(x))
    mean, half = mean_ci(x)
    assert (mean - half, mean + half) == pytest.approx((lo, hi))
    assert np.isnan(mean_ci([0.3])[1]) and mean_ci([0.3])[0] == 0.3
    assert np.isnan(mean_ci([])[0])
    assert mean_ci([1.0, np.nan, 3.0])[0] == 2.0


def test_holm_on_known_lists():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # the textbook list: step-down multipliers 5, 4, 3, 2, 1, then running maximum
    assert holm([0.01, 0.02, 0.03, 0.04, 0.05]) == pytest.approx([0.05, 0.08, 0.09, 0.09, 0.09])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # 0.5·2 = 1, then monotone
    out = holm([np.nan, 0.02, 0.01])
    assert np.isnan(out[0]) and out[1:] == pytest.approx([0.02, 0.02])


def test_paired_tests_by_hand():
    a = np.array([2.0, 4.0, 0.0, 9.0])
    b = np.array([1.0, 2.0, 3.0, 5.0])  # d = 1, 2, -3, 4
    r = paired_tests(a, b)
    assert r.n == 4 and r.mean_diff == pytest.approx(1.0)
    assert r.wilcoxon_statistic == 3.0  # W- = rank of |-3| = 3
    assert r.wilcoxon_pvalue == pytest.approx(0.625)  # exact: 2 · 5/16
    assert r.rank_biserial == pytest.approx((7 - 3) / 10)
    sd = np.sqrt(26 / 3)
    assert r.cohens_dz == pytest.approx(1 / sd)
    assert r.t_statistic == pytest.approx(1 / (sd / 2))
    assert r.t_pvalue == pytest.approx(2 * stats.t.sf(1 / (sd / 2), df=3))


def test_paired_tests_match_scipy_on_random_data_and_handle_ties():
    rng = np.random.default_rng(0)
    a = rng.random(200)
    b = a - 0.05 + 0.1 * rng.random(200)
    b[:20] = a[:20]  # zero differences are dropped by the Wilcoxon test
    r = paired_tests(a, b)
    assert r.t_pvalue == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert r.wilcoxon_pvalue == pytest.approx(stats.wilcoxon(a[20:] - b[20:]).pvalue)
    same = paired_tests(a, a)
    assert same.t_pvalue == 1.0 and same.wilcoxon_pvalue == 1.0 and same.mean_diff == 0.0
    with_nan = paired_tests(np.r_[a, np.nan], np.r_[b, 0.3])
    assert with_nan.n == 200


def test_compare_to_best_marks_only_clear_differences():
    rng = np.random.default_rng(1)
    base = rng.random(300)
    per_user = {"best": base + 0.05, "close": base + 0.05 + rng.normal(0, 0.02, 300),
                "worse": base + rng.normal(0, 0.02, 300)}
    frame = compare_to_best(per_user, "best")
    assert np.isnan(frame.loc["best", "t_pvalue"]) and not frame.loc["best", "significant"]
    assert frame.loc["worse", "significant"]
    assert not frame.loc["close", "significant"]
    raw = frame.loc[["close", "worse"], "wilcoxon_pvalue"].to_numpy()
    assert frame.loc[["close", "worse"], "wilcoxon_pvalue_holm"].to_numpy() == pytest.approx(holm(raw))
    with pytest.raises(KeyError):
        compare_to_best(per_user, "missing")
