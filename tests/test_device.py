"""Devices: the setting and its errors, CPU results unchanged, and a device audit of every step on torch's meta device.

No GPU is needed for most of this file. The meta device has shapes and no numbers, and torch
refuses to mix its tensors with CPU tensors in most operations: a training step run with the
towers on ``meta`` fails wherever the step would mix devices on a GPU (a CPU index, mask or
noise tensor meeting a device tensor). Embedding lookups accept CPU indices on meta but not
on CUDA, so the audit also checks every lookup's indices. Tests marked ``cuda`` run a real
fit on a GPU and skip without one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import contrec
from contrec.data.positives import PositiveLookup
from contrec.runtime.device import available_devices, resolve_device
from contrec.samplers import get_sampler
from contrec.training.candidates import StepStats, build_candidates
from contrec.training.loop import place
from contrec.training.step import Towers, step_loss
from contrec.nn.temperature import LearnedTemperature
from contrec.nn.towers import build_item_tower, build_user_tower, feature_tokens, start_towers
from contrec.nn.graph import link_graph
from contrec.data.interactions import binary_matrix

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def _world(seed: int = 0) -> contrec.Interactions:
    """60 users, 40 items with a genre each; users like one genre."""
    rng = np.random.default_rng(seed)
    items = [f"i{j}" for j in range(40)]
    rows = [(f"u{u}", items[j]) for u in range(60) for j in rng.choice(np.arange(20) + 20 * (u % 2), 8, replace=False)]
    attrs = pd.DataFrame({"genres": ["A" if j < 20 else "B" for j in range(40)]}, index=items)
    return contrec.Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item"]), item_attributes=attrs)


# ---------------------------------------------------------------- the setting
def test_cpu_and_auto_resolve_here():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "mps" if "mps" in available_devices() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert available_devices()[0] == "cpu"


@pytest.mark.parametrize("device, message", [
    ("tpu", "is not a torch device"),
    ("meta", "holds shapes, not numbers"),
    ("cuda:x", "is not a torch device"),
])
def test_bad_devices_are_one_line_config_errors(device, message):
    with pytest.raises(contrec.ConfigError, match=message) as err:
        resolve_device(device)
    assert "\n" not in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_missing_cuda_says_what_is_available(board):
    with pytest.raises(contrec.ConfigError, match=r"device 'cuda' is not available here.*available: cpu"):
        contrec.ContrastiveRecommender(device="cuda").check()
    with pytest.raises(contrec.ConfigError, match="not available"):
        contrec.ContrastiveRecommender(device="cuda", epochs=1, verbose=False).fit(board)


def test_cpu_fit_records_its_device_and_matches_the_default(board):
    kw = dict(dim=8, epochs=2, batch_size=64, n_negatives=16, validation_size=0, threads=1, verbose=False, seed=3)
    default = contrec.ContrastiveRecommender(**kw).fit(board)
    cpu = contrec.ContrastiveRecommender(device="cpu", **kw).fit(board)
    assert default.device_ == cpu.device_ == "cpu"
    np.testing.assert_array_equal(default.item_vectors_, cpu.item_vectors_)
    assert [r["loss"] for r in default.history_] == [r["loss"] for r in cpu.history_]


def test_candidates_on_the_cpu_are_not_copied(board, torch_generator):
    sampler = get_sampler("uniform").fit(board)
    config = contrec.ContrastiveRecommender(n_negatives=8)._configs()[1]
    users = torch.from_numpy(board.row_codes()[:16])
    items = torch.from_numpy(board.matrix.indices[:16].astype(np.int64))
    log_p = torch.log(torch.from_numpy(board.item_counts() / board.item_counts().sum())).float()
    cands = build_candidates(users, items, sampler, PositiveLookup(board.matrix), log_p, config, torch_generator,
                             StepStats())
    assert cands.to(torch.device("cpu")) is cands


def test_graph_towers_are_reproducible_with_threads(board):
    """tables[ids]'s backward added rows with atomics across threads: the last digits changed run to run."""
    kw = dict(dim=8, epochs=3, batch_size=32, n_negatives=16, validation_size=0, threads=2, verbose=False,
              user_tower="graph", item_tower="graph")
    a = contrec.ContrastiveRecommender(**kw).fit(board)
    b = contrec.ContrastiveRecommender(**kw).fit(board)
    np.testing.assert_array_equal(a.item_vectors_, b.item_vectors_)


