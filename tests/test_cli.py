"""CLI via main([...]): exit codes, outputs, and one-line errors that leave no output file."""

from pathlib import Path

import re

import numpy as np
import pandas as pd
import pytest

import contrec

from contrec.cli import main

from .conftest import SAMPLE_CSV

READ = ["--user", "user_id", "--item", "item_id", "--rating", "rating", "--min-rating", "4"]
FIT = ["--epochs", "3", "--dim", "8", "--n-negatives", "16", "--batch-size", "64", "-q"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "model.contrec"
    assert main(["fit", str(SAMPLE_CSV), *READ, *FIT, "--user-tower", "id", "-o", str(out)]) == 0
    return out


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("contrec: error:")]
    assert len(errors) == 1, err
    assert not any("Traceback" in line for line in err)
    return errors[0]


def test_ctrl_c_replaced_by_a_cleanup_error_is_still_an_interrupt(monkeypatch, capsys):
    import argparse
    import importlib

    cli_main = importlib.import_module("contrec.cli.main")  # the module; contrec.cli.main is also the function

    def interrupted_in_cleanup(args):
        try:
            raise KeyboardInterrupt
        finally:
            raise ValueError("seek of closed file")  # what zipfile raises closing a half-written zip

    def failing(args):
        raise ValueError("a real bug")

    def parser_running(func):  # a one-command CLI whose command is ``func``
        parser = argparse.ArgumentParser(prog="contrec")
        parser.add_argument("-q", "--quiet", action="store_true")
        parser.set_defaults(func=func)
        return lambda: parser

    monkeypatch.setattr(cli_main, "build_parser", parser_running(interrupted_in_cleanup))
    assert main([]) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["contrec: interrupted"]
    monkeypatch.setattr(cli_main, "build_parser", parser_running(failing))
    with pytest.raises(ValueError, match="a real bug"):  # other errors are not hidden as interrupts
        main([])


