"""Fitting a comparison's cells side by side: in this process, or in worker processes when the CPUs allow.

Each worker holds the prepared splits and carves (sent once, when it starts) and pins its
torch / FAISS / BLAS threads to the comparison's ``threads``, so ``workers × threads`` fits
the machine and every cell runs exactly as it would alone with that many threads (the same
result, serial or parallel). Workers are spawned, not forked: a forked copy of a process
whose thread pools are running can deadlock. A failing fit comes back as an error record
(`contrec.experiments.fits.CELL_ERRORS`); a crashing worker stops the comparison with a
one-line error, and finished cells are already in the cache. A worker whose comparison process
is gone (killed by a scheduler's SIGTERM or SIGKILL, which no cleanup code sees) exits within a
second instead of fitting on for nobody.

Example:
    >>> with CellPool(prepared, cfg, workers=2) as pool:                      # doctest: +SKIP
    ...     for index, outcome in pool.run([Job("test", contestant, params, seed=0)]):
    ...         ...
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from contrec.errors import ContrecError
from contrec.experiments import fits
from contrec.experiments.config import Contestant, ExperimentConfig
from contrec.experiments.prepare import Prepared
from contrec.runtime.threads import pinned_threads, usable_cpus

__all__ = ["Job", "Outcome", "CellPool", "worker_count", "exit_with_parent"]


@dataclass(frozen=True)
class Job:
    """One cell to fit: a tuning trial on seed ``seed``'s carve (``kind="tune"``) or a test fit."""

    kind: str
    contestant: Contestant
    params: dict[str, Any]
    seed: int
    epochs: int | None = None  # a tuning rung's epoch budget (contrec)
    checkpoint: str | None = None
    resume: str | None = None


@dataclass
class Outcome:
    """A finished job: its record (and per-user arrays for a test cell), or why it failed."""

    record: dict[str, Any] | None
    arrays: dict[str, np.ndarray] | None = None
    error: str | None = None


def worker_count(cfg: ExperimentConfig, jobs: int) -> int:
    """Processes for ``jobs`` independent cells: ``cfg.workers``, or as many as the CPUs hold at ``cfg.threads`` each."""
    if cfg.workers is not None:
        return max(1, min(cfg.workers, jobs))
    if cfg.device != "cpu":  # one process drives the accelerator; CPU-sized workers would queue on it
        return 1
    per = cfg.threads or 1
    return max(1, min(usable_cpus() // per, jobs))


def run_job(job: Job, prepared: Prepared, cfg: ExperimentConfig, bar: Any = None) -> Outcome:
    """Fit one cell here; the errors a contestant may raise become the outcome's ``error``."""
    try:
        if job.kind == "tune":
            fit, validation = prepared.carves[job.seed]
            return Outcome(fits.run_tuning_trial(job.contestant, job.params, fit, validation, cfg, bar, job.epochs,
                                                 job.checkpoint, job.resume))
        train, test = prepared.splits[job.seed]
        record, arrays = fits.run_test_cell(job.contestant, job.params, job.seed, train, test, cfg, bar)
        return Outcome(record, arrays)
    except fits.CELL_ERRORS as err:
        return Outcome(None, None, fits.reason(err))


_WORKER: dict[str, Any] = {}


def _start_worker(prepared: Prepared, cfg: ExperimentConfig) -> None:
    exit_with_parent()
    _WORKER.update(prepared=prepared, cfg=cfg, threads=contextlib.ExitStack())
    _WORKER["threads"].enter_context(pinned_threads(cfg.threads, blas=True))  # for the worker's whole life


def exit_with_parent(poll_s: float = 1.0) -> None:
    """End this process when the one that started it is gone (it was re-parented: the parent's pid changed).

    A watcher thread, since a worker busy in a fit reads nothing from its pool until the fit ends."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)  # nothing to clean up that outlives us: the cell cache is written by the parent

    threading.Thread(target=watch, name="contrec-exit-with-parent", daemon=True).start()


def _in_worker(job: Job) -> Outcome:
    return run_job(job, _WORKER["prepared"], _WORKER["cfg"])


class CellPool:
    """Runs jobs serially here (one worker) or in ``workers`` spawned processes; see the module notes."""

    def __init__(self, prepared: Prepared, cfg: ExperimentConfig, workers: int = 1, bar: Any = None) -> None:
        self.prepared, self.cfg, self.workers, self.bar = prepared, cfg, int(workers), bar
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> "CellPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[int, Outcome]]:
        """(position in ``jobs``, outcome) as each job finishes (in order when serial)."""
        if self.workers <= 1 or len(jobs) <= 1:
            for n, job in enumerate(jobs):
                yield n, run_job(job, self.prepared, self.cfg, self.bar)
            return
        if self._executor is None:
            self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_start_worker, initargs=(self.prepared, self.cfg))
        pending = {self._executor.submit(_in_worker, job): n for n, job in enumerate(jobs)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield pending.pop(future), future.result()
        except BrokenProcessPool:
            raise ContrecError("a comparison worker process died (out of memory or a crash in a native "
                               "library); finished cells are cached: rerun with --workers 1 to see which fit fails"
                               ) from None
