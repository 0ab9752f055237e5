"""Baselines are saved, read back by `contrec.load` and served as after fit; `contrec fit --model NAME` does it from the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import contrec
from contrec.cli import main
from contrec.errors import ModelFileError, NotFittedError
from contrec.models.baselines import BASELINES, make_baseline
from contrec.runtime.artifact import read_artifact, write_artifact

from .conftest import SAMPLE_CSV, checkerboard
from .test_cli import READ, one_error_line

SETTINGS = {"popularity": {}, "als": {"factors": 8, "iterations": 5}, "bpr": {"factors": 8, "iterations": 10},
            "itemknn": {"neighbours": 5}, "ease": {"l2": 10.0}}
HISTORY = [["i1", "i3"], ["i2"]]


def _data() -> contrec.Interactions:
    board = checkerboard(40, 30, groups=3)
    frame = board.to_frame()
    keep = np.random.default_rng(0).random(len(frame)) < 0.7  # not every pair of a group: something to rank
    attributes = pd.DataFrame({"item": [f"i{i}" for i in range(30)], "shelf": [f"s{i % 4}" for i in range(30)]}).set_index("item")
    return contrec.Interactions.from_frame(frame[keep], item_attributes=attributes)


@pytest.fixture(scope="module")
def data() -> contrec.Interactions:
    return _data()


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_a_saved_baseline_serves_exactly_as_the_fitted_one(name, data, tmp_path):
    fitted = make_baseline(name, **SETTINGS[name]).fit(data)
    path = fitted.save(tmp_path / f"{name}.contrec")
    loaded = contrec.load(path)
    assert type(loaded) is type(fitted) and loaded.get_params() == fitted.get_params()
    assert type(fitted).load(path).get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.user_vectors_, fitted.user_vectors_)
    np.testing.assert_array_equal(loaded.item_vectors_, fitted.item_vectors_)
    users = ["u0", "u1", "u5"]
    pd.testing.assert_frame_equal(loaded.recommend(users, k=5), fitted.recommend(users, k=5))
    # serving rules read the saved item attributes; seen items stay filtered
    ruled = loaded.recommend(users, k=3, rule="not has(shelf, s1)")
    pd.testing.assert_frame_equal(ruled, fitted.recommend(users, k=3, rule="not has(shelf, s1)"))
    assert not ruled["item"].map(dict(zip(data.item_attributes.index, data.item_attributes["shelf"]))).eq("s1").any()
    seen = data.to_frame().groupby("user")["item"].apply(set)
    recs = loaded.recommend(None, k=5)
    assert not any(item in seen[user] for user, item in zip(recs["user"], recs["item"]))
    if name != "bpr":  # BPR has no way to encode a user it was not trained on
        pd.testing.assert_frame_equal(loaded.recommend_for_history(HISTORY, k=4),
                                      fitted.recommend_for_history(HISTORY, k=4))
    train, test = contrec.split_random(data, test_size=0.3, seed=1)
    refit = make_baseline(name, **SETTINGS[name]).fit(train)
    pd.testing.assert_frame_equal(contrec.evaluate(contrec.load(refit.save(tmp_path / "r.contrec")), train, test, k=5),
                                  contrec.evaluate(refit, train, test, k=5))


def test_sparse_vectors_are_stored_as_rows_and_dense_ones_as_arrays(data, tmp_path):
    knn = make_baseline("itemknn", neighbours=3).fit(data)
    arrays, meta = read_artifact(knn.save(tmp_path / "knn.contrec"))
    assert {"item_vectors.data", "user_vectors.indices"} <= set(arrays) and "item_vectors" not in arrays
    assert len(arrays["item_vectors.data"]) <= 3 * data.n_items  # each item keeps its 3 neighbours
    als = make_baseline("als", factors=4, iterations=2).fit(data)
    arrays, meta = read_artifact(als.save(tmp_path / "als.contrec"))
    assert arrays["item_vectors"].shape == (data.n_items, 4) and meta["model"] == "ImplicitALS"


def test_the_index_a_baseline_was_served_from_is_kept(data, tmp_path):
    ease = make_baseline("ease").fit(data).set_index("hnsw", ef_search=16)
    loaded = contrec.load(ease.save(tmp_path / "ease.contrec"))
    assert loaded.index_.kind == "hnsw"
    pd.testing.assert_frame_equal(loaded.recommend(["u2"], k=5), ease.recommend(["u2"], k=5))


def test_contrec_load_reads_the_contrastive_model_too(data, tmp_path):
    model = contrec.ContrastiveRecommender(dim=8, epochs=1, n_negatives=8, batch_size=32, validation_size=0,
                                           user_tower="id", verbose=False).fit(data)
    loaded = contrec.load(model.save(tmp_path / "m.contrec"))
    assert isinstance(loaded, contrec.ContrastiveRecommender)
    pd.testing.assert_frame_equal(loaded.recommend(["u3"], k=4), model.recommend(["u3"], k=4))
    with pytest.raises(ModelFileError, match="holds a 'ContrastiveRecommender', not a EASE"):
        contrec.EASE.load(tmp_path / "m.contrec")
    als = make_baseline("als", factors=4, iterations=2).fit(data)
    with pytest.raises(ModelFileError, match="not a ContrastiveRecommender"):
        contrec.ContrastiveRecommender.load(als.save(tmp_path / "als.contrec"))


def test_damaged_or_foreign_files_are_one_line(data, tmp_path):
    path = make_baseline("als", factors=4, iterations=2).fit(data).save(tmp_path / "als.contrec")
    arrays, meta = read_artifact(path)
    cases = {
        "dims": ({**meta, "dims": [5, 5]}, arrays),
        "kind": ({**meta, "model": "LightFM"}, arrays),
        "users": ({**meta, "n_users": meta["n_users"] + 1}, arrays),
        "vectors": (meta, {k: v for k, v in arrays.items() if k != "item_vectors"}),
        "params": ({**meta, "params": {**meta["params"], "depth": 3}}, arrays),
        "index": ({**meta, "index": {"kind": "annoy"}}, arrays),
        "index options": ({**meta, "index": {"kind": "hnsw", "depth": 2}}, arrays),
    }
    messages = {"dims": "damaged model file", "kind": "holds a 'LightFM', which this contrec cannot load",
                "users": "damaged model file", "vectors": "damaged model file", "params": "damaged model file",
                "index": "damaged model file", "index options": "damaged model file"}
    for case, (bad_meta, bad_arrays) in cases.items():
        bad = tmp_path / f"{case}.contrec"
        header = {k: v for k, v in bad_meta.items() if k not in ("format", "format_version", "arrays")}
        write_artifact(bad, bad_arrays, header)
        with pytest.raises(ModelFileError, match=messages[case]) as info:
            contrec.load(bad)
        assert str(bad) in str(info.value) and "\n" not in str(info.value)
    truncated = tmp_path / "cut.contrec"
    truncated.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        contrec.load(truncated)


def test_only_fitted_baselines_save(tmp_path):
    with pytest.raises(NotFittedError, match="call fit"):
        make_baseline("ease").save(tmp_path / "x.contrec")
    assert not (tmp_path / "x.contrec").exists()


def test_every_registered_baseline_has_a_file_format():
    from contrec.models.loading import BASELINE_CLASSES

    assert sorted(BASELINE_CLASSES) == sorted(factory.__name__ for factory in BASELINES.values())


# ---------------------------------------------------------------- the command line

def test_cli_fits_serves_and_evaluates_a_baseline(tmp_path, capsys):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    assert main(["split", str(SAMPLE_CSV), *READ, "--test-size", "0.25", "--train-out", str(train),
                 "--test-out", str(test), "-q"]) == 0
    out = tmp_path / "als.contrec"
    params = json.dumps({"factors": 8, "iterations": 4, "regularization": 0.5})
    assert main(["fit", str(train), "--model", "als", "--model-params", params, "--seed", "3", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "fitted ImplicitALS(factors=8, regularization=0.5" in err and "seed=3" in err
    model = contrec.load(out)
    assert isinstance(model, contrec.ImplicitALS) and model.seed == 3
    recs = tmp_path / "recs.csv"
    assert main(["recommend", str(out), "--users", "u01,u02", "-k", "3", "-o", str(recs)]) == 0
    assert pd.read_csv(recs, dtype=str).groupby("user").size().to_dict() == {"u01": 3, "u02": 3}
    assert main(["recommend", str(out), "--history", "i008,i032", "-k", "3"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4
    assert main(["evaluate", str(out), str(test), "--drop-unknown", "-k", "5"]) == 0
    assert "ndcg" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--model", "ease", "--dim", "16"], "--dim is a setting of contrec's model; --model ease takes its settings "
                                         "in --model-params"),
    (["--model", "lightfm"], "unknown baseline 'lightfm'; choose one of: popularity, itemknn, als, bpr, ease"),
    (["--model", "ease", "--model-params", '{"lambda": 3}'], "EASE has no setting 'lambda'; its settings are l2"),
    (["--model", "ease", "--model-params", "[1]"], "--model-params must be a JSON object"),
    (["--model", "als", "--model-params", '{"confidence": "squared"}'], "confidence must be one of"),
    (["--model-params", '{"l2": 3}'], "--model-params sets a baseline's settings"),
    (["--model", "als", "--distributed"], "--model als fits in one process from scratch; drop --distributed"),
    (["--model", "als", "--checkpoint", "c.ckpt"], "--checkpoint goes with contrec's epochs; --model als fits in one "
                                                   "call: drop --checkpoint"),
    (["--model", "ease", "--update-epochs", "3"], "--update-epochs goes with contrec's epochs"),
    (["--model", "ease", "--epochs", "3"], "--epochs goes with contrec's epochs"),
    (["--model", "ease", "--no-refit"], "--no-refit goes with contrec's epochs"),
    (["--model", "itemknn", "--device", "cuda"], "--model itemknn fits on the CPU; drop --device"),
])
def test_cli_baseline_errors_are_one_line(args, message, tmp_path, capsys):
    out = tmp_path / "m.contrec"
    assert main(["fit", str(SAMPLE_CSV), *READ, *args, "-o", str(out)]) != 0
    assert message in one_error_line(capsys)
    assert not out.exists()


def test_cli_update_refuses_a_baseline_file(tmp_path, capsys):
    base = tmp_path / "pop.contrec"
    assert main(["fit", str(SAMPLE_CSV), *READ, "--model", "popularity", "-q", "-o", str(base)]) == 0
    assert main(["fit", str(SAMPLE_CSV), *READ, "--from", str(base), "-o", str(tmp_path / "new.contrec")]) != 0
    assert "holds a baseline (PopularityRecommender); --from continues contrec's own models only" in \
        one_error_line(capsys)


def test_cli_warns_when_raw_weights_would_drive_a_baseline(tmp_path, capsys):
    frame = pd.read_csv(SAMPLE_CSV)
    frame["plays"] = np.arange(len(frame)) % 500 + 1
    log = tmp_path / "plays.csv"
    frame.to_csv(log, index=False)
    out = tmp_path / "knn.contrec"
    read = ["--user", "user_id", "--item", "item_id", "--weight", "plays", "--model", "itemknn"]
    assert main(["fit", str(log), *read, "-o", str(out)]) == 0
    assert "ItemKNN takes the weights as they are (weights 'linear')" in capsys.readouterr().err
    assert main(["fit", str(log), *read, "--model-params", '{"weights": "log1p"}', "-o", str(out)]) == 0
    assert "takes the weights" not in capsys.readouterr().err
    assert main(["fit", str(SAMPLE_CSV), *READ, "--model", "itemknn", "-o", str(out)]) == 0  # no weights: no warning
    assert "takes the weights" not in capsys.readouterr().err