def test_fit_recommend_round_trip(model_file, tmp_path, capsys):
    out = tmp_path / "recs.csv"
    assert main(["recommend", str(model_file), "--users", "u01,u02", "-k", "5", "-o", str(out)]) == 0
    recs = pd.read_csv(out, dtype={"user": str, "item": str})
    assert list(recs.columns) == ["user", "item", "score", "rank"]
    assert recs.groupby("user").size().to_dict() == {"u01": 5, "u02": 5}
    assert main(["recommend", str(model_file), "--all-users", "-k", "2"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0] == "user,item,score,rank" and len(printed) == 1 + 2 * 40


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_split_then_evaluate(model_file, tmp_path, capsys, suffix):
    """A .tsv output is written tab-separated, as the readers read a .tsv (it was written with commas, so
    `fit` refused `split`'s own output)."""
    train, test = tmp_path / f"train{suffix}", tmp_path / f"test{suffix}"
    assert main(["split", str(SAMPLE_CSV), *READ, "--test-size", "0.25", "--train-out", str(train),
                 "--test-out", str(test), "-q"]) == 0
    assert ("\t" in train.read_text().splitlines()[0]) == (suffix == ".tsv")
    model = tmp_path / "m.contrec"
    assert main(["fit", str(train), *FIT, "-o", str(model)]) == 0
    metrics = tmp_path / "metrics.csv"
    assert main(["evaluate", str(model), str(test), "-k", "5,10", "--drop-unknown", "-o", str(metrics), "-q"]) == 0
    table = pd.read_csv(metrics)
    assert set(table["metric"]) >= {"ndcg", "recall", "map", "mrr", "hit_rate", "coverage"}
    assert sorted(table["k"].unique()) == [5, 10]
    assert main(["evaluate", str(model), str(test), "--drop-unknown", "-q"]) == 0
    assert "ndcg" in capsys.readouterr().out


def test_split_leave_one_out_and_a_split_that_holds_out_nothing(tmp_path, capsys):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    assert main(["split", str(SAMPLE_CSV), *READ, "--test-size", "1", "--train-out", str(train),
                 "--test-out", str(test), "-q"]) == 0
    held = pd.read_csv(test, dtype=str)
    assert held["user"].is_unique and held["user"].nunique() == pd.read_csv(train, dtype=str)["user"].nunique()
    pairs = tmp_path / "pairs.csv"  # two positives per user: a fifth of two rounds to none
    pairs.write_text("user,item\n" + "".join(f"u{u},i{u}\nu{u},i{u + 1}\n" for u in range(5)))
    assert main(["split", str(pairs), "--train-out", str(tmp_path / "a.csv"), "--test-out", str(tmp_path / "b.csv")]) == 1
    assert ("pairs.csv: --test-size 0.2 holds out nothing: every user has too few positives (half of them have ≤ 2); "
            "hold out a count per user instead (--test-size 1: leave-one-out)") in one_error_line(capsys)
    assert not (tmp_path / "a.csv").exists() and not (tmp_path / "b.csv").exists()
    assert main(["split", str(pairs), "--test-size", "2.5", "--train-out", str(tmp_path / "a.csv"),
                 "--test-out", str(tmp_path / "b.csv")]) == 2


def test_evaluate_with_k_beyond_the_catalogue_says_which_k(model_file, capsys):
    n_items = len(contrec.ContrastiveRecommender.load(model_file).items_)
    assert main(["evaluate", str(model_file), str(SAMPLE_CSV), *READ, "-k", "1000", "-q"]) == 1
    assert f"k=1000 is larger than the catalogue ({n_items} items); pass -k {n_items} or less" in one_error_line(capsys)


def test_datasets_list(capsys):
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert "ml-100k" in out and "ml-32m" in out


@pytest.mark.integration
def test_datasets_fetch_of_a_local_copy_announces_no_download(data_dir, capsys):
    assert main(["datasets", "fetch", "ml-100k", "--data-dir", str(data_dir)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"ml-100k: {data_dir / 'ml-100k'}"
    assert "archive from" not in captured.err  # nothing is downloaded, so nothing is announced


def bad_cases(tmp: Path, model: Path) -> list[tuple[str, list[str], str]]:
    csv = tmp / "x.csv"
    return [
        ("missing column", [str(SAMPLE_CSV), "--user", "userId"], "missing columns 'userId', 'item'"),
        ("empty file", [_file(tmp, "empty.csv", b"")], "the file is empty"),
        ("header only", [_file(tmp, "header.csv", b"user,item\n")], "has a header but no data rows"),
        ("empty user", [_file(tmp, "nan.csv", b"user,item\n,a\n")], "line 2: column 'user' is empty"),
        ("bad rating", [_file(tmp, "r.csv", b"user,item,r\na,b,x\n"), "--rating", "r"], "value 'x' is not"),
        ("negative weight", [_file(tmp, "w.csv", b"user,item,w\na,b,-1\n"), "--weight", "w"], "negative weight"),
        ("non-utf8", [_file(tmp, "enc.csv", b"user,item\na,\xff\n")], "not valid utf-8"),
        ("wrong delimiter", [_file(tmp, "semi.csv", b"user;item\na;b\n"), "--sep", ","], "seems to be ';'"),
        ("min-rating without rating", [str(SAMPLE_CSV), "--min-rating", "4"], "--min-rating needs a rating column: pass --rating"),
        ("no such file", [str(csv)], "no such file"),
    ]


def _file(tmp: Path, name: str, blob: bytes) -> str:
    path = tmp / name
    path.write_bytes(blob)
    return str(path)


def test_fit_bad_inputs_one_line_and_no_output(tmp_path, model_file, capsys):
    for name, args, message in bad_cases(tmp_path, model_file):
        out = tmp_path / f"{name.replace(' ', '_')}.contrec"
        code = main(["fit", *args, *FIT, "-o", str(out)])
        line = one_error_line(capsys)
        assert code == 1, name
        assert message in line, (name, line)
        assert not out.exists(), name


@pytest.mark.parametrize("model,args,message", [
    ("model_file", ["--users", "u01,nobody"], "user id 'nobody' is not in the training data (40 known users)"),
    ("model_file", ["--users", "u01", "-k", "0"], "k must be a positive integer"),
    ("model_file", ["--users", "u01", "-k", "1000"], "is larger than the catalogue"),
    ("history_model_file", ["--history", "no-such-item"], "item id 'no-such-item' is not in the catalogue"),
    ("history_model_file", ["--history", " , "], "--history is empty"),
    ("history_model_file", ["--histories-file", "missing.csv"], "missing.csv: no such file"),
])
def test_recommend_errors(request, tmp_path, capsys, model, args, message):
    out = tmp_path / "recs.csv"
    assert main(["recommend", str(request.getfixturevalue(model)), *args, "-o", str(out)]) == 1
    assert message in one_error_line(capsys)
    assert not out.exists()


def test_recommend_for_a_users_file_and_a_header_in_it(model_file, tmp_path, capsys):
    users = tmp_path / "users.txt"
    users.write_text("u01\nu02\n", encoding="utf-8")
    out = tmp_path / "recs.csv"
    assert main(["recommend", str(model_file), "--users-file", str(users), "-k", "3", "-o", str(out)]) == 0
    assert sorted(pd.read_csv(out, dtype=str)["user"].unique()) == ["u01", "u02"]
    users.write_text("user_id\nu01\nu02\n", encoding="utf-8")  # the header of a CSV the user had at hand
    assert main(["recommend", str(model_file), "--users-file", str(users), "-o", str(tmp_path / "h.csv")]) == 1
    assert "line 1 'user_id' is not a user id the model knows, but every other line is — a header?" \
        in one_error_line(capsys)


def test_compressed_training_users_and_allow_lists_and_damaged_ones(model_file, tmp_path, capsys):
    import gzip

    data = tmp_path / "ratings.csv.gz"
    data.write_bytes(gzip.compress(SAMPLE_CSV.read_bytes()))
    model = tmp_path / "gz.contrec"
    assert main(["fit", str(data), *READ, *FIT, "--user-tower", "id", "-o", str(model)]) == 0
    users = tmp_path / "users.txt.gz"
    users.write_bytes(gzip.compress(b"u01\nu02\n"))
    out = tmp_path / "recs.csv"
    assert main(["recommend", str(model), "--users-file", str(users), "-k", "3", "-o", str(out)]) == 0
    assert sorted(pd.read_csv(out, dtype=str)["user"].unique()) == ["u01", "u02"]
    damaged = tmp_path / "in_stock.csv.gz"
    damaged.write_bytes(gzip.compress(b"item\n" + b"i001\n" * 500)[:25])
    assert main(["recommend", str(model_file), "--users", "u01", "--items-file", str(damaged),
                 "-o", str(tmp_path / "r2.csv")]) == 1
    assert "in_stock.csv.gz: a damaged gzip file (" in one_error_line(capsys)


def test_serving_lists_say_which_ids_the_model_does_not_know(model_file, tmp_path, capsys):
    allowed = tmp_path / "in_stock.txt"
    known = pd.read_csv(SAMPLE_CSV, dtype=str)["item_id"].unique()[:4].tolist()
    allowed.write_text("\n".join([*known, "sold-out-new"]) + "\n", encoding="utf-8")
    out = tmp_path / "recs.csv"
    assert main(["recommend", str(model_file), "--users", "u01", "--items-file", str(allowed), "-k", "2",
                 "--include-seen", "-o", str(out)]) == 0
    assert set(pd.read_csv(out, dtype=str)["item"]) <= set(known)
    err = capsys.readouterr().err
    assert f"--items-file {allowed}: 1 of its 5 item ids are not in the model's catalogue and were ignored: " \
           "'sold-out-new'" in err


def test_corrupt_model_and_missing_output_dir(model_file, tmp_path, capsys):
    broken = tmp_path / "broken.contrec"
    broken.write_bytes(model_file.read_bytes()[:100])
    assert main(["recommend", str(broken), "--users", "u01"]) == 1
    assert "not a readable contrec model file" in one_error_line(capsys)
    assert main(["recommend", str(model_file), "--users", "u01", "-o", str(tmp_path / "no" / "r.csv")]) == 1
    assert "does not exist" in one_error_line(capsys)
    assert main(["fit", str(SAMPLE_CSV), *READ, *FIT, "-o", str(tmp_path / "no" / "m.contrec")]) == 1
    assert "does not exist" in one_error_line(capsys)


def test_existing_output_is_not_overwritten_on_failure(model_file, tmp_path, capsys):
    out = tmp_path / "recs.csv"
    out.write_text("keep me")
    assert main(["recommend", str(model_file), "--users", "nobody", "-o", str(out)]) == 1
    assert out.read_text() == "keep me"


def test_usage_errors_exit_2(capsys):
    assert main(["recommend"]) == 2
    assert main(["nonsense"]) == 2
    assert main(["--version"]) == 0


def test_fit_with_samplers_and_rules(tmp_path, capsys):
    data = tmp_path / "log.csv"
    data.write_text("user,item\n" + "".join(f"u{u},i{(u * 7 + k) % 30}\n" for u in range(30) for k in range(5)))
    out = tmp_path / "m.contrec"
    assert main(["fit", str(data), *FIT, "--sampler", "popularity", "--sampler-params", '{"alpha": 0.5}',
                 "--exclude-positives", "-o", str(out)]) == 0
    assert main(["fit", str(data), *FIT, "--sampler", "mixed", "--sampler-params",
                 '{"components": {"uniform": 0.5, "hard": 0.5}}', "--hardness", "0.5", "-o", str(out)]) == 0


@pytest.mark.parametrize("args,message", [
    (["--sampler", "popular"], "unknown sampler 'popular'; choose one of: uniform, popularity"),
    (["--sampler-params", "{alpha: 1}"], "--sampler-params is not valid JSON"),
    (["--sampler", "popularity", "--sampler-params", '{"alpha": -1}'], "alpha must be ≥ 0"),
    (["--rule", "disjoint(genres)"], "--rule goes with --sampler domain-rule"),
    (["--sampler", "domain-rule", "--rule", "disjoint(genres"], "ends early"),
    (["--sampler", "domain-rule", "--rule", "disjoint(genres)"], "needs item attributes"),
    (["--debias-prior", "1.5"], "debias_prior must be in [0, 1)"),
])
def test_fit_sampler_errors(tmp_path, capsys, args, message):
    out = tmp_path / "m.contrec"
    assert main(["fit", str(SAMPLE_CSV), *READ, *FIT, *args, "-o", str(out)]) == 1
    assert message in one_error_line(capsys)
    assert not out.exists()


def test_domain_rule_with_an_attribute_file(tmp_path, capsys):
    data = tmp_path / "log.csv"
    data.write_text("user,item\n" + "".join(f"u{u},i{(u * 7 + k) % 30}\n" for u in range(30) for k in range(5)))
    attrs = tmp_path / "items.csv"
    attrs.write_text("item_id,genres\n" + "".join(f"i{j},{'A|B' if j % 2 else 'C'}\n" for j in range(30)))
    out = tmp_path / "m.contrec"
    assert main(["fit", str(data), *FIT, "--sampler", "domain-rule", "--rule", "disjoint(genres)",
                 "--item-attributes", str(attrs), "--item-attributes-id", "item_id", "-o", str(out)]) == 0
    assert main(["fit", str(data), *FIT, "--sampler", "domain-rule", "--rule", "disjoint(genres)",
                 "--item-attributes", str(attrs), "-o", str(tmp_path / "x.contrec")]) == 1
    assert "missing item id column 'item'" in one_error_line(capsys)


def test_attribute_items_put_new_items_in_the_catalogue_and_serve_them(tmp_path, capsys):
    data = tmp_path / "log.csv"
    data.write_text("user,item\n" + "".join(f"u{u},i{(u * 7 + k) % 30}\n" for u in range(30) for k in range(5)))
    attrs = tmp_path / "items.csv"  # i30–i34: listed with their genres, never interacted with
    attrs.write_text("item,genres\n" + "".join(f"i{j},{'A|B' if j % 2 else 'C'}\n" for j in range(35)))
    out = tmp_path / "m.contrec"
    assert main(["fit", str(data), *FIT, "--encoder", "features", "--item-attributes", str(attrs),
                 "--attribute-items", "-o", str(out)]) == 0
    model = contrec.ContrastiveRecommender.load(out)
    assert len(model.items_) == 35 and np.asarray(model.seen_.sum(0)).ravel()[30:].sum() == 0
    new = [f"i{j}" for j in range(30, 35)]
    recs = model.recommend(["u1"], k=3, items=new)  # served from their attributes alone
    assert len(recs) == 3 and set(recs["item"]) <= set(new)
    assert main(["fit", str(data), *FIT, "--attribute-items", "-o", str(tmp_path / "x.contrec")]) == 1
    assert "--attribute-items needs --item-attributes" in one_error_line(capsys)


@pytest.fixture(scope="module")
def history_model_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-history") / "history.contrec"
    assert main(["fit", str(SAMPLE_CSV), *READ, *FIT, "--encoder", "history", "--pooling", "attention",
                 "-o", str(out)]) == 0
    return out


def test_recommend_for_new_users_from_the_cli(history_model_file, tmp_path):
    frame = pd.read_csv(SAMPLE_CSV, dtype=str)
    items = list(frame["item_id"].unique()[:3])
    out = tmp_path / "new.csv"
    assert main(["recommend", str(history_model_file), "--history", ",".join(items), "-k", "4", "-o", str(out)]) == 0
    recs = pd.read_csv(out, dtype=str)
    assert list(recs.columns) == ["query", "item", "score", "rank"] and len(recs) == 4
    assert not set(recs["item"]) & set(items)
    queries = tmp_path / "queries.csv"
    pd.DataFrame({"query": ["a", "a", "b"], "item": [items[0], items[1], items[2]]}).to_csv(queries, index=False)
    assert main(["recommend", str(history_model_file), "--histories-file", str(queries), "-k", "3",
                 "-o", str(out)]) == 0
    assert pd.read_csv(out, dtype=str).groupby("query").size().to_dict() == {"a": 3, "b": 3}


def test_side_files_saved_by_excel_as_unicode_text_read_too(history_model_file, tmp_path):
    users = tmp_path / "users.txt"
    users.write_bytes("u01\r\nu02\r\n".encode("utf-16"))
    out = tmp_path / "recs.csv"
    assert main(["recommend", str(history_model_file), "--users-file", str(users), "-k", "3", "-o", str(out)]) == 0
    assert sorted(pd.read_csv(out, dtype=str)["user"].unique()) == ["u01", "u02"]
    items = list(pd.read_csv(SAMPLE_CSV, dtype=str)["item_id"].unique()[:2])
    queries = tmp_path / "queries.txt"
    queries.write_bytes(f"query,item\r\nq,{items[0]}\r\nq,{items[1]}\r\n".encode("utf-16"))
    assert main(["recommend", str(history_model_file), "--histories-file", str(queries), "-k", "3",
                 "-o", str(out)]) == 0
    assert pd.read_csv(out, dtype=str)["query"].tolist() == ["q"] * 3


def test_histories_file_errors_name_the_file(history_model_file, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item\nu1,i1\n")
    assert main(["recommend", str(history_model_file), "--histories-file", str(bad)]) == 1
    assert "bad.csv: missing column 'query'" in one_error_line(capsys)
    bad.write_text("query,item\nq1,\n")
    assert main(["recommend", str(history_model_file), "--histories-file", str(bad)]) == 1
    assert "bad.csv: line 2: empty query or item" in one_error_line(capsys)
    bad.write_text("")
    assert main(["recommend", str(history_model_file), "--histories-file", str(bad)]) == 1
    assert "bad.csv: the file is empty" in one_error_line(capsys)


def test_id_model_refuses_histories_and_tower_flags_are_checked(model_file, tmp_path, capsys):
    assert main(["recommend", str(model_file), "--history", "i1"]) == 1
    assert "needs a model fitted with user_tower='history'" in one_error_line(capsys)
    out = tmp_path / "m.contrec"
    assert main(["fit", str(SAMPLE_CSV), *READ, *FIT, "--encoder", "lightgcn", "-o", str(out)]) == 1
    assert "unknown encoder 'lightgcn'; choose one of: id, features" in one_error_line(capsys)
    assert main(["fit", str(SAMPLE_CSV), *READ, *FIT, "--similarity", "kernel-mixture", "--similarity-params",
                 "{\"weight\": 3}", "-o", str(out)]) == 1
    assert "kernel-mixture weight must be in [0, 1]" in one_error_line(capsys)
    assert not out.exists()
    assert main(["fit", str(SAMPLE_CSV), *READ, *FIT, "--similarity", "kernel-mixture", "--similarity-params",
                 "{\"weight\": 0.3}", "--objective", "bpr", "--projection", "16", "-o", str(out)]) == 0


@pytest.mark.parametrize("refit", [True, False])
def test_fit_with_validation_never_recommends_input_pairs(tmp_path, refit):
    """Issue 15.1: train ∪ validation stay known to the saved model (refitted by default, or early-stopped)."""
    model, recs = tmp_path / "m.contrec", tmp_path / "recs.csv"
    flags = [] if refit else ["--no-refit"]
    assert main(["fit", str(SAMPLE_CSV), *READ, *FIT, "--validation-size", "0.3", *flags, "-o", str(model)]) == 0
    assert main(["recommend", str(model), "--all-users", "-k", "10", "-o", str(recs), "-q"]) == 0
    given = pd.read_csv(SAMPLE_CSV, dtype=str).query("rating.astype('float') >= 4")
    out = pd.read_csv(recs, dtype=str)
    assert len(out) > 0
    assert not set(zip(given["user_id"], given["item_id"])) & set(zip(out["user"], out["item"]))
    saved = contrec.ContrastiveRecommender.load(model)
    assert saved.seen_.nnz == len(given)


def test_evaluate_counts_unknown_test_items_as_misses(tmp_path, capsys):
    """Issue 15.3: the file path and the Python path share one definition; unknown items are misses, not dropped."""
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    assert main(["split", str(SAMPLE_CSV), *READ, "--test-size", "0.25", "--train-out", str(train),
                 "--test-out", str(test), "-q"]) == 0
    model = tmp_path / "m.contrec"
    assert main(["fit", str(train), *FIT, "-o", str(model)]) == 0
    with open(test, "a") as fh:  # items released after the model was trained: relevant, not retrievable
        fh.write("u01,new-1,1.0\nu02,new-2,1.0\nu02,new-3,1.0\n")
    metrics = tmp_path / "metrics.csv"
    capsys.readouterr()
    assert main(["evaluate", str(model), str(test), "-k", "10", "-o", str(metrics)]) == 0
    log = capsys.readouterr().err
    rows_test, rows_train = pd.read_csv(test, dtype=str), pd.read_csv(train, dtype=str)
    unknown = int((~rows_test["item"].isin(rows_train["item"])).sum())
    assert unknown > 0 and f"; {unknown} of them are on items the model does not know" in log
    loaded = contrec.ContrastiveRecommender.load(model)
    known = contrec.Interactions(loaded.seen_, loaded.users_, loaded.items_)
    held = contrec.read_interactions(test, users=loaded.users_, items=loaded.items_, unknown_items="extend")
    expected = contrec.evaluate(loaded, known, held, k=10)
    got = pd.read_csv(metrics)
    assert np.allclose(got["value"], expected["value"])
    with pytest.warns(contrec.DroppedRowsWarning, match="unknown-item rows"):
        kept_only = contrec.read_interactions(test, users=loaded.users_, items=loaded.items_, unknown="drop")
    dropped = contrec.evaluate(loaded, known, kept_only, k=10)
    recall = lambda t: float(t.loc[t["metric"] == "recall", "value"].iloc[0])  # noqa: E731
    assert recall(expected) < recall(dropped)  # dropping them inflated recall


def test_weight_column_is_announced_by_fit_and_help(tmp_path, capsys):
    """Issue 15.5: --weight on the contrastive model warns once; --help says who uses weights."""
    assert main(["fit", str(SAMPLE_CSV), "--user", "user_id", "--item", "item_id", "--weight", "rating", *FIT,
                 "-o", str(tmp_path / "m.contrec")]) == 0
    err = capsys.readouterr().err.splitlines()
    warned = [line for line in err if line.startswith("contrec: warning:") and "treats every positive alike" in line]
    assert len(warned) == 1, err
    assert main(["fit", "--help"]) == 0
    assert "treats every positive alike" in " ".join(capsys.readouterr().out.split())
    # issue 17.4: --positive-weights makes them count, and then there is nothing to warn about
    assert main(["fit", str(SAMPLE_CSV), "--user", "user_id", "--item", "item_id", "--weight", "rating", *FIT,
                 "--positive-weights", "log1p", "-o", str(tmp_path / "w.contrec")]) == 0
    assert "warning" not in capsys.readouterr().err
    assert contrec.ContrastiveRecommender.load(tmp_path / "w.contrec").positive_weights == "log1p"


def test_every_option_says_what_it_does_and_model_defaults_come_from_the_signature(capsys):
    """Issue 15.13: no option without help text; fit's defaults are the model's, never retyped."""
    import argparse
    import inspect

    from contrec.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help, (name, action.option_strings or action.dest)
    signature = inspect.signature(contrec.ContrastiveRecommender).parameters
    fit = commands["fit"]
    for action in fit._actions:
        if action.dest in signature and action.default is not None:
            assert action.default == signature[action.dest].default, action.dest
    assert main(["fit", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag, value in (("--dim DIM", 128), ("--epochs EPOCHS", 20), ("--lr LR", 0.01), ("--validation-size VALIDATION_SIZE", 0.1),
                        ("--n-negatives N_NEGATIVES", 1024), ("--pooling", "mean")):
        start = text.rindex(flag)  # the options list, after the usage line
        assert re.search(r"\(default: ([^)]*)\)", text[start:]).group(1) == str(value), flag
    tau = text[text.rindex("--temperature TEMPERATURE"):]  # the kernels' own defaults, from the registry
    assert re.search(r"\(default: the kernel's own: dot 0.2, cosine 0.2, gaussian 0.4,", tau), tau[:200]
    assert isinstance(parser, argparse.ArgumentParser)


def test_a_malformed_command_line_is_one_line_and_exit_2(capsys):
    """Issue 15.12: `-k ten` is one error line (and a hint), not the usage block."""
    assert main(["recommend", "m.contrec", "--all-users", "-k", "ten"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["contrec: error: argument -k: invalid int value: 'ten'", "contrec: see 'contrec recommend --help'"]


def test_progress_in_a_log_is_one_line_per_epoch_not_a_redrawn_bar(tmp_path, capsys):
    """Issue 15.14: stderr that is not a terminal gets epoch lines, no carriage returns."""
    assert main(["fit", str(SAMPLE_CSV), *READ, "--epochs", "3", "--dim", "8", "--n-negatives", "16",
                 "--batch-size", "64", "-o", str(tmp_path / "m.contrec")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    for tower in ("id", "history"):  # each carve fit (user_tower auto), early-stopped, says which it is
        carve = sum(line.startswith(f"contrec: validation carve (user_tower='{tower}'): epoch ") for line in lines)
        assert 1 <= carve <= 3, tower
    assert sum(line.startswith("contrec: validation carve: chose user_tower=") for line in lines) == 1
    assert sum(line.startswith("contrec: epoch ") for line in lines) == int(re.search(
        r"best epoch on the 10% validation carve: (\d+)", err).group(1))
    assert re.search(r"trained on all [\d,]+ positives for \d+ epochs? with the (id|history) user tower", err)


def test_each_face_names_its_own_fix_for_an_unknown_user(model_file, capsys):
    """Issue 15.16: the CLI says --skip-unknown, Python says unknown='skip'; neither mixes the two."""
    assert main(["recommend", str(model_file), "--users", "nobody"]) == 1
    line = one_error_line(capsys)
    assert "--skip-unknown" in line and "unknown='skip'" not in line
    model = contrec.ContrastiveRecommender.load(model_file)
    with pytest.raises(contrec.DataError) as info:
        model.recommend(["nobody"])
    assert "unknown='skip'" in str(info.value) and "--skip-unknown" not in str(info.value)
