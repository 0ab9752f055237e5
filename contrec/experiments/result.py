"""What a comparison produced (`ComparisonResult`), and the summary and tests computed from its cells."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from contrec.data.interactions import Interactions
from contrec.evaluation import item_popularity
from contrec.evaluation.stats import compare_to_best, mean_ci
from contrec.experiments.config import ExperimentConfig

__all__ = ["ComparisonResult", "summarise", "significance", "test_popularity", "label", "summary_cell"]


@dataclass
class ComparisonResult:
    """Everything a comparison produced; `contrec.experiments.report.write_report` renders it.

    Attributes:
        config: the experiment that ran.
        results: tidy per-seed results: contestant, model, seed, metric, k, value (k is NA for
            ``false_negative_rate`` and ``fit_seconds``).
        summary: per contestant and metric: mean, ci95 (half-width of the Student-t
            interval over seeds), std, n_seeds.
        tests: paired per-user tests of every contestant against the best on the primary
            metric (see `contrec.evaluation.stats.compare_to_best`).
        per_user: ``{(contestant, seed): DataFrame}`` indexed by raw user id, one column per
            metric@k.
        tuning: one row per trial (contestant, seed, trial, params, validation score, fit seconds).
        chosen: the settings each contestant was tested with, per seed (``chosen[name][seed]``):
            each seed is tuned on a validation carve of its own training split.
        curves: per contrec contestant, the per-epoch history of its chosen tuning trial (first seed)
            (validation score, elapsed seconds, false-negative rate …).
        audit: the leak audit lines.
        failed: contestants that could not finish, with the reason (a crash in a fit, not enough
            memory …); ``config`` holds the others, the manifest the whole experiment.
        manifest: versions, seeds, data digests, config and its hash, machine, wall times.
    """

    config: ExperimentConfig
    results: pd.DataFrame
    summary: pd.DataFrame
    tests: pd.DataFrame
    per_user: dict[tuple[str, int], pd.DataFrame]
    tuning: pd.DataFrame
    chosen: dict[str, dict[int, dict[str, Any]]]
    curves: dict[str, list[dict[str, Any]]]
    audit: pd.DataFrame
    manifest: dict[str, Any]
    best: str
    reference_popularity: float = float("nan")
    histories: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def table(self, metrics: Sequence[str] | None = None) -> pd.DataFrame:
        """Wide table: one row per contestant, "mean ± ci" strings per metric@k."""
        s = self.summary.copy()
        s["column"] = [f"{m}@{k}" if pd.notna(k) else m for m, k in zip(s["metric"], s["k"])]
        if metrics is not None:
            s = s[s["column"].isin(metrics)]
        order = [c.name for c in self.config.contestants]
        wide = s.pivot(index="contestant", columns="column", values="mean").reindex(order)
        return wide[metrics] if metrics is not None else wide

def summarise(results: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (name, metric, k), group in results.groupby(["contestant", "metric", "k"], sort=False, dropna=False):
        mean, half = mean_ci(group["value"].to_numpy())
        values = group["value"].to_numpy(np.float64)
        rows.append({"contestant": name, "model": group["model"].iloc[0], "metric": metric, "k": k, "mean": mean,
                     "ci95": half, "std": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                     "n_seeds": len(values)})
    frame = pd.DataFrame(rows)
    frame["k"] = frame["k"].astype("Int64")
    return frame

def significance(config: ExperimentConfig, summary: pd.DataFrame,
                  per_user: dict[tuple[str, int], pd.DataFrame]) -> tuple[str, pd.DataFrame]:
    metric, k = config.primary_metric
    primary = summary[(summary["metric"] == metric) & (summary["k"] == k)].set_index("contestant")["mean"]
    order = [c.name for c in config.contestants]
    best = max(order, key=lambda n: (primary[n], -order.index(n)))
    column = f"{metric}@{k}"
    # each user's value averaged over seeds: users are the pairing unit across contestants
    averaged = {}
    for name in order:
        frames = [per_user[(name, s)][column] for s in config.seeds]
        averaged[name] = pd.concat(frames, axis=1).mean(axis=1)
    users = sorted(set.intersection(*(set(s.index) for s in averaged.values())))
    arrays = {name: averaged[name].loc[users].to_numpy(np.float64) for name in order}
    tests = compare_to_best(arrays, best)
    tests.insert(0, "mean", [float(primary[n]) for n in tests.index])
    return best, tests

def test_popularity(train: Interactions, test: Interactions) -> float:
    """Mean training popularity of the items users actually held out: the popularity a perfect model would show."""
    return float(item_popularity(train)[test.matrix.indices].mean()) if len(test) else float("nan")


_LABELS = {"ndcg": "NDCG", "recall": "Recall", "map": "MAP", "mrr": "MRR", "hit_rate": "HitRate",
           "precision": "Precision", "coverage": "coverage", "mean_popularity": "mean pop.",
           "false_negative_rate": "false-neg. rate", "fit_seconds": "fit s"}


def label(metric: str, k: Any) -> str:
    return f"{_LABELS.get(metric, metric)}@{k}" if pd.notna(k) else _LABELS.get(metric, metric)


def summary_cell(summary: pd.DataFrame, name: str, metric: str, k: Any) -> tuple[float, float]:
    mask = (summary["contestant"] == name) & (summary["metric"] == metric)
    mask &= summary["k"].isna() if k is None else (summary["k"] == k)
    row = summary[mask]
    if row.empty:
        return float("nan"), float("nan")
    return float(row["mean"].iloc[0]), float(row["ci95"].iloc[0])