# ---------------------------------------------------------------- the audit on meta
def _checked_lookups(monkeypatch):
    """Embedding lookups must get their indices on the table's device (CUDA insists; meta does not)."""
    embedding, bag = F.embedding, F.embedding_bag

    def checked_embedding(input, weight, *args, **kwargs):
        assert input.device == weight.device, f"embedding indices on {input.device}, table on {weight.device}"
        return embedding(input, weight, *args, **kwargs)

    def checked_bag(input, weight, offsets=None, *args, **kwargs):
        for t in (input, offsets):
            assert t is None or t.device == weight.device, f"embedding_bag input on {t.device}, table on {weight.device}"
        return bag(input, weight, offsets, *args, **kwargs)

    monkeypatch.setattr(F, "embedding", checked_embedding)
    monkeypatch.setattr(F, "embedding_bag", checked_bag)


AUDITED = {
    "id": {},
    "projection-learned-tau": {"projection": 16, "learn_temperature": True},
    "gaussian": {"similarity": "gaussian"},
    "kernel-mixture": {"similarity": "kernel-mixture"},
    "laplacian-bpr": {"similarity": "laplacian", "objective": "bpr"},
    "debiased-hardness": {"debias_prior": 0.1, "hardness": 0.5},
    "hard-shared": {"sampler": "hard"},
    "hard-per-row": {"sampler": "hard", "sampler_params": {"shared": False}},
    "popularity": {"sampler": "popularity"},
    "domain-rule": {"sampler": "domain-rule", "sampler_params": {"rule": "disjoint(genres)"}},
    "no-negatives": {"n_negatives": 0},
    "uncorrected": {"logq": False},
}

# Towers whose step has data-dependent shapes (history segments, dropped items, feature bags): meta cannot run
# them, so the audit does not reach them; their device placement is exercised by the CUDA tests below.
HISTORY_AND_FEATURES = {
    "history-mean": {"user_tower": "history", "history_cap": 4},
    "history-attention-ssl": {"user_tower": "history", "pooling": "attention", "history_user_id": True,
                              "ssl_weight": 0.1},
    "simplex": {"user_tower": "simplex"},
    "features": {"item_tower": "features"},
}


@pytest.mark.parametrize("name", list(AUDITED))
def test_a_training_step_never_mixes_devices(name, monkeypatch):
    """Towers on meta, the step's CPU candidates moved once: forward, loss and backward stay on the device."""
    _checked_lookups(monkeypatch)
    train = _world()
    model = contrec.ContrastiveRecommender(**{"dim": 8, "n_negatives": 8, "batch_size": 32, "verbose": False,
                                              **AUDITED[name]})

    towers_cfg, config, similarity = model._configs()
    gen = torch.Generator().manual_seed(0)
    user = build_user_tower(towers_cfg, train.n_users, binary_matrix(train.matrix), gen)
    tokens = feature_tokens(towers_cfg, train) if towers_cfg.item_tower == "features" else None
    item = build_item_tower(towers_cfg, train, gen, tokens)
    start_towers(towers_cfg, user, item, train.matrix)
    link_graph(user, item, binary_matrix(train.matrix), towers_cfg.graph_layers)
    sampler = get_sampler(model.sampler, **(model.sampler_params or {})).fit(train)
    from contrec.samplers.base import ModelSnapshot

    if sampler.refresh_every:  # a model-following sampler needs tables first (CPU)
        with torch.no_grad():
            sampler.update(ModelSnapshot(user.encode_all().numpy(), item.encode_all().numpy(), "ip", 0))
    temperature = LearnedTemperature(config.temperature) if config.learn_temperature else None
    meta = torch.device("meta")
    place(user, item, temperature, meta)
    assert all(p.device == meta for p in [*user.parameters(), *item.parameters()])
    assert all(b.device == meta for b in [*user.buffers(), *item.buffers()])
    users = torch.from_numpy(train.row_codes()[:32])
    items = torch.from_numpy(train.matrix.indices[:32].astype(np.int64))
    log_p = torch.log(torch.from_numpy(train.item_counts() / train.item_counts().sum())).float()
    user.train()
    item.train()
    # BPR keeps the unmasked pairs (a data-dependent shape): meta may assume them all kept
    with torch.fx.experimental._config.patch(meta_nonzero_assume_all_nonzero=True):
        loss = step_loss(users, items, Towers(user, item, temperature), similarity, sampler,
                         PositiveLookup(train.matrix), log_p, config, gen, StepStats(), None, meta)
        assert loss.device == meta and loss.dim() == 0
        loss.backward()
    assert all(p.grad is None or p.grad.device == meta for p in user.parameters())
    assert user.encode_all().device == meta  # validation's and the refresh's tables are made where the towers are


