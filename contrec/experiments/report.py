"""The comparison report: markdown, self-contained HTML, tidy CSV, per-user arrays, plots, manifest.

Files written to the report folder:

- ``report.md`` and ``report.html`` (the same content; the HTML embeds its images);
- ``results.csv`` (tidy per-seed results), ``summary.csv`` (mean, CI), ``tests.csv``
  (paired tests against the best), ``tuning.csv`` (every trial), ``audit.csv``;
- ``per_user.npz``: for each contestant and seed, the evaluated users and their values of
  every metric (keys ``<contestant>/seed<s>/<metric@k>`` and ``…/users``);
- ``metric_ci.png``, ``curves.png`` (with tuning), ``popularity.png``,
  ``false_negatives.png`` (with samplers);
- ``manifest.json``: versions, seeds, data digests, config and hash, machine, wall times.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from contrec.experiments.html_page import html_report
from contrec.experiments.plots import plot_curves, plot_false_negatives, plot_metric_ci, plot_popularity
from contrec.experiments.result import ComparisonResult, label, summary_cell
from contrec.experiments.spaces import WEIGHTED_BASELINES

__all__ = ["write_report", "results_table", "markdown_report"]

_TABLE_METRICS = [("ndcg", 10), ("ndcg", 20), ("recall", 10), ("recall", 20), ("map", 20), ("mrr", 20),
                  ("hit_rate", 20)]
def _columns(result: ComparisonResult) -> list[tuple[str, Any]]:
    ks = sorted(result.config.protocol.k)
    kmax = max(ks)
    cols = [(m, k) for m, k in _TABLE_METRICS if k in ks]
    if not cols:
        cols = [(m, k) for m in ("ndcg", "recall") for k in ks] + [("map", kmax), ("mrr", kmax), ("hit_rate", kmax)]
    primary = result.config.primary_metric
    if primary not in cols:
        cols.insert(0, primary)
    cols += [("coverage", kmax), ("mean_popularity", kmax)]
    if any(c.is_contrec for c in result.config.contestants):
        cols.append(("false_negative_rate", None))
    cols.append(("fit_seconds", None))
    return cols


def _fmt(mean: float, half: float, digits: int = 4) -> str:
    if np.isnan(mean):
        return "–"
    if np.isnan(half):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def _kind(contestant: Any) -> str:
    """What a contestant varies: its sampler, or the kernel / towers / loss it was given."""
    if not contestant.is_contrec:
        return "baseline"
    p = contestant.params
    parts = [p["similarity"]] if "similarity" in p else []
    if "user_tower" in p or "item_tower" in p:
        parts.append(f"{p.get('user_tower', 'id')} users / {p.get('item_tower', 'id')} items")
    if p.get("projection"):
        parts.append(f"head {p['projection']}")
    if p.get("ssl_weight"):
        parts.append(f"ssl {p['ssl_weight']}")
    if p.get("objective", "infonce") != "infonce":
        parts.append(p["objective"])
    return "contrec · " + (", ".join(parts) if parts else str(contestant.sampler))


_DIAGNOSTICS = [("alignment", "alignment ↓"), ("item_uniformity", "item uniformity ↓"),
                ("effective_rank", "effective rank"), ("norm_popularity_spearman", "norm–popularity ρ")]


def diagnostics_table(result: ComparisonResult) -> str | None:
    """Embedding geometry per contestant (mean over seeds), or None when no cell recorded it."""
    summary = result.summary
    if not summary["metric"].isin([m for m, _ in _DIAGNOSTICS]).any():
        return None
    lines = ["| contestant | " + " | ".join(label for _, label in _DIAGNOSTICS) + " |",
             "|---|" + "---:|" * len(_DIAGNOSTICS)]
    for c in result.config.contestants:
        values = [summary_cell(summary, c.name, m, None)[0] for m, _ in _DIAGNOSTICS]
        if all(np.isnan(v) for v in values):
            continue
        cells = ["–" if np.isnan(v) else (f"{v:.1f}" if m == "effective_rank" else f"{v:.3f}")
                 for v, (m, _) in zip(values, _DIAGNOSTICS)]
        lines.append(f"| {c.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_table(result: ComparisonResult) -> str:
    """The main markdown table: mean ± 95 % CI over seeds; best of each quality column bold;
    † marks contestants significantly worse than the best on the primary metric."""
    cols = _columns(result)
    summary = result.summary
    names = [c.name for c in result.config.contestants]
    kinds = {c.name: _kind(c) for c in result.config.contestants}
    header = "| contestant | kind | " + " | ".join(label(m, k) for m, k in cols) + " |"
    lines = [header, "|---|---|" + "---:|" * len(cols)]
    best_of = {}
    for m, k in cols:
        if m in ("coverage", "mean_popularity", "false_negative_rate", "fit_seconds"):
            continue
        means = {n: summary_cell(summary, n, m, k)[0] for n in names}
        best_of[(m, k)] = max(means.values())
    tests = result.tests
    for name in names:
        mark = " †" if name in tests.index and bool(tests.loc[name, "significant"]) else ""
        star = " ★" if name == result.best else ""
        cells = []
        for m, k in cols:
            mean, half = summary_cell(summary, name, m, k)
            if m == "fit_seconds":
                text = "–" if np.isnan(mean) else f"{mean:.1f}"
            elif m in ("coverage", "mean_popularity", "false_negative_rate"):
                text = "–" if np.isnan(mean) else f"{mean:.3f}"
            else:
                text = _fmt(mean, half)
                if (m, k) in best_of and not np.isnan(mean) and np.isclose(mean, best_of[(m, k)]):
                    text = f"**{text}**"
            cells.append(text)
        lines.append(f"| {name}{star}{mark} | {kinds[name]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _tests_table(result: ComparisonResult) -> str:
    metric, k = result.config.primary_metric
    lines = [f"| contestant | {label(metric, k)} | Δ vs best | Cohen's d_z | rank-biserial | paired t p (Holm) | "
             "Wilcoxon p (Holm) | significant |", "|---|---:|---:|---:|---:|---:|---:|:---:|"]
    for name, row in result.tests.iterrows():
        if name == result.best:
            lines.append(f"| {name} ★ | {row['mean']:.4f} | best | – | – | – | – | – |")
            continue
        lines.append(f"| {name} | {row['mean']:.4f} | {row['mean_diff']:+.4f} | {row['cohens_dz']:+.3f} | "
                     f"{row['rank_biserial']:+.3f} | {_p(row['t_pvalue_holm'])} | {_p(row['wilcoxon_pvalue_holm'])} | "
                     f"{'yes' if row['significant'] else 'no'} |")
    return "\n".join(lines)


def _p(p: float) -> str:
    if np.isnan(p):
        return "–"
    return "< 1e-4" if p < 1e-4 else f"{p:.4f}"


def _cores(threads: int | None, workers: int) -> str:
    each = f"{threads} thread{'' if threads == 1 else 's'}"
    return each if workers == 1 else f"{workers} worker processes × {each}"


def search_summary(result: ComparisonResult) -> str:
    """What the tuning search did: its rungs, what it pruned, and the epochs it trained against a full search."""
    cfg, tuning = result.config, result.tuning
    if cfg.tuning.search == "full" or tuning.empty or tuning["rung"].max() == 1:
        return ("Search: every setting trains to the end (`search: full`), early-stopped on the carve "
                f"(patience {constructor_patience()}).")
    contrec = tuning[tuning["epochs"].notna()]
    rungs = contrec.groupby("rung").agg(epochs=("epochs", "max"), fits=("trial", "size")).reset_index()
    shape = " → ".join(f"{int(r.fits)} at {int(r.epochs)}" for r in rungs.itertuples())
    searches = contrec.groupby(["contestant", "seed"]).ngroups
    # a promoted setting continues its run: its epochs are those of its last rung's history
    trained = contrec.groupby(["contestant", "seed", "trial"])["trained_epochs"].max().sum()
    full = contrec[contrec["rung"] == 1].shape[0] * float(rungs["epochs"].max())
    pruned = int((~contrec["promoted"].astype(bool) & (contrec["rung"] < contrec["rung"].max())).sum())
    return (f"Search: successive halving over epochs for contrec (η = {cfg.tuning.eta}; "
            f"`contrec.experiments.search`): every setting trains {cfg.tuning.min_epochs} epochs on the carve, the "
            f"best 1/{cfg.tuning.eta} continue from their checkpoints (not restarted), the last one trains its full "
            f"budget with early stopping. Fits per rung over all {searches} contestant × seed searches: {shape} "
            f"epochs; {pruned} settings pruned before the end. contrec trained {trained:,.0f} epochs in tuning, "
            f"against at most {full:,.0f} had every setting trained its full budget. Baselines train every setting "
            "to the end.")


def constructor_patience() -> int:
    from contrec.models.contrastive import ContrastiveRecommender

    return int(ContrastiveRecommender.param_defaults()["patience"])


def _tuning_table(result: ComparisonResult) -> str:
    lines = ["| contestant | seed | trials | best validation | chosen settings (changes from defaults) |",
             "|---|---:|---:|---:|---|"]
    for c in result.config.contestants:
        for seed, params in result.chosen[c.name].items():
            trials = result.tuning[(result.tuning["contestant"] == c.name) & (result.tuning["seed"] == seed)]
            changed = {k: v for k, v in params.items() if c.params.get(k) != v}
            text = json.dumps(changed, sort_keys=True) if changed else "defaults"
            final = trials[trials["rung"] == trials["rung"].max()] if len(trials) else trials
            best = f"{final['validation'].max():.4f}" if len(final) else "–"
            lines.append(f"| {c.name} | {seed} | {trials['trial'].nunique()} | {best} | `{text}` |")
    return "\n".join(lines)


def _failed_section(result: ComparisonResult) -> list[str]:
    """What could not finish, and why: the tables above leave these contestants out."""
    if not result.failed:
        return []
    lines = ["## Failed contestants", "", "These contestants could not finish; every table and plot leaves them "
             "out, and the others ran as planned.", "", "| contestant | reason |", "|---|---|"]
    lines += [f"| {name} | {why.replace('|', '/')} |" for name, why in result.failed.items()]
    return lines + [""]


def _audit_table(result: ComparisonResult) -> str:
    lines = ["| split | check | status | detail |", "|---|---|---|---|"]
    for row in result.audit.itertuples(index=False):
        lines.append(f"| {row.split} | {row.check} | {row.status} | {row.detail} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- markdown and HTML
def markdown_report(result: ComparisonResult, plots: dict[str, bool]) -> str:
    """The report as markdown (images referenced by file name)."""
    cfg, m = result.config, result.manifest
    lines = [
        f"# contrec comparison on {cfg.data.label}", "",
        f"Contestants: {', '.join(c.name for c in cfg.contestants)}. Seeds: {', '.join(map(str, cfg.seeds))}. "
        f"Generated {m['started']} in {m['wall_seconds']['total'] / 60:.1f} min on {m['machine']['cpu']} "
        f"({_cores(cfg.threads, m.get('workers', 1))}"
        f"{'' if cfg.device == 'cpu' else f'; contrec fits on {cfg.device}'}){_cached_note(m)}.", "",
    ]
    low = cfg.bfloat16_contestants
    if low:  # it changes a fit's numbers (and time): say so before the tables
        lines += [f"Score matmuls in bfloat16 (`precision: bfloat16`) for {', '.join(low)}.", ""]
    if m.get("command"):
        lines += ["```", m["command"], "```", ""]
    lines += _results_section(result) + _tuning_section(result, plots)
    lines += ["## Popularity bias and coverage", "",
              f"The dashed line is the mean popularity of the held-out positives ({result.reference_popularity:.3f}).",
              "", "![popularity](popularity.png)", ""]
    if plots.get("false_negatives"):
        lines += ["## False negatives", "", "![false negatives](false_negatives.png)", ""]
    lines += _embeddings_section(result)
    lines += ["## Leak audit", "", "Run on every split before fitting; a `fail` stops the comparison.", "",
              _audit_table(result), ""]
    return "\n".join(lines + _protocol_section(result) + _reproduce_section(result))


def _results_section(result: ComparisonResult) -> list[str]:
    cfg = result.config
    metric, k = cfg.primary_metric
    return [
        "## Results", "",
        (f"Mean ± 95 % CI (Student t over {len(cfg.seeds)} seeds)." if len(cfg.seeds) > 1 else
         "One seed: each value is that seed's test split, with no confidence interval (run ≥ 2 seeds for one).")
        + f" **Bold**: best in its column. ★: best on "
        f"{label(metric, k)}. †: significantly worse than ★ on {label(metric, k)} (paired per-user tests, "
        "Holm-adjusted Wilcoxon and t p < 0.05). Coverage and mean popularity are of the top "
        f"{max(cfg.protocol.k)}; false-neg. rate is the share of sampled negatives that were known positives "
        "(masked).", "",
        results_table(result), "",
        "![metric by contestant](metric_ci.png)", "",
        *_failed_section(result),
        f"## Significance against the best ({result.best})", "",
        (f"Each user's {label(metric, k)} averaged over seeds" if len(cfg.seeds) > 1 else
         f"Each user's {label(metric, k)} on seed {cfg.seeds[0]}'s test split")
        + "; differences are contestant − best over "
        f"{int(result.tests['n'].max())} users; Holm correction over {len(cfg.contestants) - 1} comparisons.", "",
        _tests_table(result), "", *_serving_the_best(result),
    ]


def _serving_the_best(result: ComparisonResult) -> list[str]:
    """When a baseline wins, the command that fits, saves and serves it with the settings tuning chose."""
    best = next((c for c in result.config.contestants if c.name == result.best), None)
    chosen = result.chosen.get(result.best) or {} if best is not None and not best.is_contrec else {}
    if not chosen:
        return []
    seed = min(chosen)
    settings = json.dumps({k: v for k, v in chosen[seed].items() if k not in ("threads", "seed")}, sort_keys=True)
    others = [str(s) for s, p in chosen.items() if p != chosen[seed]]
    return [f"{best.name} is a baseline contrec fits, saves and serves like its own model (`recommend`, `evaluate`, "  # type: ignore[union-attr]
            f"`export`), with the settings seed {seed}'s tuning chose"
            + (f" (seed{'s' * (len(others) > 1)} {', '.join(others)} chose others: see Tuning)" if others else "")
            + ":", "",
            "```", f"contrec fit YOUR_LOG.csv --model {best.model} --model-params '{settings}' -o {best.model}.contrec",  # type: ignore[union-attr]
            "```", ""]


def _tuning_section(result: ComparisonResult, plots: dict[str, bool]) -> list[str]:
    cfg = result.config
    metric, k = cfg.primary_metric
    tuning = (f"{cfg.tuning.trials} trials per contestant (defaults first, then draws without replacement from "
              f"its search space), for every seed: scored by {label(metric, k)} on a "
              f"{cfg.tuning.validation_size:.0%} per-user validation carve of that seed's own training split, so "
              "no seed's test positives are in the data that chose its settings; contrec early-stops on the "
              "carve and that seed's final fit is trained for its best epoch count. Test is used once."
              if cfg.tuning.enabled else "off (`--no-tune`): every contestant runs its default settings.")
    lines = ["## Tuning", "", tuning, ""]
    if cfg.tuning.enabled:
        lines += [search_summary(result), "", _tuning_table(result), ""]
    if plots.get("curves"):
        lines += ["![validation curves](curves.png)", ""]
    return lines


def _embeddings_section(result: ComparisonResult) -> list[str]:
    embeddings = diagnostics_table(result)
    if not embeddings:
        return []
    return ["## Embeddings", "",
            "Geometry of the learned vectors on the training data (`contrec.nn.diagnostics`, mean over seeds): "
            "alignment = mean ‖u − v‖² over training pairs of unit vectors (lower: positives closer), "
            "item uniformity = log E exp(−2‖vᵢ − vⱼ‖²) (lower: items spread more evenly, Wang & Isola "
            "2020), effective rank of the item matrix (exp of the singular values' entropy), and the "
            "Spearman correlation of item vector norms with item popularity (1: the norm encodes "
            "popularity). Each is computed in bounded memory; the effective rank is left out (–) for "
            "vectors too large to decompose cheaply (item–item models on catalogues over 4,096 items, "
            "whose vectors are as wide as the catalogue).", "", embeddings, ""]


# what each weight-aware baseline's weighting parameter (`WEIGHTED_BASELINES`) weighs, in the report's words
_WEIGHED = {"als": "confidence 1 + α·c(weight), c", "itemknn": "similarities and scores, weights"}


def _baseline_weight_use(cfg: Any) -> str:
    """How the baselines use the data's weights: ALS's confidence 1 + α·c(w) and item-kNN's similarities and
    scores (as configured or searched)."""
    uses = []
    for c in cfg.contestants:
        if c.is_contrec or c.model not in WEIGHTED_BASELINES:
            continue
        key = next(iter(WEIGHTED_BASELINES[c.model]["default"]))  # its one weighting parameter
        searched = c.space[key] if cfg.searches(c, key) else None
        uses.append(f"{c.name}'s {_WEIGHED[c.model]} {c.params.get(key, 'linear')}"
                    + (f" (searched: {', '.join(searched)})" if searched else ""))
    return ", ".join(uses) if uses else "no baseline here uses them"


def _protocol_section(result: ComparisonResult) -> list[str]:
    cfg, m, proto = result.config, result.manifest, result.config.protocol
    has_ratings = cfg.data.dataset is not None or cfg.data.rating is not None
    rating = (f"ratings ≥ {proto.min_rating:g} are positives" if proto.min_rating is not None and has_ratings
              else "every row is a positive")
    if cfg.data.weight:
        rating += f"; weights from column `{cfg.data.weight}`: " + _baseline_weight_use(cfg)
        drawn = [f"{c.name} ({c.params['positive_weights']})" for c in cfg.contestants if c.is_contrec
                 and c.name not in cfg.weight_blind_contestants and not cfg.searches(c, "positive_weights")]
        searched = [c.name for c in cfg.contestants if c.is_contrec and cfg.searches(c, "positive_weights")]
        if drawn:
            rating += "; " + ", ".join(drawn) + (" draws" if len(drawn) == 1 else " draw") + \
                " heavier positives more often"
        if searched:
            rating += "; " + ", ".join(searched) + " searched how positives count"
        # the baselines here with no weighting parameter (the others said above how they use the weights)
        alike = cfg.weight_blind_contestants + [c.name for c in cfg.contestants
                                                if not c.is_contrec and c.model not in WEIGHTED_BASELINES]
        if alike:
            rating += "; " + ", ".join(alike) + (" treats" if len(alike) == 1 else " treat") + \
                " every positive alike"
    return [
        "## Protocol", "",
        f"- Data: {cfg.data.label}: {m['data']['users']} users × {m['data']['items']} items, "
        f"{m['data']['positives']} positives after filtering ({rating}; users with ≥ {proto.min_user_positives} "
        "positives).",
        f"- Split: per-user {proto.split} {1 - proto.test_size:.0%}/{proto.test_size:.0%}"
        + (" (one split per seed)." if proto.split == "random" else " (the same split for every seed)."),
        "- Ranking: full catalogue, each user's training items excluded; exact FAISS search for every "
        f"contestant; k = {', '.join(map(str, proto.k))}.",
        f"- Threads: {cfg.threads} for torch, FAISS and BLAS (implicit's BPR runs on 1 thread: its Hogwild "
        "updates are not reproducible on more).",
        "",
    ]


def _cached_note(m: dict[str, Any]) -> str:
    """A resumed or repeated run's minutes are not what its fits cost: say how many came from the cache."""
    cached, total = m["cells"]["from_cache"], m["cells"]["total"]
    return "" if not cached else (f"; {'all' if cached == total else f'{cached} of'} {total} fits came from the cell "
                                  "cache of an earlier run, so this time is not what they cost (each fit's own "
                                  "seconds are in the tables)")


