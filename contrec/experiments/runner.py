"""`compare()`: every contestant on the same splits, the same tuning budget and the same metrics.

Phases:

1. **Data and splits.** The data is loaded once, users with fewer than
   ``min_user_positives`` positives are dropped, and each seed gives one per-user split
   (random; a temporal split is the same for every seed, and the seed then varies only the
   models). The leak audit runs on every split before anything is fitted.
2. **Tuning** (unless disabled), per seed. A validation set is carved from each seed's
   own training split (per user, ``tuning.validation_size``, carve seed ``tuning.seed`` +
   seed), so no seed's test part is ever in the data its settings were chosen on. Every
   contestant gets ``tuning.trials`` settings: its defaults first, then draws without
   replacement from its documented search space (the same candidates for every seed). Each
   trial is fitted on the rest of that train split and scored by the primary metric on the
   carve; contrec early-stops on the carve and its best epoch becomes the number of epochs
   of that seed's final fit. Test is not touched. Cost: trials × seeds fits per contestant.
3. **Test.** Each contestant, with its chosen settings, is fitted on the full training split
   of every seed and evaluated once on that seed's test split (full ranking, train items
   excluded), keeping per-user values for the paired tests.

Every fit is a *cell*; with a cache folder, each finished cell is written there atomically
and a rerun with the same config skips it, so an interrupted run resumes where it stopped.

Example:
    >>> result = compare(dataset="ml-100k", samplers=["uniform", "popularity"],
    ...                  baselines=["als", "ease"], seeds=3, out="reports/ml-100k")  # doctest: +SKIP
    >>> result.summary.query("metric == 'ndcg' and k == 20")                          # doctest: +SKIP
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import os
import platform
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from contrec.data.interactions import Interactions
from contrec.errors import ConfigError, ContrecError, DataError
from contrec.evaluation import evaluate, item_popularity
from contrec.evaluation.stats import compare_to_best, mean_ci
from contrec.experiments.audit import Check, audit_carve, audit_split, raise_on_failures
from contrec.experiments.config import Contestant, DataSpec, EvaluationProtocol, ExperimentConfig, load_config
from contrec.runtime.progress import interactive
from contrec.runtime.threads import pinned_threads

__all__ = ["compare", "ComparisonResult", "build_config"]

logger = logging.getLogger("contrec")

_CELL_VERSION = 1


# ---------------------------------------------------------------------------- result
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


# ---------------------------------------------------------------------------- config from shortcuts
def build_config(config: "ExperimentConfig | Mapping[str, Any] | str | os.PathLike[str] | None" = None, *,
                 dataset: str | None = None, data: Mapping[str, Any] | None = None,
                 samplers: Sequence[str] | None = None, baselines: Sequence[str] | None = None,
                 similarities: Sequence[str] | None = None, encoders: Sequence[str] | None = None,
                 objectives: Sequence[str] | None = None, seeds: "int | Sequence[int] | None" = None,
                 tune: bool | None = None, trials: int | None = None,
                 threads: int | None = None) -> ExperimentConfig:
    """An `ExperimentConfig` from a file, a dict or an existing config, with shortcut overrides.

    ``samplers``/``similarities``/``encoders``/``objectives``/``baselines`` replace the
    contestants (any of them given); ``seeds`` is a count or a list.
    """
    if isinstance(config, ExperimentConfig):
        raw = config.to_dict()
    elif isinstance(config, Mapping):
        raw = copy.deepcopy(dict(config))
    elif config is not None:
        raw = load_config(config).to_dict()
    else:
        raw = {"dataset": "ml-100k", "contestants": []}
    if dataset is not None:
        raw.pop("data", None)
        raw["dataset"] = dataset
    if data is not None:
        raw.pop("dataset", None)
        raw["data"] = dict(data)
    flags = {"sampler": samplers, "similarity": similarities, "encoder": encoders, "objective": objectives,
             "baseline": baselines}
    if any(v is not None for v in flags.values()):
        raw["contestants"] = [{kind: name} for kind, names in flags.items() for name in names or []]
    if not raw.get("contestants"):
        raw["contestants"] = [{"sampler": "uniform"}, {"baseline": "popularity"}]
    if seeds is not None:
        raw["seeds"] = seeds if isinstance(seeds, int) else list(seeds)
    tuning = dict(raw.get("tuning", {}))
    if tune is not None:
        tuning["enabled"] = bool(tune)
    if trials is not None:
        tuning["trials"] = trials
    raw["tuning"] = tuning
    if threads is not None:
        raw["threads"] = threads
    return ExperimentConfig.from_dict(raw)


# ---------------------------------------------------------------------------- data
@dataclass
class _Prepared:
    data: Interactions
    splits: dict[int, tuple[Interactions, Interactions]]
    carves: dict[int, tuple[Interactions, Interactions]]
    audit: list[Check]
    files: dict[str, str]
    fingerprint: str
    duplicates: int


def _load(spec: DataSpec, protocol: EvaluationProtocol, data_dir: "str | os.PathLike[str] | None"
          ) -> tuple[Interactions, dict[str, str], int]:
    from contrec.data import DuplicateRowsWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DuplicateRowsWarning)
        if spec.dataset is not None:
            from contrec.data.movielens import dataset_info, fetch_movielens, load_movielens

            # fetch verifies the files once; loading from that folder need not verify them again,
            # and a digest pinned in the registry is the file's digest after that check
            folder = fetch_movielens(spec.dataset, data_dir)
            data = load_movielens(spec.dataset, folder.parent, min_rating=protocol.min_rating, download=False,
                                  verify=False)
            pinned = dataset_info(spec.dataset).files
            files = {f"{spec.dataset}/{name}": pinned[name] or _sha256(folder / name) for name in pinned}
        else:
            from contrec.data.readers import read_interactions, read_item_attributes

            path = Path(spec.path or "")
            extra: dict[str, Any] = {}
            if spec.item_attributes:
                extra["item_attributes"] = read_item_attributes(spec.item_attributes,
                                                                spec.item_attributes_id or spec.item,
                                                                "set data: item_attributes_id", sep=spec.attributes_sep)
            data = read_interactions(path, user=spec.user, item=spec.item, rating=spec.rating,
                                     weight=spec.weight, timestamp=spec.timestamp, names=spec.names,
                                     min_rating=protocol.min_rating if spec.rating else None,
                                     sep={"\\t": "\t", "tab": "\t"}.get(spec.sep or "", spec.sep), **extra)
            files = {path.name: _sha256(path)}
            if spec.item_attributes:
                files[Path(spec.item_attributes).name] = _sha256(Path(spec.item_attributes))
    duplicates = 0
    for w in caught:
        if issubclass(w.category, DuplicateRowsWarning):
            words = str(w.message).split(": ", 1)[-1].split()
            duplicates += int(words[0]) if words and words[0].isdigit() else 0
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return data, files, duplicates


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _prepare(config: ExperimentConfig, data_dir: "str | os.PathLike[str] | None") -> _Prepared:
    from contrec.data.splits import split_random, split_temporal

    protocol = config.protocol
    raw, files, duplicates = _load(config.data, protocol, data_dir)
    if config.data.weight and any(c.is_contrec for c in config.contestants):
        from contrec.models.contrastive import WEIGHTS_IGNORED, IgnoredWeightsWarning

        warnings.warn(f"{config.data.label}: {WEIGHTS_IGNORED}", IgnoredWeightsWarning, stacklevel=3)
    data = protocol.eligible(raw, config.data.label)
    temporal = protocol.split == "temporal"
    splits: dict[int, tuple[Interactions, Interactions]] = {}
    checks: list[Check] = []
    for seed in config.seeds:
        train, test = protocol.split_data(data, seed)
        splits[seed] = (train, test)
        checks += audit_split(train, test, f"seed {seed}", temporal, duplicates)
    carves: dict[int, tuple[Interactions, Interactions]] = {}
    if config.tuning.enabled:
        # every seed is tuned on a carve of its own training split: no seed's test part is ever in the data
        # that chose its settings (one carve reused for all seeds would contain other seeds' test positives)
        for seed in config.seeds:
            train, test = splits[seed]
            fit, validation = (split_temporal(train, config.tuning.validation_size) if temporal
                               else split_random(train, config.tuning.validation_size, config.tuning.seed + seed))
            carves[seed] = (fit, validation)
            checks += audit_carve(fit, validation, test, f"tuning carve (seed {seed})")
    raise_on_failures(checks)
    return _Prepared(data, splits, carves, checks, files, data.fingerprint(), duplicates)


# ---------------------------------------------------------------------------- models
def _with_overrides(params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with ``overrides`` applied; ``a.b`` keys set nested dict entries."""
    out = copy.deepcopy(dict(params))
    for key, value in overrides.items():
        target = out
        *path, last = key.split(".")
        for part in path:
            nested = target.get(part)
            target[part] = dict(nested) if isinstance(nested, Mapping) else {}
            target = target[part]
        target[last] = copy.deepcopy(value)
    return out


