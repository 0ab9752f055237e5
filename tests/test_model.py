"""ContrastiveRecommender: learning, determinism, filtering, errors, save/load."""

import gc
import io
import json
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest

import contrec
from contrec import ContrastiveRecommender, split_random
from contrec.runtime.artifact import read_artifact, write_artifact
from contrec.errors import ConfigError, DataError, ModelFileError, NotFittedError

from .conftest import checkerboard

FAST = dict(dim=16, epochs=15, batch_size=64, n_negatives=32, lr=0.05, verbose=False, seed=0, validation_size=0)


@pytest.fixture(scope="module")
def fitted():
    data = checkerboard()
    train, test = split_random(data, test_size=0.3, seed=0)
    return ContrastiveRecommender(**FAST).fit(train), train, test


def test_learns_the_checkerboard(fitted):
    model, train, test = fitted
    table = contrec.evaluate(model, train, test, k=5)
    values = dict(zip(table["metric"], table["value"]))
    # a user of parity p should be recommended only items of parity p
    assert values["precision"] > 0.95
    assert values["ndcg"] > 0.9


def test_recommend_frame_and_exact_filtering(fitted):
    model, train, _ = fitted
    recs = model.recommend(["u0", "u1"], k=10)
    assert list(recs.columns) == ["user", "item", "score", "rank"]
    assert recs.groupby("user").size().tolist() == [10, 10]
    assert recs.groupby("user")["rank"].apply(list).tolist() == [list(range(1, 11))] * 2
    seen = set(zip(*[train.to_frame()[c] for c in ("user", "item")]))
    assert not any((u, i) in seen for u, i in zip(recs["user"], recs["item"]))
    # scores are non-increasing by rank
    for _, g in recs.groupby("user"):
        assert np.all(np.diff(g["score"].to_numpy()) <= 1e-6)


def test_gets_exactly_the_unseen_items_when_k_is_large(fitted):
    model, train, _ = fitted
    n_seen = int(train.user_counts()[train.users.index(["u0"])[0]])
    recs = model.recommend("u0", k=train.n_items)
    assert len(recs) == train.n_items - n_seen  # fewer than k only because the catalogue ran out
    recs_all = model.recommend("u0", k=train.n_items, filter_seen=False)
    assert len(recs_all) == train.n_items


def test_all_users_and_unknown_users(fitted):
    model, train, _ = fitted
    assert model.recommend(None, k=3)["user"].nunique() == train.n_users
    with pytest.raises(DataError, match=r"user id 'nobody' is not in the training data \(40 known users\)"):
        model.recommend(["u0", "nobody"], k=3)
    skipped = model.recommend(["u0", "nobody"], k=3, unknown="skip")
    assert skipped["user"].unique().tolist() == ["u0"]


@pytest.mark.parametrize("k,message", [(0, "k must be a positive integer"), (-3, "positive integer"),
                                       (31, r"k=31 is larger than the catalogue \(30 items\)")])
def test_bad_k(fitted, k, message):
    with pytest.raises(ConfigError, match=message):
        fitted[0].recommend(["u0"], k=k)


def test_similar_items_leave_the_item_out(fitted):
    model, _, _ = fitted
    sims = model.similar_items(["i0"], k=5)
    assert list(sims.columns) == ["item", "similar_item", "score", "rank"]
    assert "i0" not in set(sims["similar_item"])
    assert all(int(s[1:]) % 2 == 0 for s in sims["similar_item"])  # same parity as i0


def test_same_seed_same_model():
    train, _ = split_random(checkerboard(), 0.3, seed=0)
    a = ContrastiveRecommender(**FAST).fit(train)
    b = ContrastiveRecommender(**FAST).fit(train)
    np.testing.assert_array_equal(a.item_vectors_, b.item_vectors_)
    c = ContrastiveRecommender(**{**FAST, "seed": 1}).fit(train)
    assert not np.array_equal(a.item_vectors_, c.item_vectors_)


