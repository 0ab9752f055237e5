"""One fit of a comparison (a *cell*): a tuning trial on a carve, or a test fit with its evaluation.

Contestants are built here from their settings; a fit's per-epoch log goes into the
comparison's progress bar, and what a failing fit may raise without stopping the study is
listed in `CELL_ERRORS`.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import numpy as np

from contrec.data.interactions import Interactions
from contrec.errors import ConfigError, ContrecError
from contrec.evaluation import evaluate
from contrec.experiments.config import Contestant, ExperimentConfig
from contrec.experiments.prepare import Prepared
from contrec.runtime.device import SlowBfloat16Warning, native_bfloat16, resolve_device

__all__ = ["make_model", "constructor_defaults", "with_overrides", "quiet_fit", "run_tuning_trial", "run_test_cell",
           "CELL_ERRORS", "reason", "preflight"]

logger = logging.getLogger("contrec")


def with_overrides(params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
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

def make_model(contestant: Contestant, params: Mapping[str, Any], seed: int, threads: int | None,
               device: str = "cpu") -> Any:
    if contestant.is_contrec:
        from contrec.models.contrastive import ContrastiveRecommender

        try:
            return ContrastiveRecommender(**{"device": device, **params, "seed": seed, "threads": threads,
                                             "verbose": False})
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

def constructor_defaults(contestant: Contestant) -> dict[str, Any]:
    """The contestant's model's constructor defaults (read from its signature)."""
    if contestant.is_contrec:
        from contrec.models.contrastive import ContrastiveRecommender

        return ContrastiveRecommender().get_params()
    from contrec.models.baselines import make_baseline

    return make_baseline(contestant.model).get_params()

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
def quiet_fit(bar: Any = None, label: str = "") -> Iterator[None]:
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
            warnings.simplefilter("ignore", SlowBfloat16Warning)  # said once by preflight
            yield
    finally:
        logger.setLevel(before)
        for handler in handlers:
            handler.removeFilter(_warnings_only)
        logger.handlers[:] = handlers
        logger.propagate = propagate

def _warnings_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING

def _fn_rate(history: list[dict[str, Any]]) -> float:
    values = [r["false_negative_rate"] for r in history if "false_negative_rate" in r]
    return float(np.mean(values)) if values else float("nan")

def _clean_history(history: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    keep = ("epoch", "loss", "seconds", "elapsed", "validation", "false_negative_rate", "masked_share",
            "sampler_share", "best")
    return [{k: r[k] for k in keep if k in r} for r in history or []]

def run_tuning_trial(contestant: Contestant, params: dict[str, Any], fit: Interactions,
                     validation: Interactions, config: ExperimentConfig, bar: Any = None, epochs: int | None = None,
                     checkpoint: str | None = None, resume: str | None = None) -> dict[str, Any]:
    """One setting scored on the carve. contrec: ``epochs`` caps this rung of a successive-halving search,
    ``checkpoint`` is written at every epoch end and ``resume`` continues an earlier rung's run."""
    metric, k = config.primary_metric
    model_params = dict(params)
    if contestant.is_contrec:
        model_params["validation_k"] = k
        if epochs is not None:
            model_params["epochs"] = epochs
    model = make_model(contestant, model_params, config.tuning.seed, config.threads, config.device)
    t0 = time.perf_counter()
    with quiet_fit(bar, f"tuning {contestant.name}"):
        if contestant.is_contrec:  # early stopping on the carve; its best epoch is kept
            model.fit(fit, validation, checkpoint=checkpoint, resume=resume)
        else:
            model.fit(fit)
    fit_s = time.perf_counter() - t0
    table = evaluate(model, fit, validation, k=k, exclude="train")  # the carve is known to contrec: it early-stopped on it
    score = float(table.loc[table["metric"] == metric, "value"].iloc[0])
    history = _clean_history(getattr(model, "history_", None))
    best_epoch = next((r["epoch"] for r in history if r.get("best")), None)
    return {"params": params, "score": score, "fit_s": fit_s, "history": history, "best_epoch": best_epoch}

def run_test_cell(contestant: Contestant, params: dict[str, Any], seed: int, train: Interactions,
                   test: Interactions, config: ExperimentConfig, bar: Any = None
                   ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    model = make_model(contestant, params, seed, config.threads, config.device)
    t0 = time.perf_counter()
    with quiet_fit(bar, f"{contestant.name} seed {seed}"):
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


# What a contestant's fit may raise without the comparison stopping: contrec's own refusals (e.g. not
# enough memory for a dense item-item model), an allocation that failed, a numerical failure. A segmentation
# fault cannot be caught in-process; contrec.runtime.blas keeps the dense solves clear of the ones seen here.
CELL_ERRORS = (ContrecError, MemoryError, np.linalg.LinAlgError, RuntimeError, FloatingPointError)


def reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, MemoryError):
        return f"out of memory{': ' + text if text else ''}"
    return text if isinstance(err, ContrecError) and text else f"{type(err).__name__}: {text or 'no message'}"

def preflight(config: ExperimentConfig, prepared: Prepared) -> None:
    """Build every contestant's model (and fit each sampler) once, so a bad setting fails before any training."""
    train = prepared.splits[config.seeds[0]][0]
    for c in config.contestants:
        try:  # the contestant's name in the one line: a comparison may hold several contrec contestants
            model = make_model(c, c.params, 0, config.threads, config.device)
            model.check()
            if c.is_contrec:
                model.check(train)
        except ContrecError as err:
            raise ConfigError(f"contestant {c.name!r}: {err}") from None
    low = config.bfloat16_contestants
    device = resolve_device(config.device)
    if low and not native_bfloat16(device):  # once here, not once per fit
        warnings.warn(f"precision bfloat16 ({', '.join(low)}): {device} has no fast bfloat16 matmuls, so these "
                      "fits will be slower than in float32, not faster", SlowBfloat16Warning, stacklevel=2)