def _make_model(contestant: Contestant, params: Mapping[str, Any], seed: int, threads: int | None) -> Any:
    if contestant.is_contrec:
        from contrec.models.contrastive import ContrastiveRecommender

        try:
            return ContrastiveRecommender(**{**params, "seed": seed, "threads": threads, "verbose": False})
        except TypeError as err:
            raise ConfigError(f"contestant {contestant.name!r}: {err}") from None
    from contrec.models.baselines import make_baseline

    extra: dict[str, Any] = {}
    if contestant.model in ("als", "bpr"):
        extra["seed"] = seed
    if contestant.model in ("als", "itemknn"):
        extra["threads"] = threads
    if contestant.model == "bpr":
        # implicit's BPR updates factors Hogwild-style across threads: only one thread is reproducible.
        extra["threads"] = 1
    try:
        return make_baseline(contestant.model, **{**params, **extra})
    except ConfigError as err:
        raise ConfigError(f"contestant {contestant.name!r}: {err}") from None


def _constructor_defaults(contestant: Contestant) -> dict[str, Any]:
    if contestant.is_contrec:
        from contrec.models.contrastive import ContrastiveRecommender

        return ContrastiveRecommender().get_params()
    from contrec.models.baselines import make_baseline

    model = make_baseline(contestant.model)
    return model.get_params() if hasattr(model, "get_params") else {}


