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
   of that seed's final fit. Test is not touched. contrec's settings race by successive
   halving (`contrec.experiments.search`): all train a few epochs, the best third go on,
   resumed from their checkpoints; baselines train every setting fully.
3. **Test.** Each contestant, with its chosen settings, is fitted on the full training split
   of every seed and evaluated once on that seed's test split (full ranking, train items
   excluded), keeping per-user values for the paired tests.

Every fit is a *cell*; with a cache folder, each finished cell is written there atomically
and a rerun with the same config skips it, so an interrupted run resumes where it stopped.
Independent cells (one rung of every search, every test fit) run side by side in worker
processes when the CPUs hold more than one fit (`contrec.experiments.pool`).

Example:
    >>> result = compare(dataset="ml-100k", samplers=["uniform", "popularity"],
    ...                  baselines=["als", "ease"], seeds=3, out="reports/ml-100k")  # doctest: +SKIP
    >>> result.summary.query("metric == 'ndcg' and k == 20")                          # doctest: +SKIP
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from contrec.errors import DataError
from contrec.experiments import fits
from contrec.experiments.cells import Cells, cell_key
from contrec.experiments.config import ExperimentConfig, build_config
from contrec.experiments.manifest import build_manifest
from contrec.experiments.prepare import Prepared, prepare
from contrec.experiments.result import ComparisonResult, significance, summarise, test_popularity
from contrec.experiments.fits import constructor_defaults
from contrec.experiments.pool import CellPool, Job, worker_count
from contrec.experiments.search import halving_rungs, promoted
from contrec.experiments.tuning import best_trial, short_settings, trial_settings
from contrec.runtime.progress import interactive
from contrec.runtime.threads import pinned_threads

__all__ = ["compare", "ComparisonResult", "build_config"]

logger = logging.getLogger("contrec")


def compare(config: "ExperimentConfig | Mapping[str, Any] | str | os.PathLike[str] | None" = None, *,
            dataset: str | None = None, data: Mapping[str, Any] | None = None,
            samplers: Sequence[str] | None = None, baselines: Sequence[str] | None = None,
            similarities: Sequence[str] | None = None, encoders: Sequence[str] | None = None,
            objectives: Sequence[str] | None = None,
            seeds: "int | Sequence[int] | None" = None, tune: bool | None = None, trials: int | None = None,
            threads: int | None = None, workers: int | None = None, search: str | None = None,
            device: str | None = None, precision: str | None = None, positive_weights: str | None = None,
            out: "str | os.PathLike[str] | None" = None,
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
        workers: processes fitting independent cells side by side, ``threads`` each (default: as many as
            the free CPUs hold; `contrec.experiments.pool`). The results do not depend on it.
        search: ``"halving"`` (default: contrec's settings race over epochs, `contrec.experiments.search`)
            or ``"full"`` (every setting trains to the end).
        device: where contrec's fits train (``"cpu"`` default, ``"cuda"``, ``"auto"`` …; baselines and
            retrieval run on the CPU). Off the CPU, one worker process drives the device unless
            ``workers`` says otherwise.
        precision: every contrec contestant's score matmuls, ``"float32"`` (as configured: the default) or
            ``"bfloat16"`` (~1.4 × faster fits on a CPU with AVX512-BF16 at the same NDCG,
            docs/performance.md; inner-product kernels only — a distance kernel's contestant is refused
            before any fit). It is part of each contestant's settings, so float32 cells stay cached.
        positive_weights: how every contrec contestant counts the data's weights (``"none"``, ``"log1p"``,
            ``"linear"``, ``"capped"``; `contrec.training.weights`): its ``params.positive_weights``, over a
            contestant's own setting or search. None leaves each as configured (default: every positive alike).
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
                       tune=tune, trials=trials, threads=threads, workers=workers, search=search, device=device,
                       precision=precision, positive_weights=positive_weights)
    started = time.perf_counter()
    started_at = _dt.datetime.now(_dt.timezone.utc)
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        from contrec.runtime.artifact import check_writable

        out_dir.mkdir(parents=True, exist_ok=True)
        check_writable(out_dir / "report.md")
    with pinned_threads(cfg.threads, blas=True):
        prepared = prepare(cfg, data_dir)
        fits.preflight(cfg, prepared)
        wall = {"prepare": time.perf_counter() - started}
        session = _Session(cfg, prepared, Cells(out_dir / "cells" if out_dir is not None else None), progress)
        try:
            tuned = session.tune()
            tested = session.test(tuned)
        finally:
            session.close()
        result = _assemble(cfg, prepared, tuned, tested)
    wall.update(tuning=tuned.seconds, test=tested.seconds, total=time.perf_counter() - started)
    # the manifest describes the whole experiment, failed contestants included
    result.manifest = build_manifest(cfg, prepared, started_at, command, wall, session.n_cached, session.n_tasks)
    result.manifest["workers"] = session.workers
    if out_dir is not None:
        from contrec.experiments.report import write_report

        write_report(result, out_dir)
    return result


