"""Shared fixtures: seeded generators, a tiny checkerboard dataset, the real ml-100k."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
import torch

import contrec

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CSV = REPO / "datasets" / "sample.csv"


def _shared_data_dir() -> Path | None:
    env = os.environ.get("CONTREC_DATA")
    if env and Path(env).is_dir():
        return Path(env)
    guess = REPO.parent / "shared" / "datasets"
    return guess if (guess / "ml-100k" / "u.data").is_file() else None


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


@pytest.fixture
def torch_generator() -> torch.Generator:
    return torch.Generator().manual_seed(42)


def checkerboard(n_users: int = 40, n_items: int = 30, groups: int = 2) -> contrec.Interactions:
    """User u likes item i iff u % groups == i % groups: an exact, learnable structure."""
    rows = [(f"u{u}", f"i{i}") for u in range(n_users) for i in range(n_items) if u % groups == i % groups]
    return contrec.Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item"]))


@pytest.fixture
def board() -> contrec.Interactions:
    return checkerboard()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = _shared_data_dir()
    if found is None:
        pytest.skip("real MovieLens data not found: set CONTREC_DATA to the folder holding ml-100k/")
    return found


@pytest.fixture(scope="session")
def ml100k_split(data_dir: Path) -> tuple[contrec.Interactions, contrec.Interactions]:
    from contrec.evaluation.protocol import protocol_split

    return protocol_split("ml-100k", seed=0, data_dir=data_dir)


@dataclass(frozen=True)
class CliRun:
    """What one ``contrec`` command printed and returned (the fields of `subprocess.CompletedProcess`)."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliRun]:
    """Run ``contrec ARGS`` in this process: the same `main` as the console script, without a new interpreter
    importing torch and FAISS for every command (about 5 s each on a slow machine). ``check=True`` fails the
    test on a non-zero exit, showing what the command printed. Tests of what only a real process shows
    (signals, the launcher, the entry point) still start one."""
    from contrec.cli import main

    def run(*args: Any, check: bool = False) -> CliRun:
        capsys.readouterr()  # what earlier steps printed is not this command's
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        if check and code != 0:
            raise AssertionError(f"contrec {' '.join(map(str, args))} exited {code}:\n{out.err}")
        return CliRun(code, out.out, out.err)

    return run