def _trial_settings(contestant: Contestant, trials: int, seed: int) -> list[dict[str, Any]]:
    """Trial 1 is the defaults; the rest are distinct draws from the search space.

    Draws are compared after filling in constructor defaults, so a draw that equals the
    defaults (EASE's l2 = 250 among its grid) does not spend a trial.
    """
    overrides: list[dict[str, Any]] = [{}]
    space = contestant.space
    if trials > 1 and space:
        keys = sorted(space)
        sizes = [len(space[k]) for k in keys]
        total = int(np.prod(sizes))
        name_seed = int.from_bytes(hashlib.sha256(contestant.name.encode()).digest()[:4], "little")
        rng = np.random.default_rng([seed, name_seed])
        defaults = _constructor_defaults(contestant)

        def resolved(combo: Mapping[str, Any]) -> str:
            return json.dumps({**defaults, **_with_overrides(contestant.params, combo)}, sort_keys=True, default=str)

        seen = {resolved({})}
        picks = rng.permutation(total) if total <= 1_000_000 else rng.integers(0, total, 4 * trials)
        for flat in picks:
            if len(overrides) >= trials:
                break
            combo = {k: space[k][i] for k, i in zip(keys, np.unravel_index(int(flat), sizes))}
            key = resolved(combo)
            if key not in seen:
                seen.add(key)
                overrides.append(combo)
    return [_with_overrides(contestant.params, o) for o in overrides]