def test_graph_towers_follow_their_device():
    """The shared normalised graph moves with the towers (its CSR product has no meta kernel to audit)."""
    train = _world()
    model = contrec.ContrastiveRecommender(dim=8, user_tower="graph", item_tower="graph", verbose=False)
    towers_cfg = model._configs()[0]
    gen = torch.Generator().manual_seed(0)
    user = build_user_tower(towers_cfg, train.n_users, binary_matrix(train.matrix), gen)
    item = build_item_tower(towers_cfg, train, gen)
    link_graph(user, item, binary_matrix(train.matrix), 2)
    before = user.encode_all()
    place(user, item, None, torch.device("cpu"))
    assert user.propagation is item.propagation and user.propagation.r.device.type == "cpu"
    torch.testing.assert_close(user.encode_all(), before)


# ---------------------------------------------------------------- a real GPU
@pytest.mark.cuda
@needs_cuda
def test_cuda_fit_trains_on_the_gpu_and_serves_from_the_cpu(tmp_path):
    train = _world()
    kw = dict(dim=16, epochs=5, batch_size=64, n_negatives=32, validation_size=0, threads=1, verbose=False, seed=0)
    cpu = contrec.ContrastiveRecommender(**kw).fit(train)
    gpu = contrec.ContrastiveRecommender(device="cuda", **kw).fit(train)
    assert gpu.device_.startswith("cuda")
    assert all(p.device.type == "cpu" for p in gpu.user_encoder_.parameters())
    # same draws (CPU generators), different float kernels: close, not equal
    np.testing.assert_allclose(gpu.history_[-1]["loss"], cpu.history_[-1]["loss"], rtol=1e-3)
    path = gpu.save(tmp_path / "gpu.contrec")
    again = contrec.ContrastiveRecommender.load(path)
    assert again.recommend(["u0"], k=5).equals(gpu.recommend(["u0"], k=5))


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("name", [*HISTORY_AND_FEATURES, "hard-shared", "hard-per-row", "domain-rule"])
def test_cuda_fit_runs_every_tower_kind(name):
    train = _world()
    settings = {**AUDITED, **HISTORY_AND_FEATURES}[name]
    model = contrec.ContrastiveRecommender(dim=8, epochs=2, batch_size=32, n_negatives=8, validation_size=0.2,
                                           verbose=False, device="cuda", **settings).fit(train)
    assert np.isfinite(model.history_[-1]["loss"])


@pytest.mark.cuda
@needs_cuda
def test_cuda_graph_fit():
    model = contrec.ContrastiveRecommender(dim=8, epochs=2, batch_size=32, n_negatives=8, validation_size=0,
                                           user_tower="graph", item_tower="graph", verbose=False, device="cuda")
    assert np.isfinite(model.fit(_world()).history_[-1]["loss"])
