"""Multi-fidelity tuning (successive halving over epochs) and cells fitted side by side in worker processes."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from contrec.errors import ConfigError
from contrec.experiments import build_config, compare
from contrec.experiments import fits as fits_module
from contrec.experiments.pool import worker_count
from contrec.experiments.prepare import prepare
from contrec.experiments.search import halving_rungs, promoted
from tests.test_compare import TINY_CONTREC, _tiny_config


@pytest.mark.parametrize("n, budget, expected", [
    (6, 20, [(3, 6), (9, 2), (20, 1)]),
    (9, 20, [(3, 9), (9, 3), (20, 1)]),
    (27, 30, [(3, 27), (9, 9), (27, 3), (30, 1)]),
    (2, 20, [(3, 2), (20, 1)]),  # one setting left: straight to the full budget
    (1, 20, [(20, 1)]),  # nothing to race
    (6, 3, [(3, 6)]),  # the budget is the first rung
])
def test_halving_rungs(n, budget, expected):
    rungs = halving_rungs(n, budget, min_epochs=3, eta=3)
    assert rungs == expected
    assert rungs[-1][0] == budget and all(a[1] >= b[1] for a, b in zip(rungs, rungs[1:]))


def test_promotion_keeps_the_best_and_never_a_failed_setting():
    assert promoted([0.1, float("nan"), 0.3, 0.2], 2) == [2, 3]
    assert promoted([0.2, 0.2, 0.1], 1) == [0]  # a tie goes to the earlier setting
    assert promoted([float("nan")] * 3, 1) == []
    assert promoted([0.5], 4) == [0]


def test_search_settings_are_checked():
    with pytest.raises(ConfigError, match="tuning.search must be one of halving, full"):
        build_config({"dataset": "ml-100k", "contestants": ["uniform"], "tuning": {"search": "bayes"}})
    with pytest.raises(ConfigError, match="tuning.eta must be an integer ≥ 2"):
        build_config({"dataset": "ml-100k", "contestants": ["uniform"], "tuning": {"eta": 1}})
    with pytest.raises(ConfigError, match="workers must be a positive integer"):
        build_config({"dataset": "ml-100k", "contestants": ["uniform"], "workers": 0})


def test_worker_count_fits_the_cpus(monkeypatch):
    import contrec.experiments.pool as pool

    monkeypatch.setattr(pool, "usable_cpus", lambda: 8)
    cfg = build_config({"dataset": "ml-100k", "contestants": ["uniform"], "threads": 2})
    assert worker_count(cfg, jobs=100) == 4 and worker_count(cfg, jobs=3) == 3
    assert worker_count(build_config(cfg, threads=8), jobs=100) == 1
    assert worker_count(build_config(cfg, workers=2), jobs=100) == 2


def test_a_promoted_setting_continues_exactly_as_a_longer_fit(tmp_path):
    """Rung 2 resumes rung 1's checkpoint: the same history and score as one uninterrupted fit of the longer budget."""
    cfg = build_config(_tiny_config(tmp_path))
    prepared = prepare(cfg, None)
    fit, validation = prepared.carves[0]
    contestant = cfg.contestants[0]
    params = dict(contestant.params, patience=10)  # no early stop: every epoch is trained
    ckpt = str(tmp_path / "trial.ckpt")
    short = fits_module.run_tuning_trial(contestant, params, fit, validation, cfg, epochs=2, checkpoint=ckpt)
    assert len(short["history"]) == 2
    resumed = fits_module.run_tuning_trial(contestant, params, fit, validation, cfg, epochs=4,
                                           checkpoint=str(tmp_path / "trial-2.ckpt"), resume=ckpt)
    fresh = fits_module.run_tuning_trial(contestant, params, fit, validation, cfg, epochs=4)
    assert resumed["score"] == fresh["score"] and resumed["best_epoch"] == fresh["best_epoch"]
    strip = [{k: v for k, v in r.items() if k in ("epoch", "loss", "validation")} for r in resumed["history"]]
    assert strip == [{k: v for k, v in r.items() if k in ("epoch", "loss", "validation")} for r in fresh["history"]]


def test_full_search_trains_every_setting_to_the_end(tmp_path):
    config = _tiny_config(tmp_path)
    config["contestants"] = [{"sampler": "uniform", "params": TINY_CONTREC}]
    config["tuning"]["search"] = "full"
    result = compare(config, out=tmp_path / "out", progress=False)
    assert result.tuning["rung"].eq(1).all() and len(result.tuning) == 4
    assert result.tuning["epochs"].isna().all()
    assert "every setting trains to the end" in (tmp_path / "out" / "report.md").read_text()
    assert not list((tmp_path / "out" / "cells" / "checkpoints").glob("*.ckpt"))


def test_parallel_workers_give_the_same_numbers_and_clean_up(tmp_path):
    """Two spawned workers, one thread each, fit the same cells as one process: identical results and choices."""
    config = _tiny_config(tmp_path)
    config["contestants"] = [{"sampler": "uniform", "params": TINY_CONTREC}, {"baseline": "ease",
                                                                                "space": {"l2": [1.0, 10.0]}}]
    serial = compare(config, out=tmp_path / "serial", progress=False)
    parallel = compare({**config, "workers": 2}, out=tmp_path / "parallel", progress=False)
    quality = ~serial.results["metric"].isin(["fit_seconds"])
    pd.testing.assert_frame_equal(parallel.results[quality].reset_index(drop=True),
                                  serial.results[quality].reset_index(drop=True))
    assert parallel.chosen == serial.chosen
    columns = ["contestant", "seed", "trial", "rung", "validation", "promoted"]
    order = ["contestant", "seed", "rung", "trial"]
    pd.testing.assert_frame_equal(parallel.tuning[columns].sort_values(order).reset_index(drop=True),
                                  serial.tuning[columns].sort_values(order).reset_index(drop=True))
    assert not list((tmp_path / "parallel" / "cells" / "checkpoints").glob("*.ckpt"))  # no checkpoint left behind
    assert json.loads((tmp_path / "parallel" / "manifest.json").read_text())["config"]["workers"] == 2
    assert all(math.isfinite(v) for v in parallel.tuning["validation"])
