"""Defaults that adapt to the data: the automatic validation carve of `ContrastiveRecommender.fit`.

When ``fit`` is given no validation data and ``validation_size`` > 0, the model holds out that
share of each user's positives (a seeded carve of the data it was given — never anything else),
trains each candidate setting on the rest with early stopping on NDCG@``validation_k``, keeps
the setting and epoch count that scored best, and then trains once more on **every** positive
with them. Every interaction stays known to the final model (nothing is recommended back).

What adapts is what the user left open: ``epochs`` always (it is the most), and the settings in
`ADAPTIVE` only while their parameter is at its open default (``temperature=None`` — the
kernel's own τ — adapts; ``temperature=0.2`` is pinned). The cost is bounded: the carve fits
run at most ``epochs`` epochs each and stop after ``patience`` without progress.

Example:
    >>> import pandas as pd
    >>> from contrec.data.interactions import Interactions
    >>> fit_part, carve = validation_carve(Interactions.from_frame(pd.DataFrame(
    ...     {"user": ["a"] * 10, "item": list("abcdefghij")})), 0.2, seed=0)
    >>> len(fit_part), len(carve)
    (8, 2)
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from contrec.data.interactions import Interactions
from contrec.data.splits import split_random

if TYPE_CHECKING:  # pragma: no cover
    from contrec.models.contrastive import ContrastiveRecommender

__all__ = ["ADAPTIVE", "Trial", "validation_carve", "select_settings"]

logger = logging.getLogger("contrec")

# (parameter, its open value, the candidates tried while it is open). Chosen on validation carves of
# ml-100k and ml-latest-small seed-0 training splits (docs/encoders.md); None = the kernel's own τ.
ADAPTIVE: tuple[tuple[str, Any, tuple[Any, ...]], ...] = ()

_CARVE_SEED = 7_919  # the carve differs from any split a user seeds with the same number


@dataclass(frozen=True)
class Trial:
    """One candidate setting fitted on the carve: what it changed, its best validation NDCG and epoch."""

    settings: dict[str, Any]
    validation_ndcg: float
    best_epoch: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _carve_log(message: str) -> None:
    logger.info("validation carve: %s", message)


def validation_carve(train: Interactions, share: float, seed: int) -> tuple[Interactions, Interactions]:
    """``share`` of each user's positives held out (seeded; a user keeps at least one to train on)."""
    return split_random(train, test_size=share, seed=seed + _CARVE_SEED)


def candidates(model: "ContrastiveRecommender") -> list[dict[str, Any]]:
    """The settings to try: every combination of the open adaptive parameters' candidates."""
    out: list[dict[str, Any]] = [{}]
    for name, open_value, values in ADAPTIVE:
        if getattr(model, name) == open_value:
            out = [{**settings, name: value} for settings in out for value in values]
    return out


def select_settings(model: "ContrastiveRecommender", train: Interactions) -> tuple[dict[str, Any], list[Trial]]:
    """The best candidate on the carve, with ``epochs`` set to its best epoch count, and every trial."""
    fit_part, carve = validation_carve(train, float(model.validation_size), int(model.seed))
    if len(carve) == 0:  # too few positives per user to hold any out: train on everything, as pinned
        return {}, []
    trials = []
    for settings in candidates(model):
        started = time.perf_counter()
        trial = type(model)(**{**model.get_params(), **settings, "validation_size": 0.0, "verbose": False})
        trial._epoch_log = _carve_log
        with warnings.catch_warnings():  # the model has said what it will say about the data once
            warnings.simplefilter("ignore", UserWarning)
            trial.fit(fit_part, carve)
        best = next((r for r in trial.history_ if r.get("best")), trial.history_[-1])
        trials.append(Trial(settings, float(best.get("validation", 0.0)), int(best["epoch"]),
                            time.perf_counter() - started))
        if model.verbose:
            logger.info("validation carve (%d positives): %s → NDCG@%d %.4f at epoch %d", len(carve),
                        settings or "defaults", model.validation_k, trials[-1].validation_ndcg,
                        trials[-1].best_epoch)
    chosen = max(trials, key=lambda t: t.validation_ndcg)
    return {**chosen.settings, "epochs": chosen.best_epoch}, trials
