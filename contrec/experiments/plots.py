"""The comparison's plots: metric with confidence intervals, validation curves, popularity bias, false negatives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from contrec.experiments.result import ComparisonResult, label, summary_cell
from contrec.runtime.artifact import atomic_write

__all__ = ["plot_metric_ci", "plot_curves", "plot_popularity", "plot_false_negatives"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colors(result: ComparisonResult) -> dict[str, str]:
    contrec_palette = ["#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
    out, n = {}, 0
    for c in result.config.contestants:
        if c.is_contrec:
            out[c.name] = contrec_palette[n % len(contrec_palette)]
            n += 1
        else:
            out[c.name] = "#ff7f0e" if c.model != "popularity" else "#d62728"
    return out


def plot_metric_ci(result: ComparisonResult, path: Path) -> None:
    """Primary metric (and recall at the same k) per contestant, with 95 % CI bars."""
    plt = _pyplot()
    metric, k = result.config.primary_metric
    panels = [(metric, k)] + ([("recall", k)] if metric != "recall" else [("ndcg", k)])
    names = [c.name for c in result.config.contestants]
    colors = _colors(result)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 0.45 * len(names) + 1.6), sharey=True)
    for ax, (m, kk) in zip(np.atleast_1d(axes), panels):
        means = np.array([summary_cell(result.summary, n, m, kk)[0] for n in names])
        halves = np.nan_to_num(np.array([summary_cell(result.summary, n, m, kk)[1] for n in names]))
        y = np.arange(len(names))[::-1]
        one_seed = len(result.config.seeds) < 2  # no interval to draw: bars without whiskers
        ax.barh(y, means, xerr=None if one_seed else halves, color=[colors[n] for n in names], capsize=3,
                alpha=0.85)
        top = float(np.nanmax(means + halves)) if np.isfinite(means).any() else 1.0
        ax.set_xlim(0.0, top * 1.05 if top > 0 else 1.0)
        ax.set_yticks(y, names)
        ax.set_xlabel(f"{label(m, kk)} (one seed, no interval)" if one_seed
                      else f"{label(m, kk)} (mean ± 95 % CI, {len(result.config.seeds)} seeds)")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{result.config.data.label}: full-ranking metrics (contrec samplers vs baselines)", fontsize=10)
    _save(fig, path)


def plot_curves(result: ComparisonResult, path: Path) -> bool:
    """Validation score against epoch and against wall-clock seconds, one line per sampler."""
    curves = {n: h for n, h in result.curves.items() if any("validation" in r for r in h)}
    if not curves:
        return False
    plt = _pyplot()
    colors = _colors(result)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for name, history in curves.items():
        rows = [r for r in history if "validation" in r]
        epochs = [r["epoch"] for r in rows]
        seconds = [r["elapsed"] for r in rows]
        scores = [r["validation"] for r in rows]
        axes[0].plot(epochs, scores, marker="o", ms=3, color=colors[name], label=name)
        axes[1].plot(seconds, scores, marker="o", ms=3, color=colors[name], label=name)
    metric, k = result.config.primary_metric
    axes[0].set_xlabel("epoch")
    axes[1].set_xlabel("training seconds (wall clock)")
    axes[0].set_ylabel(f"validation {label(metric, k)}")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Validation curves of each sampler's chosen tuning trial (seed {result.config.seeds[0]}'s carve)",
                 fontsize=10)
    _save(fig, path)
    return True


def plot_popularity(result: ComparisonResult, path: Path) -> None:
    """Mean popularity of recommended items and catalogue coverage per contestant."""
    plt = _pyplot()
    k = max(result.config.protocol.k)
    names = [c.name for c in result.config.contestants]
    colors = _colors(result)
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(names) + 1.6), sharey=True)
    y = np.arange(len(names))[::-1]
    for ax, metric in zip(axes, ("mean_popularity", "coverage")):
        means = [summary_cell(result.summary, n, metric, k)[0] for n in names]
        halves = np.nan_to_num([summary_cell(result.summary, n, metric, k)[1] for n in names])
        one_seed = len(result.config.seeds) < 2  # no interval to draw: bars without whiskers
        ax.barh(y, means, xerr=None if one_seed else halves, color=[colors[n] for n in names], capsize=3,
                alpha=0.85)
        ax.set_yticks(y, names)
        ax.grid(axis="x", alpha=0.3)
    axes[0].axvline(result.reference_popularity, color="black", ls="--", lw=1,
                    label="held-out positives")
    axes[0].legend(fontsize=8, loc="lower right")
    axes[0].set_xlabel(f"mean popularity of the top {k} (share of users who had the item)")
    axes[1].set_xlabel(f"catalogue coverage of the top {k}")
    fig.suptitle("Popularity bias: higher mean popularity = more blockbuster-heavy lists", fontsize=10)
    _save(fig, path)


def plot_false_negatives(result: ComparisonResult, path: Path) -> bool:
    """Share of sampled negatives that were known positives of the row's user, per sampler."""
    names = [c.name for c in result.config.contestants if c.is_contrec]
    if not names:
        return False
    plt = _pyplot()
    colors = _colors(result)
    means = [summary_cell(result.summary, n, "false_negative_rate", None)[0] for n in names]
    halves = np.nan_to_num([summary_cell(result.summary, n, "false_negative_rate", None)[1] for n in names])
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.6))
    y = np.arange(len(names))[::-1]
    ax.barh(y, np.array(means) * 100, xerr=None if len(result.config.seeds) < 2 else halves * 100, color=[colors[n] for n in names], capsize=3, alpha=0.85)
    ax.set_yticks(y, names)
    ax.set_xlabel("false-negative rate of sampled negatives, % (masked in the loss)")
    ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Sampled negatives that were known positives of the user", fontsize=10)
    _save(fig, path)
    return True


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, dpi=110, format="png"))
    finally:
        _pyplot().close(fig)
