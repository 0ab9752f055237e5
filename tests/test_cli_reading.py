"""A model file remembers how its training log was read; evaluate, score and fit --from read alike logs without
the flags, contrec's own files with the defaults, and say so in one line when neither fits."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

import contrec
from contrec.errors import ModelFileError
from contrec.runtime.artifact import read_artifact, write_artifact

from .conftest import SAMPLE_CSV

READ = ["--user", "user_id", "--item", "item_id", "--rating", "rating", "--min-rating", "4"]
FIT = ["--epochs", "2", "--dim", "8", "--n-negatives", "16", "--batch-size", "64", "--user-tower", "id",
       "--threads", "1", "-q"]


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    """The sample log in two, in its own column names: a training file and a later one (each user's every
    fifth row)."""
    folder = tmp_path_factory.mktemp("reading")
    frame = pd.read_csv(SAMPLE_CSV, dtype=str)
    later_rows = frame.groupby("user_id").cumcount() % 5 == 4
    train, later = folder / "train.csv", folder / "later.csv"
    frame[~later_rows].to_csv(train, index=False)
    frame[later_rows].to_csv(later, index=False)
    return folder, train, later


@pytest.fixture(scope="module")
def fitted(halves):
    from contrec.cli import main

    folder, train, _ = halves
    model = folder / "m.contrec"
    assert main(["fit", str(train), *READ, *FIT, "-o", str(model)]) == 0
    return model


def _metrics(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text))


def test_evaluate_reads_a_log_like_the_training_one_without_its_flags(halves, fitted, cli, tmp_path):
    _, _, later = halves
    base = ["evaluate", fitted, later, "-k", "5", "--drop-unknown"]
    remembered = cli(*base, "-o", tmp_path / "a.csv", check=True)
    assert (f"read {later} as {fitted}'s training log was read (--user user_id --item item_id --rating rating "
            "--min-rating 4)") in remembered.stderr
    cli(*base, *READ, "-o", tmp_path / "b.csv", check=True)  # the flags given again: the same numbers
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))
    assert contrec.load(fitted).reading_ == {"user": "user_id", "item": "item_id", "rating": "rating",
                                             "min_rating": 4.0, "weight": None, "timestamp": None, "sep": None,
                                             "names": None, "encoding": "utf-8"}


def test_contrec_own_files_are_read_with_the_defaults_and_a_stranger_gets_the_flags_it_needs(halves, fitted, cli,
                                                                                            tmp_path):
    _, _, later = halves
    frame = pd.read_csv(later, dtype=str)
    kept = frame[frame["rating"].astype(int) >= 4]
    kept.rename(columns={"user_id": "user", "item_id": "item"})[["user", "item"]].to_csv(tmp_path / "split.csv",
                                                                                          index=False)
    own = cli("evaluate", fitted, tmp_path / "split.csv", "-k", "5", "--drop-unknown", "-o", tmp_path / "a.csv",
              check=True)
    assert "training log was read" not in own.stderr
    cli("evaluate", fitted, later, "-k", "5", "--drop-unknown", "-o", tmp_path / "b.csv", check=True)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))
    frame.rename(columns={"user_id": "uid"}).to_csv(tmp_path / "other.csv", index=False)
    bad = cli("evaluate", fitted, tmp_path / "other.csv", "--drop-unknown")
    errors = bad.stderr.strip().splitlines()
    assert bad.returncode == 1 and len(errors) == 1
    assert "missing column 'user_id'" in errors[0] and errors[0].endswith(
        f"({fitted} was fitted on a log read with --user user_id --item item_id --rating rating --min-rating 4)")
    given = cli("evaluate", fitted, tmp_path / "other.csv", "--user", "uid", "--item", "item_id", "--drop-unknown")
    assert given.returncode == 0  # flags given: the remembered ones stay out, none is half-merged


def test_score_and_fit_from_read_the_training_logs_columns(halves, fitted, cli, tmp_path):
    folder, _, later = halves
    model = contrec.load(fitted)
    pairs = pd.DataFrame({"user_id": model.users_.ids[:3], "item_id": model.items_.ids[:3]})
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    scored = pd.read_csv(io.StringIO(cli("score", fitted, tmp_path / "pairs.csv", check=True).stdout), dtype=str)
    np.testing.assert_allclose(scored["score"].astype(float),
                               model.score(pairs["user_id"], pairs["item_id"])["score"], rtol=1e-6)
    done = cli("fit", later, "--from", fitted, "--update-epochs", "1", "--threads", "1", "-o", tmp_path / "u.contrec",
               check=True)
    assert "training log was read" in done.stderr and contrec.load(tmp_path / "u.contrec").reading_["user"] == "user_id"
    # an update given its own flags records them: the next update meets that file's shape
    frame = pd.read_csv(later, dtype=str).rename(columns={"user_id": "who", "item_id": "what"})
    frame.to_csv(tmp_path / "renamed.csv", index=False)
    cli("fit", tmp_path / "renamed.csv", "--from", fitted, "--user", "who", "--item", "what", "--update-epochs", "1",
        "--threads", "1", "-o", tmp_path / "r.contrec", check=True)
    assert contrec.load(tmp_path / "r.contrec").reading_["user"] == "who"


def test_a_headerless_log_is_not_read_by_position_from_memory(halves, tmp_path, cli):
    _, train, later = halves
    pd.read_csv(train, dtype=str)[["user_id", "item_id", "rating"]].to_csv(tmp_path / "log.tsv", sep="\t",
                                                                           header=False, index=False)
    names = ["--names", "who,what,stars", "--user", "who", "--item", "what"]
    cli("fit", tmp_path / "log.tsv", *names, *FIT, "-o", tmp_path / "m.contrec", check=True)
    # a file with a header whose columns come in another order: by position it would read items as users
    test = pd.read_csv(later, dtype=str)
    test[["item_id", "user_id"]].rename(columns={"item_id": "item", "user_id": "user"}).to_csv(
        tmp_path / "swapped.csv", index=False)
    own = cli("evaluate", tmp_path / "m.contrec", tmp_path / "swapped.csv", "--drop-unknown", check=True)
    assert "training log was read" not in own.stderr
    test[["user_id", "item_id", "rating"]].to_csv(tmp_path / "later.tsv", sep="\t", header=False, index=False)
    bad = cli("evaluate", tmp_path / "m.contrec", tmp_path / "later.tsv")
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0
    assert "was fitted on a log read with --user who --item what --names who,what,stars" in bad.stderr
    assert cli("evaluate", tmp_path / "m.contrec", tmp_path / "later.tsv", *names, "--drop-unknown").returncode == 0


def test_the_record_survives_save_and_load_and_a_damaged_one_is_refused(halves, cli, tmp_path):
    _, train, _ = halves
    cli("fit", train, *READ, "--model", "popularity", "-o", tmp_path / "p.contrec", "-q", check=True)
    assert contrec.load(tmp_path / "p.contrec").reading_["item"] == "item_id"
    refitted = contrec.load(tmp_path / "p.contrec").fit(contrec.read_interactions(train, user="user_id",
                                                                                   item="item_id"))
    assert refitted.reading_ is None  # a baseline fitted again in Python forgets it too
    python_fit = contrec.PopularityRecommender().fit(contrec.read_interactions(train, user="user_id", item="item_id"))
    python_fit.save(tmp_path / "q.contrec")
    assert contrec.load(tmp_path / "q.contrec").reading_ is None  # no CLI read: nothing remembered
    arrays, meta = read_artifact(tmp_path / "p.contrec")
    write_artifact(tmp_path / "bad.contrec", arrays, {**meta, "reading": ["user_id"]})
    with pytest.raises(ModelFileError, match="damaged model file .*how the training log was read"):
        contrec.load(tmp_path / "bad.contrec")


def test_a_new_fit_in_python_forgets_the_record_and_an_update_keeps_it(halves, fitted, tmp_path):
    _, train, later = halves
    # a loaded model refitted in Python on another log: the old flags (--min-rating 4 among them) no longer
    # say how its log was read, and applying them to the next evaluate would drop rows silently
    refit = contrec.load(fitted)
    frame = pd.read_csv(train, dtype=str)
    refit.fit(contrec.Interactions.from_frame(frame, user="user_id", item="item_id"))
    assert refit.reading_ is None
    refit.save(tmp_path / "refit.contrec")
    assert contrec.load(tmp_path / "refit.contrec").reading_ is None
    updated = contrec.load(fitted)
    updated.fit(contrec.read_interactions(later, user="user_id", item="item_id"), warm_start=True, update_epochs=1)
    assert updated.reading_ == contrec.load(fitted).reading_  # the same model, continued on a log of its shape