class _BarPostfix(logging.Handler):
    """Shows a fit's per-epoch log line in the comparison's bar (a long fit is not silent)."""

    def __init__(self, bar: Any, label: str) -> None:
        super().__init__(logging.INFO)
        self.bar, self.label = bar, label

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("epoch "):
            self.bar.set_postfix_str(f"{self.label}: {message.split(',')[0]}")


@contextmanager
def _quiet_fit(bar: Any = None, label: str = "") -> Iterator[None]:
    """Per-epoch training logs would tear the comparison's progress bar: they go into the bar's postfix
    (when one is drawn) and only warnings pass through."""
    before, handlers, propagate = logger.level, logger.handlers[:], logger.propagate
    if bar is not None and not bar.disable:
        logger.setLevel(logging.INFO)
        postfix = _BarPostfix(bar, label)
        for handler in handlers:  # what was shown before stays shown, but only from warnings up
            handler.addFilter(_warnings_only)
        logger.addHandler(postfix)
    else:
        logger.setLevel(max(before, logging.WARNING))
    try:
        with warnings.catch_warnings():
            from contrec.models.contrastive import IgnoredWeightsWarning

            warnings.simplefilter("ignore", IgnoredWeightsWarning)  # said once by compare, and in the report
            yield
    finally:
        logger.setLevel(before)
        for handler in handlers:
            handler.removeFilter(_warnings_only)
        logger.handlers[:] = handlers
        logger.propagate = propagate


def _warnings_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