def test_early_stopping_keeps_best_epoch():
    train, valid = split_random(checkerboard(), 0.3, seed=0)
    model = ContrastiveRecommender(**{**FAST, "epochs": 30, "patience": 2}).fit(train, valid)
    scores = [h["validation"] for h in model.history_]
    best = [h for h in model.history_ if h["best"]]
    assert len(best) == 1 and best[0]["validation"] == max(scores)
    assert len(model.history_) <= 30


@pytest.mark.parametrize("param,value,message", [
    ("dim", 0, "dim must be an integer ≥ 1"), ("temperature", -1.0, "temperature must be a positive number"),
    ("sampler", "popular", "unknown sampler 'popular'; choose one of"),
    ("similarity", "euclid", "unknown similarity .euclid.; choose one of: dot, cosine, gaussian"),
    ("n_negatives", -1, "n_negatives must be an integer ≥ 0"),
])
def test_bad_parameters_fail_in_fit(board, param, value, message):
    model = ContrastiveRecommender(**{**FAST, param: value})  # __init__ only stores
    with pytest.raises(ConfigError, match=message):
        model.fit(board)


def test_params_come_from_the_signature_and_check_changes_nothing(board):
    import inspect

    model = ContrastiveRecommender(dim=8, temperature=0.1)
    names = [n for n in inspect.signature(ContrastiveRecommender).parameters]
    assert list(model.get_params()) == names  # one list: the signature's
    assert repr(model) == "ContrastiveRecommender(dim=8, temperature=0.1)"
    assert model.set_params(dim=16, epochs=2) is model and model.get_params()["dim"] == 16
    with pytest.raises(ConfigError, match="has no parameter 'dimension'; its parameters are: dim, similarity"):
        model.set_params(dimension=16)
    before = dict(vars(model))
    model.check()  # settings only
    model.check(board)  # and what depends on the data (sampler fit on it, feature tokens)
    assert vars(model) == before  # nothing fitted is set on an unfitted model
    with pytest.raises(ConfigError, match="item_tower='features' needs item attributes"):
        ContrastiveRecommender(item_tower="features").check(board)
    with pytest.raises(ConfigError, match="ssl_weight needs user_tower='history'"):
        ContrastiveRecommender(ssl_weight=0.1, user_tower="id").check()
    with pytest.raises(ConfigError, match="ssl_weight needs user_tower='history'"):  # no carve: "auto" means "id"
        ContrastiveRecommender(ssl_weight=0.1, validation_size=0).check()
    ContrastiveRecommender(ssl_weight=0.1).check()  # the carve will try the history tower, the only one it allows
    with pytest.raises(ConfigError, match="threads must be a positive integer"):
        ContrastiveRecommender(threads=0).check()


def test_configs_are_built_by_keyword_and_validate_themselves():
    from contrec.nn.towers import TowerConfig
    from contrec.training.config import TrainingConfig

    with pytest.raises(TypeError):
        TrainingConfig(20, 1024)  # keyword only: no field can be passed in the wrong place
    with pytest.raises(ConfigError, match="optimizer='sparse-adam' has no weight decay"):
        TrainingConfig(optimizer="sparse-adam", weight_decay=0.1)
    with pytest.raises(ConfigError, match="history_dropout must be in \\[0, 1\\)"):
        TowerConfig(history_dropout=1.5)
    assert isinstance(TrainingConfig(lr=1).lr, float)  # a valid int setting is stored as the float it means
    import dataclasses

    model_defaults = ContrastiveRecommender.param_defaults()
    # the model's None: the kernel's own τ (Similarity.default_temperature); "auto": chosen on the carve, else "id"
    resolved = {"temperature": None, "user_tower": "auto"}
    for config in (TrainingConfig, TowerConfig):  # every field is the model parameter of that name, same default
        for f in dataclasses.fields(config):
            assert f.name in model_defaults, (config.__name__, f.name)
            assert model_defaults[f.name] == resolved.get(f.name, f.default), (config.__name__, f.name)


def test_not_fitted():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        ContrastiveRecommender().recommend(["u0"])


def test_dot_similarity_and_no_logq_train(board):
    model = ContrastiveRecommender(**{**FAST, "similarity": "dot", "logq": False, "in_batch": False}).fit(board)
    assert model.index_.metric == "ip" and len(model.recommend("u0", k=3)) == 3



