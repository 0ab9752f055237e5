"""Statistics for comparisons: confidence intervals over seeds, paired per-user tests, Holm.

The comparison reports, for every contestant, the mean over seeds with a Student-t 95 %
interval, and tests every contestant against the best one on per-user values (each
user's metric averaged over seeds), with Wilcoxon's signed-rank test and the paired
t-test; p-values are Holm-corrected for the number of contestants compared to the best.
Effect sizes: Cohen's d_z (mean difference over its standard deviation) and the
matched-pairs rank-biserial correlation (Kerby 2014).

Example:
    >>> mean_ci([0.30, 0.32, 0.34])
    (0.32, 0.04968...)
    >>> holm([0.01, 0.04, 0.03])
    array([0.03, 0.06, 0.06])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["mean_ci", "holm", "PairedTest", "paired_tests", "compare_to_best"]


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t confidence interval (NaN half-width for n < 2)."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return float("nan"), float("nan")
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, df=len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return mean, half


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1); NaNs pass through."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    if m == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out


@dataclass(frozen=True)
class PairedTest:
    """Result of a paired comparison of ``a`` against ``b`` (differences are a − b)."""

    n: int
    mean_diff: float
    t_statistic: float
    t_pvalue: float
    wilcoxon_statistic: float
    wilcoxon_pvalue: float
    cohens_dz: float
    rank_biserial: float


def paired_tests(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> PairedTest:
    """Paired t-test and Wilcoxon signed-rank test (two-sided) of per-user values.

    Pairs where either value is NaN are dropped. Zero differences are dropped by the
    Wilcoxon test (Wilcoxon's original treatment); when every difference is zero both
    p-values are 1.
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in shape: {a.shape} vs {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    d = a[keep] - b[keep]
    n = len(d)
    nonzero = d[d != 0]
    if n < 2 or len(nonzero) == 0:
        mean = float(d.mean()) if n else float("nan")
        return PairedTest(n, mean, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0)
    sd = d.std(ddof=1)
    t = stats.ttest_rel(a[keep], b[keep])
    w = stats.wilcoxon(nonzero, zero_method="wilcox", alternative="two-sided")
    ranks = stats.rankdata(np.abs(nonzero))
    plus, minus = ranks[nonzero > 0].sum(), ranks[nonzero < 0].sum()
    return PairedTest(
        n=n, mean_diff=float(d.mean()),
        t_statistic=float(t.statistic) if sd > 0 else float("inf") * np.sign(d.mean()),
        t_pvalue=float(t.pvalue) if sd > 0 else 0.0,
        wilcoxon_statistic=float(w.statistic), wilcoxon_pvalue=float(w.pvalue),
        cohens_dz=float(d.mean() / sd) if sd > 0 else float("inf") * np.sign(d.mean()),
        rank_biserial=float((plus - minus) / (plus + minus)),
    )


def compare_to_best(per_user: Mapping[str, np.ndarray], best: str, alpha: float = 0.05) -> pd.DataFrame:
    """Test every contestant against ``best`` on aligned per-user arrays; Holm over the comparisons.

    Returns one row per contestant (``best`` itself has NaN tests) with the columns of
    `PairedTest`, ``t_pvalue_holm``, ``wilcoxon_pvalue_holm`` and ``significant`` (both
    Holm-adjusted p-values below ``alpha``).
    """
    if best not in per_user:
        raise KeyError(f"{best!r} is not among the contestants")
    rows = []
    for name, values in per_user.items():
        if name == best:
            rows.append({"contestant": name, "n": int(np.sum(~np.isnan(values)))})
            continue
        rows.append({"contestant": name, **asdict(paired_tests(values, per_user[best]))})
    frame = pd.DataFrame(rows).set_index("contestant")
    for column in ("t_pvalue", "wilcoxon_pvalue"):
        if column not in frame:
            frame[column] = np.nan
        frame[f"{column}_holm"] = holm(frame[column].to_numpy())
    frame["significant"] = (frame["t_pvalue_holm"] < alpha) & (frame["wilcoxon_pvalue_holm"] < alpha)
    return frame