# ---------------------------------------------------------------------------- cells
class _Cells:
    """Finished fits stored as ``<key>.json`` (+ ``<key>.npz`` per-user arrays), atomically."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> tuple[dict[str, Any], dict[str, np.ndarray] | None] | None:
        if self.folder is None:
            return None
        path = self.folder / f"{key}.json"
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
            arrays = None
            if record.get("has_arrays"):
                with np.load(self.folder / f"{key}.npz", allow_pickle=False) as npz:
                    arrays = {name: npz[name] for name in npz.files}
        except (OSError, ValueError, KeyError) as err:
            logger.warning("cached cell %s is unreadable (%s); running it again", path.name, err)
            return None
        if record.get("version") != _CELL_VERSION or record.get("key") != key:
            return None
        return record, arrays

    def put(self, key: str, record: dict[str, Any], arrays: dict[str, np.ndarray] | None) -> None:
        if self.folder is None:
            return
        record = {**record, "version": _CELL_VERSION, "key": key, "has_arrays": arrays is not None}
        from contrec.runtime.artifact import atomic_write

        if arrays is not None:
            atomic_write(self.folder / f"{key}.npz", lambda fh: np.savez(fh, **arrays))
        text = json.dumps(record, default=_json_default).encode("utf-8")
        # the JSON last: its presence means the cell is complete
        atomic_write(self.folder / f"{key}.json", lambda fh: fh.write(text))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _fn_rate(history: list[dict[str, Any]]) -> float:
    values = [r["false_negative_rate"] for r in history if "false_negative_rate" in r]
    return float(np.mean(values)) if values else float("nan")


def _clean_history(history: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    keep = ("epoch", "loss", "seconds", "elapsed", "validation", "false_negative_rate", "masked_share",
            "sampler_share", "best")
    return [{k: r[k] for k in keep if k in r} for r in history or []]


def _run_tuning_trial(contestant: Contestant, params: dict[str, Any], fit: Interactions,
                      validation: Interactions, config: ExperimentConfig, bar: Any = None) -> dict[str, Any]:
    metric, k = config.primary_metric
    model_params = dict(params)
    if contestant.is_contrec:
        model_params["validation_k"] = k
    model = _make_model(contestant, model_params, config.tuning.seed, config.threads)
    t0 = time.perf_counter()
    with _quiet_fit(bar, f"tuning {contestant.name}"):
        if contestant.is_contrec:
            model.fit(fit, validation)  # early stopping on the carve; its best epoch is kept
        else:
            model.fit(fit)
    fit_s = time.perf_counter() - t0
    table = evaluate(model, fit, validation, k=k, exclude="train")  # the carve is known to contrec: it early-stopped on it
    score = float(table.loc[table["metric"] == metric, "value"].iloc[0])
    history = _clean_history(getattr(model, "history_", None))
    best_epoch = next((r["epoch"] for r in history if r.get("best")), None)
    return {"params": params, "score": score, "fit_s": fit_s, "history": history, "best_epoch": best_epoch}


def _run_test_cell(contestant: Contestant, params: dict[str, Any], seed: int, train: Interactions,
                   test: Interactions, config: ExperimentConfig, bar: Any = None
                   ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    model = _make_model(contestant, params, seed, config.threads)
    t0 = time.perf_counter()
    with _quiet_fit(bar, f"{contestant.name} seed {seed}"):
        model.fit(train)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    table, frame = evaluate(model, train, test, k=config.protocol.k, per_user=True)
    eval_s = time.perf_counter() - t1
    history = _clean_history(getattr(model, "history_", None))
    rows = [{"metric": m, "k": int(kk), "value": float(v)} for m, kk, v in table.itertuples(index=False)]
    if contestant.is_contrec:
        rows.append({"metric": "false_negative_rate", "k": None, "value": _fn_rate(history)})
    rows.append({"metric": "fit_seconds", "k": None, "value": fit_s})
    if contestant.model != "popularity":  # a 1-d "embedding" has no geometry to diagnose
        from contrec.nn.diagnostics import embedding_diagnostics

        diagnostics = getattr(model, "diagnostics_", None) or embedding_diagnostics(model, seed=seed)
        rows += [{"metric": name, "k": None, "value": float(value)} for name, value in diagnostics.items()]
    arrays = {"users": np.asarray(frame.index.astype(str), dtype=str)}
    arrays.update({col: frame[col].to_numpy(np.float64) for col in frame.columns})
    return {"params": params, "rows": rows, "fit_s": fit_s, "eval_s": eval_s, "history": history}, arrays


# ---------------------------------------------------------------------------- compare
def compare(config: "ExperimentConfig | Mapping[str, Any] | str | os.PathLike[str] | None" = None, *,
            dataset: str | None = None, data: Mapping[str, Any] | None = None,
            samplers: Sequence[str] | None = None, baselines: Sequence[str] | None = None,
            similarities: Sequence[str] | None = None, encoders: Sequence[str] | None = None,
            objectives: Sequence[str] | None = None,
            seeds: "int | Sequence[int] | None" = None, tune: bool | None = None, trials: int | None = None,
            threads: int | None = None, out: "str | os.PathLike[str] | None" = None,
            data_dir: "str | os.PathLike[str] | None" = None, progress: bool = True,
            command: str | None = None) -> ComparisonResult:
    """Compare negative samplers and baselines under one protocol; optionally write the report.

    Args:
        config: an `ExperimentConfig`, a dict in the config-file schema, or a YAML/TOML path.
        dataset / data: shortcut for the data (a known dataset name, or ``{"path": …, "user": …}``).
        samplers: contrec contestants by sampler name (their comparison defaults).
        baselines: baseline contestants: popularity, itemknn, als, bpr, ease.
        similarities / encoders / objectives: contrec contestants (uniform sampler) that differ
            in one kernel (``gaussian`` …), tower preset (``history`` …) or loss (``bpr`` …),
            named ``contrec-<name>``; tuned over their own documented spaces.
        seeds: a count (0 … n−1) or a list.
        tune: False skips tuning (every contestant runs its defaults).
        trials: the per-contestant tuning budget.
        threads: torch / FAISS / BLAS threads for every fit (the same for all contestants).
        out: report folder; finished cells are cached under ``out/cells`` and reused.
        data_dir: where datasets are looked for (default ``$CONTREC_DATA``, then the cache).
        progress: show one progress bar over all fits.
        command: the command line to record in the report.

    Returns:
        A `ComparisonResult`; with ``out``, the report (report.md, report.html, results.csv,
        per_user.npz, plots, manifest.json) is written there too.
    """
    cfg = build_config(config, dataset=dataset, data=data, samplers=samplers, baselines=baselines,
                       similarities=similarities, encoders=encoders, objectives=objectives, seeds=seeds,
                       tune=tune, trials=trials, threads=threads)
    started = time.perf_counter()
    started_at = _dt.datetime.now(_dt.timezone.utc)
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        from contrec.runtime.artifact import check_writable

        out_dir.mkdir(parents=True, exist_ok=True)
        check_writable(out_dir / "report.md")
    cells = _Cells(out_dir / "cells" if out_dir is not None else None)

    with pinned_threads(cfg.threads, blas=True):
        prepared = _prepare(cfg, data_dir)
        _preflight(cfg, prepared)
        prepare_s = time.perf_counter() - started
        base_key = [prepared.fingerprint, cfg.protocol.__dict__, cfg.threads, cfg.primary]
        plans = {c.name: (_trial_settings(c, cfg.tuning.trials, cfg.tuning.seed) if cfg.tuning.enabled
                          else [copy.deepcopy(c.params)]) for c in cfg.contestants}
        n_tasks = ((sum(len(p) for p in plans.values()) if cfg.tuning.enabled else 0) + len(cfg.contestants)) * len(
            cfg.seeds)
        from tqdm.auto import tqdm

        drawn = progress and interactive()  # a bar on a terminal; one line per finished fit in a log
        bar = tqdm(total=n_tasks, desc="compare", unit="fit", disable=not drawn, dynamic_ncols=True)
        say: Callable[[str], None] = bar.write if drawn else logger.info
        n_cached = 0
        try:
            # ---- tuning: per seed, on that seed's own carve
            trial_rows: list[dict[str, Any]] = []
            chosen: dict[str, dict[int, dict[str, Any]]] = {}
            curves: dict[str, list[dict[str, Any]]] = {}
            failed: dict[str, str] = {}  # contestant -> why; the others finish, the report says what failed
            tune_t0 = time.perf_counter()
            for c in cfg.contestants:
                chosen[c.name] = {}
                for seed in cfg.seeds:
                    if not cfg.tuning.enabled:
                        chosen[c.name][seed] = copy.deepcopy(c.params)
                        continue
                    fit, validation = prepared.carves[seed]
                    # keyed by the carve, not the seed: a temporal split gives every seed the same carve,
                    # and its trials then run once and are reused from the cell cache
                    carve_id = [fit.fingerprint(), validation.fingerprint()]
                    records = []
                    for n, params in enumerate(plans[c.name], 1):
                        bar.set_postfix_str(f"tuning {c.name} seed {seed} {n}/{len(plans[c.name])}")
                        key = _key("tune", base_key, cfg.tuning.__dict__, carve_id, c.model, params)
                        hit = cells.get(key)
                        if hit is not None:
                            record, n_cached = hit[0], n_cached + 1
                        else:
                            try:
                                record = _run_tuning_trial(c, params, fit, validation, cfg, bar)
                                cells.put(key, record, None)
                            except _CELL_ERRORS as err:  # one setting failing is no reason to stop the study
                                record = {"params": params, "score": float("nan"), "fit_s": float("nan"),
                                          "history": [], "best_epoch": None, "error": _reason(err)}
                                say(f"{c.name} seed {seed} trial {n} failed: {record['error']}")
                        records.append(record)
                        trial_rows.append({"contestant": c.name, "seed": seed, "trial": n,
                                           "params": json.dumps(params, sort_keys=True),
                                           "validation": record["score"], "best_epoch": record["best_epoch"],
                                           "fit_seconds": record["fit_s"], "cached": hit is not None})
                        bar.update(1)
                    scored = [i for i, r in enumerate(records) if np.isfinite(r["score"])]
                    if not scored:
                        failed[c.name] = f"every tuning trial failed (seed {seed}): {records[0]['error']}"
                        break
                    best = max(scored, key=lambda i: (records[i]["score"], -i))
                    params = copy.deepcopy(records[best]["params"])
                    if c.is_contrec and records[best]["best_epoch"]:
                        params["epochs"] = int(records[best]["best_epoch"])
                    chosen[c.name][seed] = params
                    curves.setdefault(c.name, records[best]["history"])  # the first seed's, for the plot
                    say(f"tuned {c.name} for seed {seed}: {cfg.primary} {records[best]['score']:.4f} on its "
                        f"validation carve with {_short(params, c.params)}")
            tune_s = time.perf_counter() - tune_t0

            # ---- test
            test_t0 = time.perf_counter()
            rows: list[dict[str, Any]] = []
            per_user: dict[tuple[str, int], pd.DataFrame] = {}
            histories: dict[tuple[str, int], list[dict[str, Any]]] = {}
            for c in cfg.contestants:
                if c.name in failed:
                    bar.update(len(cfg.seeds))
                    continue
                for seed in cfg.seeds:
                    bar.set_postfix_str(f"{c.name} seed {seed}")
                    train, test = prepared.splits[seed]
                    key = _key("test", base_key, seed, c.model, chosen[c.name][seed])
                    hit = cells.get(key)
                    if hit is not None and hit[1] is not None:
                        record, arrays = hit
                        n_cached += 1
                    else:
                        try:
                            record, arrays = _run_test_cell(c, chosen[c.name][seed], seed, train, test, cfg, bar)
                        except _CELL_ERRORS as err:
                            failed[c.name] = f"seed {seed}: {_reason(err)}"
                            say(f"{c.name} seed {seed} failed: {_reason(err)}")
                            bar.update(len(cfg.seeds) - cfg.seeds.index(seed))
                            break
                        cells.put(key, record, arrays)
                    model_name = "contrec" if c.is_contrec else c.model
                    for r in record["rows"]:
                        rows.append({"contestant": c.name, "model": model_name, "sampler": c.sampler, "seed": seed,
                                     **r})
                    users = arrays["users"]
                    per_user[(c.name, seed)] = pd.DataFrame(
                        {name: values for name, values in arrays.items() if name != "users"},
                        index=pd.Index(users, name="user"))
                    histories[(c.name, seed)] = record["history"]
                    primary = next(r["value"] for r in record["rows"]
                                   if r["metric"] == cfg.primary_metric[0] and r["k"] == cfg.primary_metric[1])
                    say(f"{c.name} seed {seed}: {cfg.primary} {primary:.4f} (fit {record['fit_s']:.1f} s)")
                    bar.update(1)
            test_s = time.perf_counter() - test_t0
        finally:
            bar.close()

        full_config = cfg
        if failed:
            rows = [r for r in rows if r["contestant"] not in failed]
            per_user = {key: frame for key, frame in per_user.items() if key[0] not in failed}
            histories = {key: h for key, h in histories.items() if key[0] not in failed}
            survivors = tuple(c for c in cfg.contestants if c.name not in failed)
            if not survivors:
                raise DataError("every contestant failed: " + "; ".join(f"{n}: {why}" for n, why in failed.items()))
            cfg = dataclasses.replace(cfg, contestants=survivors)
        results = pd.DataFrame(rows)
        results["k"] = results["k"].astype("Int64")
        summary = _summarise(results)
        best, tests = _significance(cfg, summary, per_user)
        reference = float(np.mean([_test_popularity(*prepared.splits[s]) for s in cfg.seeds]))

    total_s = time.perf_counter() - started
    manifest = _manifest(full_config, prepared, started_at, command, {
        "prepare": prepare_s, "tuning": tune_s, "test": test_s, "total": total_s}, n_cached, n_tasks)
    result = ComparisonResult(
        config=cfg, results=results, summary=summary, tests=tests, per_user=per_user,
        tuning=pd.DataFrame(trial_rows, columns=["contestant", "seed", "trial", "params", "validation",
                                                 "best_epoch", "fit_seconds", "cached"]),
        chosen=chosen, curves=curves, audit=pd.DataFrame([c.as_dict() for c in prepared.audit]),
        manifest=manifest, best=best, reference_popularity=reference, histories=histories, failed=failed)
    if out_dir is not None:
        from contrec.experiments.report import write_report

        write_report(result, out_dir)
    return result


# What a contestant's fit may raise without the comparison stopping: contrec's own refusals (e.g. not
# enough memory for a dense item-item model), an allocation that failed, a numerical failure. A segmentation
# fault cannot be caught in-process; contrec.runtime.blas keeps the dense solves clear of the ones seen here.
_CELL_ERRORS = (ContrecError, MemoryError, np.linalg.LinAlgError, RuntimeError, FloatingPointError)


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, MemoryError):
        return f"out of memory{': ' + text if text else ''}"
    return text if isinstance(err, ContrecError) and text else f"{type(err).__name__}: {text or 'no message'}"


def _short(params: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    changed = {k: v for k, v in params.items() if defaults.get(k) != v}
    return json.dumps(changed, sort_keys=True, default=str) if changed else "its defaults"


def _preflight(config: ExperimentConfig, prepared: _Prepared) -> None:
    """Build every contestant's model (and fit each sampler) once, so a bad setting fails before any training."""
    train = prepared.splits[config.seeds[0]][0]
    for c in config.contestants:
        model = _make_model(c, c.params, 0, config.threads)
        if c.is_contrec:
            model.check()
            try:
                model.check(train)
            except ContrecError as err:
                raise ConfigError(f"contestant {c.name!r}: {err}") from None