def test_sparse_adam_learns_updates_only_touched_rows_and_restores_dense_tables(board):
    import torch

    from contrec.nn.encoders import IdEncoder
    from contrec.training.config import TrainingConfig
    from contrec.training.optimizer import Optimizer

    train, test = split_random(board, test_size=0.3, seed=0)
    model = ContrastiveRecommender(**{**FAST, "optimizer": "sparse-adam"}).fit(train)
    table = contrec.evaluate(model, train, test, k=5)
    values = dict(zip(table["metric"], table["value"]))
    assert values["precision"] > 0.95  # learns the checkerboard as dense Adam does
    again = ContrastiveRecommender(**{**FAST, "optimizer": "sparse-adam"}).fit(train)
    assert np.array_equal(model.item_vectors_, again.item_vectors_)  # same seed, same model
    # lazy updates: a step changes exactly the rows the batch used, and the tables are dense again after
    users, items = IdEncoder(10, 4, generator=torch.Generator().manual_seed(0)), IdEncoder(12, 4)
    config = TrainingConfig(epochs=1, batch_size=4, lr=0.1, n_negatives=0, optimizer="sparse-adam")
    opt = Optimizer(users, items, config)
    before = users.embedding.weight.detach().clone()
    (users(torch.tensor([1, 3])) ** 2).sum().backward()
    assert users.embedding.weight.grad.is_sparse
    opt.step()
    changed = (users.embedding.weight.detach() != before).any(1)
    assert changed.nonzero().reshape(-1).tolist() == [1, 3]
    opt.close()
    assert not users.embedding.sparse and not items.embedding.sparse
    with pytest.raises(ConfigError, match="sparse-adam' has no weight decay"):
        ContrastiveRecommender(**{**FAST, "optimizer": "sparse-adam", "weight_decay": 0.01}).fit(train)
    with pytest.raises(ConfigError, match="optimizer must be one of 'adam', 'sparse-adam'"):
        ContrastiveRecommender(**{**FAST, "optimizer": "sgd"}).fit(train)

# ---------------------------------------------------------------- save / load
def test_save_load_round_trip(fitted, tmp_path):
    model, _, _ = fitted
    path = model.save(tmp_path / "m.contrec")
    again = ContrastiveRecommender.load(path)
    users = ["u0", "u5", "u17"]
    pd.testing.assert_frame_equal(model.recommend(users, k=7), again.recommend(users, k=7))
    assert again.get_params() == {**model.get_params()}
    assert again.train_fingerprint_ == model.train_fingerprint_
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_model_file_has_no_pickle(fitted, tmp_path):
    model, _, _ = fitted
    path = model.save(tmp_path / "m.contrec")
    with np.load(path, allow_pickle=False) as npz:  # would raise if any array needed pickle
        assert all(npz[name].dtype != object for name in npz.files)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_corrupt_truncated_and_foreign_files(fitted, tmp_path):
    model, _, _ = fitted
    good = model.save(tmp_path / "good.contrec").read_bytes()
    cases = {
        "truncated": good[: len(good) // 2],
        "garbage": b"this is not a model",
        "empty": b"",
        "flipped": good[:200] + bytes(b ^ 0xFF for b in good[200:400]) + good[400:],
        "lone-array": _npy_bytes(np.arange(3)),
    }
    for name, blob in cases.items():
        path = tmp_path / f"{name}.contrec"
        path.write_bytes(blob)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)  # a failed read must close its file
            with pytest.raises(ModelFileError, match=f"{name}.contrec") as info:
                ContrastiveRecommender.load(path)
            gc.collect()
        assert not [w for w in caught if issubclass(w.category, ResourceWarning)], name
        assert "\n" not in str(info.value)
    with pytest.raises(ModelFileError, match="no such model file"):
        ContrastiveRecommender.load(tmp_path / "missing.contrec")


