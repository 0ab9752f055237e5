"""Defaults that adapt to the data: the automatic validation carve of `ContrastiveRecommender.fit`.

When ``fit`` is given no validation data and ``validation_size`` > 0, the model holds out that
share of each user's positives (a seeded carve of the data it was given — never anything else),
trains each candidate setting on the rest with early stopping on NDCG@``validation_k``, keeps
the chosen setting (below) with the epoch count it peaked at, and then trains once more on
**every** positive with them. Every interaction stays known to the final model (nothing is recommended back).

What adapts is what the user left open: ``epochs`` always (it is the most), and the settings in
`ADAPTIVE` only while their parameter is at its open default (``user_tower="auto"`` adapts;
``user_tower="id"`` is pinned). The first candidate of each is the incumbent: another is chosen
only when its carve NDCG beats the incumbent's by more than that parameter's margin, because
one carve fit per candidate is a noisy judge and the incumbent is the setting that held up on
every carve measured. The cost is bounded: one carve fit per candidate, each at most ``epochs``
epochs, the incumbent's stopped after ``patience`` epochs without progress and a challenger's after
half as many (it has to win clearly, not late; on the nine carves measured this changed no choice
and cut the history tower's carve fit by 20–50 %). With two candidates and a 10 % carve that is at most
2 × 0.9 + 1 = 2.8 times the positive-epochs of one fit with the settings pinned — inside the 3 × budget
issue 17 allows the default fit (a test counts them).

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
from typing import TYPE_CHECKING, Any, Callable

from contrec.data.interactions import Interactions
from contrec.data.splits import split_random
from contrec.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from contrec.models.contrastive import ContrastiveRecommender

__all__ = ["ADAPTIVE", "Adaptive", "Trial", "validation_carve", "select_settings", "open_fallbacks"]

logger = logging.getLogger("contrec")


@dataclass(frozen=True)
class Adaptive:
    """A parameter the default fit chooses on its carve while it holds its ``open`` value.

    ``candidates[0]`` is the incumbent; another candidate wins only by more than ``margin``
    (relative carve NDCG), and ``fallback`` is what the open value means without a carve.
    """

    name: str
    open: Any
    candidates: tuple[Any, ...]
    margin: float
    fallback: Any


# The user tower: on the default fit's own 10 % carve (2026-12-07; docs/encoders.md) the history
# tower scored +0.4 / −0.4 / −1.2 % against the ID tower on ml-100k (seeds 0–2), −4.5 / −2.3 / −2.0 %
# on ml-latest-small and +13.3 / +6.9 / +9.6 % on a sparse play-count log, where it is also ~10 %
# better on the test splits; on MovieLens it is 2.4–2.8 % worse there. A 3 % margin keeps the ID
# tower wherever the two are within a carve's noise.
ADAPTIVE: tuple[Adaptive, ...] = (
    Adaptive("user_tower", "auto", ("id", "history"), margin=0.03, fallback="id"),
)

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


def _carve_log(settings: dict[str, Any], several: bool) -> Callable[[str], None]:
    """The epoch lines of one carve fit: "validation carve: epoch 3 …", naming the candidate when there are several."""
    label = f" ({', '.join(f'{k}={v!r}' for k, v in settings.items())})" if several and settings else ""
    return lambda message: logger.info("validation carve%s: %s", label, message)


def validation_carve(train: Interactions, share: float, seed: int) -> tuple[Interactions, Interactions]:
    """``share`` of each user's positives held out (seeded; a user keeps at least one to train on)."""
    return split_random(train, test_size=share, seed=seed + _CARVE_SEED)


def open_fallbacks(model: "ContrastiveRecommender") -> dict[str, Any]:
    """What each open adaptive parameter means when no carve chooses it (e.g. ``user_tower="auto"`` → ``"id"``)."""
    return {a.name: a.fallback for a in ADAPTIVE if _is_open(model, a)}


def _is_open(model: "ContrastiveRecommender", adaptive: Adaptive) -> bool:
    value = getattr(model, adaptive.name)
    return isinstance(value, type(adaptive.open)) and value == adaptive.open


def candidates(model: "ContrastiveRecommender") -> list[dict[str, Any]]:
    """The settings to try: every combination of the open adaptive parameters' candidates that the
    model's other settings allow (a history user tower beside a graph item tower is not one); the
    incumbent first."""
    out: list[dict[str, Any]] = [{}]
    for adaptive in ADAPTIVE:
        if _is_open(model, adaptive):
            out = [{**settings, adaptive.name: value} for settings in out for value in adaptive.candidates]
    allowed = []
    for settings in out:
        try:
            model._configs(chosen=settings)
        except ConfigError:
            continue
        allowed.append(settings)
    if not allowed:  # no candidate fits the other settings: the fit reports why, in one line, as it would pinned
        return [out[0]]
    return allowed


def _margin(names: Any) -> float:
    """The largest margin among the adaptive parameters ``names`` (0 for none)."""
    return max((a.margin for a in ADAPTIVE if a.name in names), default=0.0)


def _winner(trials: list[Trial]) -> Trial:
    """The incumbent (``trials[0]``) unless another trial beats it by more than the largest margin of the
    parameters it changes."""
    incumbent, best = trials[0], max(trials, key=lambda t: t.validation_ndcg)
    changed = [name for name, value in best.settings.items() if incumbent.settings.get(name) != value]
    return best if best.validation_ndcg > incumbent.validation_ndcg * (1.0 + _margin(changed)) else incumbent


def _choice(trials: list[Trial], chosen: Trial) -> str:
    """What won and why, against the incumbent (``trials[0]``): "user_tower='history' (+9.6 % over
    user_tower='id' on the carve, margin 3 %)" or "user_tower='id' (user_tower='history': +0.4 %, under its 3 % margin)"."""
    def name(trial: Trial) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in trial.settings.items()) or "defaults"

    def change(trial: Trial) -> str:
        return f"{100 * (trial.validation_ndcg / max(trials[0].validation_ndcg, 1e-12) - 1.0):+.1f} %"

    def margin(trial: Trial) -> str:
        return f"{100 * _margin(trial.settings):.0f} %"

    if chosen != trials[0]:
        return f"{name(chosen)} ({change(chosen)} over {name(trials[0])} on the carve, margin {margin(chosen)})"
    others = "; ".join(f"{name(t)}: {change(t)}, under its {margin(t)} margin" for t in trials[1:])
    return f"{name(chosen)} ({others})"


def select_settings(model: "ContrastiveRecommender", train: Interactions) -> tuple[dict[str, Any], list[Trial]]:
    """The best candidate on the carve, with ``epochs`` set to its best epoch count, and every trial."""
    fit_part, carve = validation_carve(train, float(model.validation_size), int(model.seed))
    if len(carve) == 0:  # too few positives per user to hold any out: train on everything, as pinned
        return {}, []
    trials = []
    tried = candidates(model)
    for settings in tried:
        started = time.perf_counter()
        # a challenger must win clearly, not late: it stops after half the patience without progress
        patience = model.patience if not trials else max(1, (int(model.patience) + 1) // 2)
        trial = type(model)(**{**model.get_params(), **settings, "validation_size": 0.0, "verbose": False,
                               "patience": patience})
        trial._epoch_log = _carve_log(settings, len(tried) > 1)
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
    chosen = _winner(trials)
    if len(trials) > 1 and model.verbose:
        logger.info("validation carve: chose %s", _choice(trials, chosen))
    return {**chosen.settings, "epochs": chosen.best_epoch}, trials