def _summarise(results: pd.DataFrame) -> pd.DataFrame:
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


def _significance(config: ExperimentConfig, summary: pd.DataFrame,
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


def _test_popularity(train: Interactions, test: Interactions) -> float:
    """Mean training popularity of the items users actually held out: the popularity a perfect model would show."""
    return float(item_popularity(train)[test.matrix.indices].mean()) if len(test) else float("nan")


def _versions() -> dict[str, str]:
    from importlib import metadata

    import contrec

    out = {"contrec": contrec.__version__, "python": platform.python_version()}
    for dist in ("torch", "faiss-cpu", "implicit", "numpy", "scipy", "pandas", "matplotlib", "tqdm", "pyyaml"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _manifest(config: ExperimentConfig, prepared: _Prepared, started_at: _dt.datetime, command: str | None,
              wall: dict[str, float], n_cached: int, n_tasks: int) -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    data = prepared.data
    return {
        "command": command,
        "started": started_at.isoformat(timespec="seconds"),
        "versions": _versions(),
        "seeds": list(config.seeds),
        "data": {"source": config.data.label, "files_sha256": prepared.files,
                 "interactions_sha256": prepared.fingerprint,
                 "users": data.n_users, "items": data.n_items, "positives": len(data)},
        "config": config.to_dict(),
        "config_sha256": config.hash(),
        "machine": {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
                    "threads": config.threads, "torch_threads": torch.get_num_threads()},
        "wall_seconds": {k: round(v, 2) for k, v in wall.items()},
        "cells": {"total": n_tasks, "from_cache": n_cached},
    }