def _reproduce_section(result: ComparisonResult) -> list[str]:
    m = result.manifest
    return [
        "## Reproduce", "",
        f"Config SHA-256 `{m['config_sha256'][:16]}…` (full config in `manifest.json`). Versions: "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".", "",
        "Data files (SHA-256): " + ", ".join(f"`{k}` `{v[:16]}…`" for k, v in m["data"]["files_sha256"].items())
        + ".", "",
        f"Wall time: prepare {m['wall_seconds']['prepare']:.0f} s, tuning {m['wall_seconds']['tuning']:.0f} s, "
        f"test {m['wall_seconds']['test']:.0f} s; {m['cells']['from_cache']} of {m['cells']['total']} fits came "
        "from the cell cache.", "",
    ]


# ---------------------------------------------------------------------------- files
def _write_text(path: Path, text: str) -> None:
    from contrec.runtime.artifact import atomic_write

    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def write_report(result: ComparisonResult, folder: "str | os.PathLike[str]") -> Path:
    """Write every report file into ``folder``; returns the path of report.md."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame, index in (("results", result.results, False), ("summary", result.summary, False),
                               ("tests", result.tests, True), ("tuning", result.tuning, False),
                               ("audit", result.audit, False)):
        _write_text(out / f"{name}.csv", frame.to_csv(index=index))
    arrays: dict[str, np.ndarray] = {}
    for (name, seed), frame in result.per_user.items():
        arrays[f"{name}/seed{seed}/users"] = np.asarray(frame.index.astype(str), dtype=str)
        for column in frame.columns:
            arrays[f"{name}/seed{seed}/{column}"] = frame[column].to_numpy(np.float64)
    from contrec.runtime.artifact import atomic_write

    atomic_write(out / "per_user.npz", lambda fh: np.savez_compressed(fh, **arrays))
    plot_metric_ci(result, out / "metric_ci.png")
    plot_popularity(result, out / "popularity.png")
    plots = {"curves": plot_curves(result, out / "curves.png"),
             "false_negatives": plot_false_negatives(result, out / "false_negatives.png")}
    for name, made in plots.items():
        stale = out / f"{name}.png"
        if not made and stale.exists():
            stale.unlink()
    markdown = markdown_report(result, plots)
    _write_text(out / "report.md", markdown)
    _write_text(out / "report.html", html_report(markdown, out))
    _write_text(out / "manifest.json", json.dumps(result.manifest, indent=2, default=str))
    return out / "report.md"
