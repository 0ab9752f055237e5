"""Checkpoint and resume: a resumed fit equals an uninterrupted one, even after a SIGKILL mid-epoch."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import contrec
from contrec import ContrastiveRecommender, split_random
from contrec.training.checkpoint import load_checkpoint
from contrec.cli import main
from contrec.errors import ConfigError, ModelFileError

from .conftest import SAMPLE_CSV
from .contracts import skewed_interactions

SMALL = dict(dim=8, epochs=4, batch_size=16, n_negatives=8, lr=0.05, verbose=False, seed=3, threads=1)
SETUPS = {
    "uniform, validation": ({}, True),
    "hard sampler (refreshed table)": ({"sampler": "hard", "sampler_params": {"top_m": 4, "refresh_every": 5}}, False),
    "history tower with dropout": ({"user_tower": "history", "history_dropout": 0.3}, False),
    "sparse-adam": ({"optimizer": "sparse-adam"}, False),
    "learned temperature": ({"learn_temperature": True, "similarity": "dot"}, True),
}


def _vectors(model) -> tuple[np.ndarray, np.ndarray]:
    return model.user_vectors_, model.item_vectors_


@pytest.mark.parametrize("setup", list(SETUPS))
def test_resuming_any_checkpoint_gives_the_uninterrupted_model(tmp_path, monkeypatch, setup):
    extra, with_validation = SETUPS[setup]
    data = skewed_interactions(n_users=40, n_items=20)
    train, valid = split_random(data, 0.25, seed=0) if with_validation else (data, None)
    kept: list[Path] = []
    import contrec.training.checkpoint as training

    real_save = training.save_checkpoint

    def keep_every_version(path, arrays, meta):  # remember each checkpoint the run writes
        out = real_save(path, arrays, meta)
        kept.append(shutil.copy(out, tmp_path / f"v{len(kept)}.ckpt"))
        return out

    monkeypatch.setattr(training, "save_checkpoint", keep_every_version)
    whole = ContrastiveRecommender(**SMALL, **extra).fit(train, valid, checkpoint=tmp_path / "run.ckpt",
                                                         checkpoint_every=3)
    monkeypatch.setattr(training, "save_checkpoint", real_save)
    assert len(kept) >= SMALL["epochs"] + 2  # mid-epoch ones and one per epoch end
    chosen = [kept[1], kept[len(kept) // 2], kept[-2]]  # early, middle and late
    chosen.append(next(v for v in kept if load_checkpoint(v)[1]["batch"] > 0))  # certainly mid-epoch
    for version in chosen:
        resumed = ContrastiveRecommender(**SMALL, **extra).fit(train, valid, resume=version)
        for a, b in zip(_vectors(resumed), _vectors(whole)):
            np.testing.assert_array_equal(a, b)
        assert [r["epoch"] for r in resumed.history_] == [r["epoch"] for r in whole.history_]


def test_resume_refuses_other_settings_other_data_and_model_files(tmp_path):
    data = skewed_interactions(n_users=40, n_items=20)
    ckpt = tmp_path / "run.ckpt"
    model = ContrastiveRecommender(**SMALL).fit(data, checkpoint=ckpt)
    with pytest.raises(ConfigError, match=r"other settings or data \(settings differ\)"):
        ContrastiveRecommender(**{**SMALL, "dim": 16}).fit(data, resume=ckpt)
    other = skewed_interactions(n_users=40, n_items=20, seed=1)
    with pytest.raises(ConfigError, match=r"\(train differ\)"):
        ContrastiveRecommender(**SMALL).fit(other, resume=ckpt)
    model.save(tmp_path / "m.contrec")
    with pytest.raises(ModelFileError, match="a contrec model file, not a training checkpoint"):
        ContrastiveRecommender(**SMALL).fit(data, resume=tmp_path / "m.contrec")
    (tmp_path / "cut.ckpt").write_bytes(ckpt.read_bytes()[:200])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        ContrastiveRecommender(**SMALL).fit(data, resume=tmp_path / "cut.ckpt")
    with pytest.raises(ConfigError, match="checkpoint_every must be an integer ≥ 0"):
        ContrastiveRecommender(**SMALL).fit(data, checkpoint=ckpt, checkpoint_every=-1)
    # more epochs than the finished run: training simply goes on from where it ended
    longer = ContrastiveRecommender(**{**SMALL, "epochs": 6}).fit(data, resume=ckpt)
    assert [r["epoch"] for r in longer.history_] == [1, 2, 3, 4, 5, 6]


FIT = ["fit", str(SAMPLE_CSV), "--user", "user_id", "--item", "item_id", "--epochs", "30", "--validation-size", "0",
       "--dim", "16",
       "--batch-size", "8", "--n-negatives", "16", "--threads", "1", "--seed", "5", "-q"]


def test_a_training_killed_mid_epoch_resumes_to_the_same_model(tmp_path):
    ckpt, killed_out = tmp_path / "run.ckpt", tmp_path / "killed.contrec"
    env = {**os.environ, "PYTHONPATH": str(Path(contrec.__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "contrec", *FIT, "--checkpoint", str(ckpt),
                             "--checkpoint-every", "7", "-o", str(killed_out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.7)  # let it write a few more, then kill it wherever it is — mid-write included
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be killed"
    assert not killed_out.exists()  # the model file is written only at the end
    # whatever instant the kill hit, the checkpoint on disk is whole
    _, meta = load_checkpoint(ckpt)
    assert 0 < meta["step"] and not meta["done"]
    resumed_out, whole_out = tmp_path / "resumed.contrec", tmp_path / "whole.contrec"
    assert main([*FIT, "--checkpoint", str(ckpt), "--resume", str(ckpt), "-o", str(resumed_out)]) == 0
    assert not list(tmp_path.glob(".run.ckpt.*.tmp"))  # a killed writer's leftovers are cleaned up
    assert main([*FIT, "-o", str(whole_out)]) == 0
    a, b = ContrastiveRecommender.load(resumed_out), ContrastiveRecommender.load(whole_out)
    np.testing.assert_array_equal(a.item_vectors_, b.item_vectors_)
    np.testing.assert_array_equal(a.user_vectors_, b.user_vectors_)