@dataclass
class _Tuned:
    """The tuning phase: every trial, the settings chosen per contestant and seed, curves, failures."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    chosen: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    curves: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # contestant -> why; the others finish
    seconds: float = 0.0


@dataclass
class _Tested:
    """The test phase: tidy result rows, per-user metric arrays and training histories per (contestant, seed)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    per_user: dict[tuple[str, int], pd.DataFrame] = field(default_factory=dict)
    histories: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    seconds: float = 0.0


class _Session:
    """One comparison's fits: the cell cache, the worker pool, one progress bar over every fit, the two phases."""

    def __init__(self, cfg: ExperimentConfig, prepared: Prepared, cells: Cells, progress: bool) -> None:
        from tqdm.auto import tqdm

        self.cfg, self.prepared, self.cells = cfg, prepared, cells
        self.base_key = [prepared.fingerprint, cfg.protocol.__dict__, cfg.threads, cfg.primary]
        if cfg.device != "cpu":  # CPU cells keep the keys they always had (their caches stay valid)
            self.base_key.append(cfg.device)
        self.plans = {c.name: (trial_settings(c, cfg.tuning.trials, cfg.tuning.seed) if cfg.tuning.enabled
                               else [copy.deepcopy(c.params)]) for c in cfg.contestants}
        self.rungs = {c.name: self._rungs(c) for c in cfg.contestants}
        trials = sum(n for c in cfg.contestants for _, n in self.rungs[c.name]) if cfg.tuning.enabled else 0
        self.n_tasks = (trials + len(cfg.contestants)) * len(cfg.seeds)
        self.n_cached = 0
        drawn = progress and interactive()  # a bar on a terminal; one line per finished fit in a log
        self.bar = tqdm(total=self.n_tasks, desc="compare", unit="fit", disable=not drawn, dynamic_ncols=True)
        self.say: Callable[[str], None] = self.bar.write if drawn else logger.info
        self.workers = worker_count(cfg, len(cfg.contestants) * len(cfg.seeds))
        self.pool = CellPool(prepared, cfg, self.workers, self.bar if self.workers == 1 else None)
        folder = cells.folder / "checkpoints" if cells.folder is not None else Path(tempfile.mkdtemp(prefix="contrec-"))
        self.checkpoints, self._own_checkpoints = folder, cells.folder is None
        folder.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        self.pool.close()
        self.bar.close()
        if self._own_checkpoints:
            shutil.rmtree(self.checkpoints, ignore_errors=True)

    def _rungs(self, c: Any) -> list[tuple[int | None, int]]:
        """The search's rungs for contestant ``c``: (epoch budget or None = as configured, settings)."""
        tuning, n = self.cfg.tuning, len(self.plans[c.name])
        if not c.is_contrec or tuning.search == "full":
            return [(None, n)]
        budget = int(c.params.get("epochs", constructor_defaults(c)["epochs"]))
        return list(halving_rungs(n, budget, tuning.min_epochs, tuning.eta))

    # ---------------------------------------------------------------- tuning: per seed, on that seed's own carve
    def tune(self) -> _Tuned:
        cfg, tuned, t0 = self.cfg, _Tuned(), time.perf_counter()
        if not cfg.tuning.enabled:
            tuned.chosen = {c.name: {seed: copy.deepcopy(c.params) for seed in cfg.seeds} for c in cfg.contestants}
            return tuned
        searches = [_Search(c, seed, self.plans[c.name], self.rungs[c.name]) for c in cfg.contestants
                    for seed in cfg.seeds]
        while any(not s.done for s in searches):  # one rung of every search at a time: its cells are independent
            self._rung([s for s in searches if not s.done], tuned.rows)
        for search in searches:
            c, seed = search.contestant, search.seed
            if c.name in tuned.failed:
                continue
            pick = best_trial([search.records[i] for i in search.alive], c)
            if pick is None:
                first = next(iter(search.records.values()))
                tuned.failed[c.name] = f"every tuning trial failed (seed {seed}): {first['error']}"
                continue
            best, params = pick
            record = search.records[search.alive[best]]
            tuned.chosen.setdefault(c.name, {})[seed] = params
            tuned.curves.setdefault(c.name, record["history"])  # the first seed's, for the plot
            self.say(f"tuned {c.name} for seed {seed}: {cfg.primary} {record['score']:.4f} on its "
                     f"validation carve with {short_settings(params, c.params)}")
        tuned.seconds = time.perf_counter() - t0
        return tuned

    def _rung(self, searches: list["_Search"], rows: list[dict[str, Any]]) -> None:
        """The next rung of every unfinished search: cached cells read, the others fitted side by side."""
        cfg = self.cfg
        todo: list[tuple[_Search, int, str]] = []
        jobs: list[Job] = []
        same: dict[str, list[tuple[_Search, int]]] = {}  # a cell asked for twice in one rung (a shared carve)
        for search in searches:
            epochs, _ = search.rungs[search.rung]
            fit, validation = self.prepared.carves[search.seed]
            # keyed by the carve, not the seed: a temporal split gives every seed the same carve,
            # and its trials then run once and are reused from the cell cache
            carve_id = [fit.fingerprint(), validation.fingerprint()]
            for trial in search.alive:
                params = search.plans[trial]
                key = cell_key("tune", self.base_key, cfg.tuning.__dict__, carve_id, search.contestant.model, params,
                               epochs)
                hit = self.cells.get(key)
                if hit is not None:
                    self.n_cached += 1
                    search.records[trial] = {**hit[0], "cached": True}
                    self.bar.update(1)
                    continue
                if key in same:  # a temporal split gives every seed one carve: fit it once
                    same[key].append((search, trial))
                    continue
                same[key] = []
                stem = self.checkpoints / cell_key("trial", self.base_key, cfg.tuning.__dict__, carve_id, params)
                search.stems[trial] = str(stem)
                checkpoint = resume = None
                if epochs is not None and len(search.rungs) > 1:
                    checkpoint = f"{stem}-e{epochs}.ckpt"
                    earlier = [f"{stem}-e{e}.ckpt" for e, _ in search.rungs[:search.rung + 1]]
                    resume = next((p for p in reversed(earlier) if Path(p).is_file()), None)
                todo.append((search, trial, key))
                jobs.append(Job("tune", search.contestant, params, search.seed, epochs, checkpoint, resume))
        for n, outcome in self.pool.run(jobs):
            search, trial, key = todo[n]
            if outcome.error is None:
                self.cells.put(key, outcome.record, None)
                record = {**outcome.record, "cached": False}
            else:  # one setting failing is no reason to stop the study
                record = {"params": jobs[n].params, "score": float("nan"), "fit_s": float("nan"), "history": [],
                          "best_epoch": None, "error": outcome.error, "cached": False}
                self.say(f"{search.contestant.name} seed {search.seed} trial {trial + 1} failed: {outcome.error}")
            search.records[trial] = record
            self.bar.update(1)
            for other, other_trial in same[key]:
                other.records[other_trial] = {**record, "cached": True}
                self.n_cached += 1
                self.bar.update(1)
        for search in searches:
            self._advance(search, rows)

    def _advance(self, search: "_Search", rows: list[dict[str, Any]]) -> None:
        """Record the search's finished rung, promote its best settings, and drop checkpoints no longer needed."""
        epochs, _ = search.rungs[search.rung]
        last = search.rung + 1 == len(search.rungs)
        ahead = [] if last else promoted([search.records[t]["score"] for t in search.alive],
                                         search.rungs[search.rung + 1][1])
        kept = [search.alive[i] for i in ahead]
        for trial in search.alive:
            r = search.records[trial]
            rows.append({"contestant": search.contestant.name, "seed": search.seed, "trial": trial + 1,
                         "rung": search.rung + 1, "epochs": epochs, "params": json.dumps(r["params"], sort_keys=True),
                         "validation": r["score"], "best_epoch": r["best_epoch"], "fit_seconds": r["fit_s"],
                         "trained_epochs": len(r["history"]), "cached": r["cached"], "promoted": trial in kept})
        for trial in search.alive:  # a promoted trial keeps only its newest checkpoint; the others need none
            stem = search.stems.get(trial)
            for path in Path(stem).parent.glob(f"{Path(stem).name}-e*.ckpt") if stem else []:
                if trial not in kept or path.name != f"{Path(stem).name}-e{epochs}.ckpt":
                    path.unlink(missing_ok=True)
        if not last:
            search.alive, search.rung = kept, search.rung + 1
        else:
            search.done = True

    # ---------------------------------------------------------------- test: the chosen settings, every seed
    def test(self, tuned: _Tuned) -> _Tested:
        cfg, tested, t0 = self.cfg, _Tested(), time.perf_counter()
        finished: dict[tuple[str, int], tuple[dict[str, Any], dict[str, np.ndarray]]] = {}
        todo: list[tuple[Any, int, str]] = []
        jobs: list[Job] = []
        for c in cfg.contestants:
            if c.name in tuned.failed:
                self.bar.update(len(cfg.seeds))
                continue
            for seed in cfg.seeds:
                key = cell_key("test", self.base_key, seed, c.model, tuned.chosen[c.name][seed])
                hit = self.cells.get(key)
                if hit is not None and hit[1] is not None:
                    finished[(c.name, seed)] = (hit[0], hit[1])
                    self.n_cached += 1
                    self.bar.update(1)
                else:
                    todo.append((c, seed, key))
                    jobs.append(Job("test", c, tuned.chosen[c.name][seed], seed))
        errors: dict[tuple[str, int], str] = {}
        for n, outcome in self.pool.run(jobs):
            c, seed, key = todo[n]
            self.bar.update(1)
            if outcome.error is not None:
                errors[(c.name, seed)] = outcome.error
                self.say(f"{c.name} seed {seed} failed: {outcome.error}")
                continue
            self.cells.put(key, outcome.record, outcome.arrays)
            finished[(c.name, seed)] = (outcome.record, outcome.arrays)  # type: ignore[assignment]
        for c in cfg.contestants:  # in the config's order, whatever order the workers finished in
            first = next((seed for seed in cfg.seeds if (c.name, seed) in errors), None)
            if first is not None:
                tuned.failed[c.name] = f"seed {first}: {errors[(c.name, first)]}"
            for seed in cfg.seeds:
                if c.name not in tuned.failed and (c.name, seed) in finished:
                    self._keep(tested, c, seed, *finished[(c.name, seed)])
        tested.seconds = time.perf_counter() - t0
        return tested

    def _keep(self, tested: _Tested, c: Any, seed: int, record: dict[str, Any], arrays: dict[str, np.ndarray]
              ) -> None:
        cfg = self.cfg
        model_name = "contrec" if c.is_contrec else c.model
        for r in record["rows"]:
            tested.rows.append({"contestant": c.name, "model": model_name, "sampler": c.sampler, "seed": seed, **r})
        tested.per_user[(c.name, seed)] = pd.DataFrame(
            {name: values for name, values in arrays.items() if name != "users"},
            index=pd.Index(arrays["users"], name="user"))
        tested.histories[(c.name, seed)] = record["history"]
        primary = next(r["value"] for r in record["rows"]
                       if r["metric"] == cfg.primary_metric[0] and r["k"] == cfg.primary_metric[1])
        self.say(f"{c.name} seed {seed}: {cfg.primary} {primary:.4f} (fit {record['fit_s']:.1f} s)")