def test_newer_format_and_other_format(tmp_path):
    path = tmp_path / "new.contrec"
    write_artifact(path, {"x": np.zeros(2)}, {"model": "ContrastiveRecommender"})
    arrays, meta = read_artifact(path)
    meta["format_version"] = 99
    blob = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, __meta__=blob, **arrays)
    with pytest.raises(ModelFileError, match="newer contrec"):
        ContrastiveRecommender.load(path)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    with pytest.raises(ModelFileError, match="not a contrec model file"):
        ContrastiveRecommender.load(other)


def test_save_into_missing_directory(fitted, tmp_path):
    with pytest.raises(ConfigError, match="directory .* does not exist"):
        fitted[0].save(tmp_path / "nope" / "m.contrec")


def test_failed_save_keeps_the_old_file(fitted, tmp_path, monkeypatch):
    model, _, _ = fitted
    path = model.save(tmp_path / "m.contrec")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.contrec"]
    assert zipfile.is_zipfile(path)


def test_ctrl_c_during_a_write_finishes_the_file_then_interrupts(tmp_path, monkeypatch):
    """A SIGINT inside the zip writer used to surface as numpy/zipfile errors about half-closed
    streams (a traceback in a --distributed Ctrl-C); it is held until the file is in place."""
    import signal

    real = np.savez_compressed

    def interrupted_midway(f, **arrays):
        signal.raise_signal(signal.SIGINT)  # to this very thread, while the zip is being written
        real(f, **arrays)

    # a Ctrl-C as a fresh process gets it: default handler, SIGINT not blocked (an earlier test's threads
    # must not decide which thread the signal lands on, nor whether it is pending)
    monkeypatch.setattr(np, "savez_compressed", interrupted_midway)
    previous_mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    previous_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupted_write_leaves_a_complete_file(tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


def _interrupted_write_leaves_a_complete_file(tmp_path) -> None:
    import signal

    path = tmp_path / "m.contrec"
    with pytest.raises(KeyboardInterrupt):
        write_artifact(path, {"x": np.arange(5.0)}, {"model": "ContrastiveRecommender"})
    arrays, _ = read_artifact(path)  # complete, readable, and nothing left behind
    assert arrays["x"].tolist() == [0, 1, 2, 3, 4]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.contrec"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_written_files_follow_the_umask(tmp_path):
    # mkstemp creates 0600 files; a model file must be as readable as any other file the user writes
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = write_artifact(tmp_path / "m.contrec", {"x": np.zeros(2)}, {"model": "ContrastiveRecommender"})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_validation_positives_stay_known():
    """Issue 15.1: what fit() was given for validation is never recommended back, and evaluate excludes it."""
    data = checkerboard()
    fit_part, validation = split_random(data, test_size=0.3, seed=1)
    model = ContrastiveRecommender(**{**FAST, "epochs": 3}).fit(fit_part, validation)
    assert model.best_epoch_ in (1, 2, 3)
    recs = model.recommend(None, k=10)
    given = set(zip(data.users.ids[data.row_codes()], data.items.ids[data.matrix.indices]))
    assert not given & set(zip(recs["user"], recs["item"]))
    # evaluating on the validation pairs it already knows is refused, not silently counted as misses
    with pytest.raises(DataError, match="known to the model"):
        contrec.evaluate(model, fit_part, validation, k=5)
    # tuning scores the early-stopping set explicitly with exclude="train"
    assert contrec.evaluate(model, fit_part, validation, k=5, exclude="train").attrs["n_users"] > 0


def test_weights_given_to_the_contrastive_model_are_announced_once():
    """Issue 15.5: weights are not silently dropped: the model says once that it ignores them."""
    import warnings

    from contrec.models.contrastive import IgnoredWeightsWarning

    frame = checkerboard().to_frame()
    frame["plays"] = np.arange(len(frame)) % 7 + 1.0
    weighted = contrec.Interactions.from_frame(frame, weight="plays")
    with pytest.warns(IgnoredWeightsWarning, match="treats every positive alike; set positive_weights"):
        ContrastiveRecommender(**{**FAST, "epochs": 1}).fit(weighted)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IgnoredWeightsWarning)
        ContrastiveRecommender(**{**FAST, "epochs": 1}).fit(checkerboard())  # unweighted: nothing to say