@dataclass
class _Search:
    """One contestant's settings racing on one seed's carve (`contrec.experiments.search`)."""

    contestant: Any
    seed: int
    plans: list[dict[str, Any]]
    rungs: list[tuple[int | None, int]]
    rung: int = 0
    done: bool = False
    alive: list[int] = field(default_factory=list)  # trial positions still in the race
    records: dict[int, dict[str, Any]] = field(default_factory=dict)  # each trial's latest rung
    stems: dict[int, str] = field(default_factory=dict)  # each trial's checkpoint path, less its rung

    def __post_init__(self) -> None:
        self.alive = list(range(len(self.plans)))


def _assemble(cfg: ExperimentConfig, prepared: Prepared, tuned: _Tuned, tested: _Tested) -> ComparisonResult:
    """The result over the contestants that finished (the manifest is added by the caller)."""
    rows, per_user, histories, failed = tested.rows, tested.per_user, tested.histories, tuned.failed
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
    summary = summarise(results)
    best, tests = significance(cfg, summary, per_user)
    reference = float(np.mean([test_popularity(*prepared.splits[s]) for s in cfg.seeds]))
    result = ComparisonResult(
        config=cfg, results=results, summary=summary, tests=tests, per_user=per_user,
        tuning=pd.DataFrame(tuned.rows, columns=["contestant", "seed", "trial", "rung", "epochs", "params",
                                                 "validation", "best_epoch", "fit_seconds", "trained_epochs", "cached",
                                                 "promoted"]),
        chosen=tuned.chosen, curves=tuned.curves, audit=pd.DataFrame([c.as_dict() for c in prepared.audit]),
        manifest={}, best=best, reference_popularity=reference, histories=histories, failed=failed)
    return result
