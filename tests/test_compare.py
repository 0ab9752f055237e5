"""`contrec compare`: config validation, tuning plans, leak audit, report on a tiny synthetic run, resume."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import contrec
from contrec.errors import ConfigError, DataError
from contrec.experiments import ExperimentConfig, compare, load_config
from contrec.experiments import fits as fits_module
from contrec.experiments.audit import audit_split, raise_on_failures
from contrec.experiments.fits import with_overrides as _with_overrides
from contrec.experiments.tuning import trial_settings as _trial_settings

TINY_CONTREC = {"dim": 8, "epochs": 4, "batch_size": 64, "n_negatives": 16, "lr": 0.05, "patience": 2}


# ---------------------------------------------------------------------------- config
def test_config_defaults_and_round_trip():
    cfg = ExperimentConfig.from_dict({"contestants": ["uniform", "ease", {"sampler": "popularity"}, "popularity"]})
    assert cfg.data.dataset == "ml-100k" and cfg.seeds == (0, 1, 2)
    # "popularity" alone is the baseline; the sampler's contestant is named contrec-popularity
    assert [c.name for c in cfg.contestants] == ["contrec-uniform", "ease", "contrec-popularity", "popularity"]
    assert cfg.contestants[2].params["sampler_params"] == {"alpha": 0.75}  # the comparison's sampler default
    assert "sampler_params.alpha" in cfg.contestants[2].space
    assert cfg.primary == "ndcg@20" and cfg.tuning.trials == 6
    again = ExperimentConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.hash() == cfg.hash()
    changed = ExperimentConfig.from_dict({**cfg.to_dict(), "seeds": [0, 1]})
    assert changed.hash() != cfg.hash()


def test_device_is_part_of_the_config_only_off_the_cpu():
    cpu = ExperimentConfig.from_dict({"contestants": ["uniform"]})
    assert cpu.device == "cpu" and "device" not in cpu.to_dict()  # a CPU config hashes as it always did
    gpu = ExperimentConfig.from_dict({"contestants": ["uniform"], "device": "cuda"})
    assert ExperimentConfig.from_dict(gpu.to_dict()) == gpu and gpu.hash() != cpu.hash()
    from contrec.experiments.pool import worker_count

    assert worker_count(gpu, 10) == 1  # one process drives the device unless workers says otherwise
    assert worker_count(ExperimentConfig.from_dict({**gpu.to_dict(), "workers": 3}), 10) == 3


def test_precision_flag_sets_every_contrec_contestant_and_float32_keeps_the_keys():
    from contrec.experiments import build_config

    raw = {"contestants": ["uniform", "als", {"similarity": "dot", "params": {"precision": "bfloat16", "lr": 0.02}}]}
    plain = build_config(raw)
    low = build_config(raw, precision="bfloat16")
    assert [c.params.get("precision") for c in low.contestants] == ["bfloat16", None, "bfloat16"]
    assert low.contestants[2].params["lr"] == 0.02 and low.contestants[1].params == plain.contestants[1].params
    # the flag overrides the file; float32, the model's default, is left unsaid so cached cells keep their keys
    back = build_config(raw, precision="float32")
    assert [c.params.get("precision") for c in back.contestants] == [None, None, None]
    assert back.contestants[0].params == plain.contestants[0].params
    assert build_config(raw, precision="bfloat16", samplers=["hard"]).contestants[0].params["precision"] == "bfloat16"


def test_positive_weights_flag_sets_every_contrec_contestant_over_its_setting_and_search():
    from contrec.experiments import build_config

    raw = {"contestants": ["uniform", "als", {"sampler": "popularity", "params": {"positive_weights": "linear"},
                                              "space": {"lr": [0.01, 0.02], "positive_weights": ["none", "log1p"]}}]}
    plain = build_config(raw)
    log1p = build_config(raw, positive_weights="log1p")
    assert [c.params.get("positive_weights") for c in log1p.contestants] == ["log1p", None, "log1p"]
    assert "positive_weights" not in log1p.contestants[2].space and log1p.contestants[2].space["lr"] == [0.01, 0.02]
    assert log1p.contestants[1].params == plain.contestants[1].params  # baselines keep theirs
    none = build_config(raw, positive_weights="none")  # the model's default: left unsaid, cells keep their keys
    assert [c.params.get("positive_weights") for c in none.contestants] == [None, None, None]
    assert none.contestants[0].params == plain.contestants[0].params
    assert none.weight_blind_contestants == ["contrec-uniform", "contrec-popularity"]
    assert log1p.weight_blind_contestants == []


def test_positive_weights_flag_reaches_the_fits_from_the_command_line(tmp_path):
    import yaml

    from contrec.cli import main

    csv = _write_tiny(tmp_path)
    pd.read_csv(csv).assign(plays=lambda f: f["t"] % 5 + 1).to_csv(tmp_path / "plays.csv", index=False)
    config = {"data": {"path": str(tmp_path / "plays.csv"), "rating": "rating", "weight": "plays"}, "seeds": [0],
              "threads": 1, "workers": 1, "tuning": {"enabled": False},
              "contestants": [{"sampler": "uniform", "params": TINY_CONTREC}]}
    (tmp_path / "w.yaml").write_text(yaml.safe_dump(config))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["compare", "--config", str(tmp_path / "w.yaml"), "--positive-weights", "capped",
                     "--out", str(tmp_path / "r"), "-q"]) == 0
    assert not [w for w in caught if "treats every positive alike" in str(w.message)]
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert "capped" in json.dumps(manifest["config"]["contestants"])
    assert "contrec-uniform (capped) draws heavier positives more often" in (tmp_path / "r" / "report.md").read_text()


def test_als_and_itemknn_search_how_weights_count_on_weighted_data_only():
    from contrec.experiments import build_config

    weighted = build_config({"data": {"path": "plays.csv", "weight": "plays"}, "contestants": ["als", "itemknn"]})
    als = weighted.contestants[0]
    assert als.params["confidence"] == "none" and als.space["confidence"] == ["none", "log1p", "linear"]
    assert als.space["factors"] == [64, 128, 256]  # the rest of its space stays
    knn = weighted.contestants[1]
    assert knn.params["weights"] == "none" and knn.space["weights"] == ["none", "log1p", "linear"]
    assert "confidence" not in knn.params and knn.space["neighbours"] == [10, 20, 50, 100, 200, 400]
    plain, plain_knn = build_config({"dataset": "ml-100k", "contestants": ["als", "itemknn"]}).contestants
    assert "confidence" not in plain.params and "confidence" not in plain.space  # cells keep their keys
    assert "weights" not in plain_knn.params and "weights" not in plain_knn.space
    mine = build_config({"data": {"path": "plays.csv", "weight": "plays"},
                         "contestants": [{"baseline": "als", "params": {"confidence": "log1p"},
                                          "space": {"alpha": [1.0, 5.0]}}]}).contestants[0]
    assert mine.params["confidence"] == "log1p" and mine.space == {"alpha": [1.0, 5.0]}  # the file's own word


def test_nobody_named_compares_three_samplers_with_the_scalable_baselines(capsys):
    from contrec.cli.main import main
    from contrec.experiments import build_config

    names = [c.name for c in build_config({"data": {"path": "plays.csv"}}).contestants]
    assert names == ["contrec-uniform", "contrec-popularity", "contrec-hard", "popularity", "als", "bpr"]
    assert [c.name for c in build_config(samplers=["hard"]).contestants] == ["contrec-hard"]  # a flag replaces them
    assert main(["compare", "--help"]) == 0
    assert "--samplers uniform,popularity,hard --baselines popularity,als,bpr" in " ".join(capsys.readouterr().out.split())


def test_a_bad_als_confidence_is_refused_before_any_fit(tmp_path, capsys):
    config = _tiny_config(tmp_path)
    config["contestants"].append({"baseline": "als", "params": {"confidence": "sqrt"}})
    with pytest.raises(ConfigError, match="contestant 'als': confidence must be one of 'linear', 'log1p', 'none'"):
        compare(config, progress=False)
    assert "'als'" in _cli_refusal(config, tmp_path, capsys)


def test_precision_refused_for_a_distance_kernel_names_the_contestant(tmp_path, capsys):
    config = _tiny_config(tmp_path)
    config["contestants"].append({"similarity": "gaussian", "params": TINY_CONTREC})
    with pytest.raises(ConfigError, match="contestant 'contrec-gaussian': precision='bfloat16' needs an inner-product"):
        compare(config, precision="bfloat16", progress=False)
    assert "'contrec-gaussian'" in _cli_refusal(config, tmp_path, capsys, "--precision", "bfloat16")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where there is no GPU")
def test_compare_on_a_missing_device_fails_before_any_fit(tmp_path, capsys):
    config = _tiny_config(tmp_path)
    with pytest.raises(ConfigError, match="device 'cuda' is not available here"):
        compare(config, device="cuda", progress=False)
    assert not (tmp_path / "r" / "cells").exists()
    assert "device 'cuda' is not available here" in _cli_refusal(config, tmp_path, capsys, "--device", "cuda")


def _cli_refusal(config: dict, folder: Path, capsys, *flags: str) -> str:
    """``contrec compare --config <config> <flags>`` that must fail before any fit: its one line of error."""
    import yaml

    from contrec.cli import main

    file = folder / "tiny.yaml"
    file.write_text(yaml.safe_dump(config))
    assert main(["compare", "--config", str(file), *flags, "--out", str(folder / "r"), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert not (folder / "r" / "cells").exists() or not any((folder / "r" / "cells").iterdir())
    return err[0]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_compare_trains_contrec_on_the_gpu(tmp_path):
    config = _tiny_config(tmp_path, trials=1)
    result = compare(config, device="cuda", out=tmp_path / "gpu", progress=False)
    assert result.config.device == "cuda" and "contrec fits on cuda" in (tmp_path / "gpu" / "report.md").read_text()
    ndcg = result.results[result.results["metric"] == "ndcg@20"]
    assert ndcg["value"].notna().all()


@pytest.mark.parametrize("raw, message", [
    ({"contestants": ["uniform"], "sedes": 3}, "unknown key 'sedes'"),
    ({"contestants": [{"sampler": "uniform", "baseline": "als"}]}, r"contestants\[1\]: give exactly one"),
    ({"contestants": [{"sampler": "unifrom"}]}, "unknown sampler 'unifrom'"),
    ({"contestants": [{"sampler": "domain-rule", "sampler_params": {"rule": "disjoint(genres)"}}]},
     r"unknown key 'sampler_params'.*a model's own settings go under params"),
    ({"contestants": [{"baseline": "svd"}]}, "unknown baseline 'svd'"),
    ({"contestants": ["uniform", "uniform"]}, "'contrec-uniform' is used twice"),
    ({"contestants": ["uniform"], "primary": "ndcg@50"}, "primary must be"),
    ({"contestants": ["uniform"], "protocol": {"split": "time"}}, "protocol.split"),
    ({"contestants": ["uniform"], "tuning": {"trials": 0}}, "tuning.trials"),
    ({"contestants": ["uniform"], "device": ""}, "device must be a torch device name"),
    ({"contestants": [{"baseline": "ease", "space": {"l2": 5}}]}, "space.l2 must be a non-empty list"),
    ({"contestants": []}, "contestants must be a non-empty list"),
    ({"dataset": "ml-100k", "data": {"path": "x.csv"}, "contestants": ["uniform"]}, "either dataset or data"),
])
def test_config_errors_name_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig.from_dict(raw)


def test_yaml_and_toml_files_describe_the_same_experiment(tmp_path):
    yaml_file = tmp_path / "exp.yaml"
    yaml_file.write_text("""
dataset: ml-100k
seeds: [0, 1]
tuning: {trials: 3}
contestants:
  - sampler: domain-rule
    name: genres
    params: {temperature: 0.15, sampler_params: {rule: "disjoint(genres) and differ(decade)"}}
  - baseline: ease
    space: {l2: [100, 500]}
""")
    toml_file = tmp_path / "exp.toml"
    toml_file.write_text("""
dataset = "ml-100k"
seeds = [0, 1]
[tuning]
trials = 3
[[contestants]]
sampler = "domain-rule"
name = "genres"
params = {temperature = 0.15, sampler_params = {rule = "disjoint(genres) and differ(decade)"}}
[[contestants]]
baseline = "ease"
space = {l2 = [100, 500]}
""")
    a, b = load_config(yaml_file), load_config(toml_file)
    assert a == b
    assert a.contestants[0].params["sampler_params"]["rule"] == "disjoint(genres) and differ(decade)"
    assert a.contestants[1].space == {"l2": [100, 500]}
    bad = tmp_path / "bad.yaml"
    bad.write_text("contestants: [uniform\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="exp.yaml: unknown key 'sede'"):
        yaml_file.write_text("sede: 1\ncontestants: [uniform]\n")
        load_config(yaml_file)


def test_trial_plans_start_with_defaults_and_are_distinct_and_seeded():
    cfg = ExperimentConfig.from_dict({"contestants": [{"sampler": "popularity"}, "hard", "ease"]})
    pop = cfg.contestants[0]
    plan = _trial_settings(pop, 6, seed=0)
    assert plan[0] == pop.params
    assert len(plan) == 6
    assert len({json.dumps(p, sort_keys=True) for p in plan}) == 6
    assert plan == _trial_settings(pop, 6, seed=0)
    assert plan != _trial_settings(pop, 6, seed=1)
    alphas = {p["sampler_params"]["alpha"] for p in plan}
    assert alphas <= {0.25, 0.5, 0.75, 1.0}
    assert all(p["sampler"] == "popularity" for p in plan)
    # a small space caps the budget: EASE has 7 values of l2, one of them its default (250)
    assert len(_trial_settings(cfg.contestants[2], 20, seed=0)) == 7


def test_with_overrides_sets_nested_keys_without_touching_the_input():
    base = {"sampler": "hard", "sampler_params": {"top_m": 100, "uniform_share": 0.5}}
    out = _with_overrides(base, {"sampler_params.top_m": 50, "lr": 0.02})
    assert out == {"sampler": "hard", "sampler_params": {"top_m": 50, "uniform_share": 0.5}, "lr": 0.02}
    assert base["sampler_params"]["top_m"] == 100


# ---------------------------------------------------------------------------- leak audit
def _frame_data(pairs, times=None):
    df = pd.DataFrame(pairs, columns=["user", "item"])
    if times is not None:
        df["t"] = times
        return contrec.Interactions.from_frame(df, timestamp="t")
    return contrec.Interactions.from_frame(df)


def test_audit_flags_train_test_overlap_and_future_training_rows():
    data = _frame_data([("a", "x"), ("a", "y"), ("a", "z"), ("b", "x"), ("b", "y")], times=[1, 2, 3, 1, 5])
    keep_train = np.array([True, True, True, True, False])
    train = data.subset(keep_train)
    test = data.subset(np.array([False, False, True, False, True]))  # (a, z) is in both: a leak
    checks = {c.check: c for c in audit_split(train, test, "seed 0", temporal=True)}
    assert checks["train ∩ test pairs"].status == "fail" and checks["train ∩ test pairs"].value == 1
    assert checks["train positives newer than the user's test"].status == "ok"
    with pytest.raises(DataError, match=r"leak audit failed on seed 0: train ∩ test pairs: 1 \(user, item\)"):
        raise_on_failures(list(checks.values()))
    # b's training row at t=5 is newer than b's test row at t=1
    train2 = data.subset(np.array([True, True, False, False, True]))
    test2 = data.subset(np.array([False, False, True, True, False]))
    checks2 = {c.check: c for c in audit_split(train2, test2, "seed 0", temporal=True)}
    assert checks2["train positives newer than the user's test"].value == 1
    assert checks2["train positives newer than the user's test"].status == "fail"
    assert checks2["train ∩ test pairs"].status == "ok"


def test_compare_refuses_a_leaking_split(tmp_path, monkeypatch):
    csv = _write_tiny(tmp_path)
    real_split = runner_module_split()

    def leaky(data, test_size=0.2, seed=0):
        train, test = real_split(data, test_size, seed)
        return data, test  # train = everything: every test pair is also in train

    monkeypatch.setattr("contrec.data.splits.split_random", leaky)
    with pytest.raises(DataError, match="leak audit failed on seed 0: train ∩ test pairs"):
        compare({"data": {"path": str(csv)}, "contestants": ["popularity"], "seeds": 1}, tune=False,
                progress=False)


def test_compare_reads_a_latin1_log_with_summed_duplicates(tmp_path, capsys):
    from contrec.cli import main

    frame = pd.read_csv(_write_tiny(tmp_path))
    frame["user"] = frame["user"].str.replace("u", "usuário_")  # not valid utf-8 once written as latin-1
    log = tmp_path / "plays.csv"
    pd.concat([frame, frame.head(5)]).to_csv(log, index=False, encoding="latin-1")  # five pairs twice
    args = ["compare", "--data", str(log), "--baselines", "popularity", "--seeds", "1", "--no-tune", "-q"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 1
    assert "plays.csv: line 2: column 'user' has bytes that are not valid utf-8" in capsys.readouterr().err
    assert main([*args, "--encoding", "latin-1", "--duplicates", "sum", "--weight", "rating",
                 "--out", str(tmp_path / "b")]) == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["config"]["data"]["encoding"] == "latin-1" and manifest["config"]["data"]["duplicates"] == "sum"
    assert pd.read_csv(tmp_path / "b" / "results.csv")["contestant"].unique().tolist() == ["popularity"]
    assert main([*args, "--encoding", "latin-1", "--duplicates", "error", "--out", str(tmp_path / "c")]) == 1
    assert "appears more than once; choose a duplicates policy" in capsys.readouterr().err  # it reached the reader


def runner_module_split():
    from contrec.data.splits import split_random

    return split_random


# ---------------------------------------------------------------------------- tiny end-to-end run
def _write_tiny(folder: Path, n_users: int = 60, n_items: int = 40) -> Path:
    """Two taste groups over genre-labelled items, as a CSV plus an item attribute file."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(n_users):
        group = u % 2
        liked = [i for i in range(n_items) if i % 2 == group and rng.random() < 0.6]
        liked += [i for i in range(n_items) if i % 2 != group and rng.random() < 0.08]
        rows += [(f"u{u}", f"i{i}", 5 if i % 2 == group else 4, 1000 + n) for n, i in enumerate(liked)]
    path = folder / "tiny.csv"
    pd.DataFrame(rows, columns=["user", "item", "rating", "t"]).to_csv(path, index=False)
    genres = ["Drama|Romance" if i % 2 else "Action|Sci-Fi" for i in range(n_items)]
    pd.DataFrame({"item": [f"i{i}" for i in range(n_items)], "genres": genres}).to_csv(folder / "items.csv",
                                                                                        index=False)
    return path


def _tiny_config(folder: Path, trials: int = 2) -> dict:
    csv = _write_tiny(folder)
    return {
        "data": {"path": str(csv), "rating": "rating", "timestamp": "t", "item_attributes": str(folder / "items.csv")},
        "seeds": [0, 1],
        "threads": 1,
        "workers": 1,  # in this process: the tests patch fits; test_parallel_workers_give_the_same_numbers spawns
        "tuning": {"trials": trials, "validation_size": 0.25},
        "contestants": [
            {"sampler": "uniform", "params": TINY_CONTREC},
            {"sampler": "domain-rule", "name": "genres", "params": TINY_CONTREC},
            {"baseline": "popularity"},
            {"baseline": "ease", "space": {"l2": [1.0, 10.0]}},
        ],
    }


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    out = folder / "report"
    config = _tiny_config(folder)
    result = compare(config, out=out, progress=False, command="contrec compare --config tiny.yaml")
    return config, out, result


def test_report_has_every_part(tiny_run):
    _, out, result = tiny_run
    for name in ("report.md", "report.html", "results.csv", "summary.csv", "tests.csv", "tuning.csv", "audit.csv",
                 "per_user.npz", "metric_ci.png", "curves.png", "popularity.png", "false_negatives.png",
                 "manifest.json"):
        assert (out / name).is_file(), name
    md = (out / "report.md").read_text()
    for section in ("## Results", "## Significance against the best", "## Tuning", "## Popularity bias",
                    "## False negatives", "## Leak audit", "## Protocol", "## Reproduce",
                    "contrec compare --config tiny.yaml"):
        assert section in md, section
    html_text = (out / "report.html").read_text()
    assert html_text.count("data:image/png;base64,") == 4
    assert 'src="http' not in html_text
    tables = sum(1 for a, b in zip([""] + md.splitlines(), md.splitlines()) if b.startswith("|") and not a.startswith("|"))
    assert html_text.count("<table>") == tables > 3  # every markdown table is an HTML table
    assert "**" not in html_text and "<strong>" in html_text and "<code>" in html_text
    for c in result.config.contestants:
        assert f"| {c.name}" in md


def test_results_csv_is_tidy_and_matches_per_user_arrays(tiny_run):
    config, out, result = tiny_run
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == ["contestant", "model", "sampler", "seed", "metric", "k", "value"]
    assert set(results["seed"]) == {0, 1}
    assert set(results["contestant"]) == {"contrec-uniform", "genres", "popularity", "ease"}
    fn = results[results["metric"] == "false_negative_rate"]
    assert set(fn["contestant"]) == {"contrec-uniform", "genres"} and fn["value"].between(0, 1).all()
    with np.load(out / "per_user.npz") as npz:
        for (name, seed), frame in result.per_user.items():
            values = npz[f"{name}/seed{seed}/ndcg@20"]
            mean = results.query("contestant == @name and seed == @seed and metric == 'ndcg' and k == 20")["value"]
            assert np.nanmean(values) == pytest.approx(float(mean.iloc[0]))
            assert len(npz[f"{name}/seed{seed}/users"]) == len(values)


def test_summary_statistics_and_significance(tiny_run):
    _, _, result = tiny_run
    row = result.summary.query("contestant == 'ease' and metric == 'ndcg' and k == 20").iloc[0]
    values = result.results.query("contestant == 'ease' and metric == 'ndcg' and k == 20")["value"].to_numpy()
    assert row["mean"] == pytest.approx(values.mean())
    assert row["ci95"] == pytest.approx(12.706205 * values.std(ddof=1) / np.sqrt(2), rel=1e-5)  # t(0.975, 1)
    assert result.best in result.tests.index and np.isnan(result.tests.loc[result.best, "t_pvalue"])
    assert result.tests.loc["popularity", "mean_diff"] < 0


def test_tuning_records_trials_and_chosen_settings(tiny_run):
    _, out, result = tiny_run
    tuning = pd.read_csv(out / "tuning.csv")
    # every seed is tuned on its own carve: trials × seeds settings; contrec's race in rungs (3 epochs, then 4)
    settings = tuning.groupby("contestant").apply(lambda t: len(t[["seed", "trial"]].drop_duplicates()))
    assert settings.to_dict() == {"ease": 4, "genres": 4, "popularity": 2, "contrec-uniform": 4}
    contrec = tuning[tuning["contestant"] == "contrec-uniform"]
    assert contrec.groupby("rung")["epochs"].max().to_dict() == {1: 3, 2: 4}
    assert contrec.groupby("rung").size().to_dict() == {1: 4, 2: 2}  # the better of each seed's two goes on
    for seed in (0, 1):
        first = contrec[(contrec["seed"] == seed) & (contrec["rung"] == 1)]
        on = first[first["promoted"]]
        assert len(on) == 1 and on["validation"].iloc[0] == first["validation"].max()
        assert contrec[(contrec["seed"] == seed) & (contrec["rung"] == 2)]["trial"].tolist() == on["trial"].tolist()
    assert tuning[tuning["contestant"] == "ease"]["rung"].eq(1).all()  # baselines: every setting to the end
    md = (out / "report.md").read_text()
    assert "Search: successive halving over epochs" in md and "8 at 3 → 4 at 4 epochs" in md
    for seed in (0, 1):
        ease = tuning[(tuning["contestant"] == "ease") & (tuning["seed"] == seed)].sort_values(
            "validation", ascending=False, kind="stable")
        assert result.chosen["ease"][seed] == json.loads(ease["params"].iloc[0])  # the best trial's settings
        assert json.loads(ease["params"].iloc[0]) in ({"l2": 250.0}, {"l2": 1.0}, {"l2": 10.0})
        assert 1 <= result.chosen["contrec-uniform"][seed]["epochs"] <= TINY_CONTREC["epochs"]  # best epoch
    assert any("validation" in r for r in result.curves["contrec-uniform"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config_sha256"] == result.config.hash()
    assert manifest["data"]["files_sha256"]["tiny.csv"] == __import__("hashlib").sha256(
        Path(result.config.data.path).read_bytes()).hexdigest()
    assert manifest["seeds"] == [0, 1] and manifest["machine"]["threads"] == 1
    assert {"torch", "faiss-cpu", "implicit", "numpy"} <= set(manifest["versions"])


def test_rerun_reuses_every_cell_and_a_fresh_run_gives_identical_numbers(tiny_run, tmp_path):
    config, out, result = tiny_run
    again = compare(config, out=out, progress=False, device="cpu")  # the default, named: the same cells
    assert again.manifest["cells"]["from_cache"] == again.manifest["cells"]["total"]
    pd.testing.assert_frame_equal(again.results, result.results)
    total = again.manifest["cells"]["total"]
    assert (f"; all {total} fits came from the cell cache of an earlier run, so this time is not what they cost"
            in (out / "report.md").read_text())  # its minutes are not the comparison's cost
    fresh = compare(config, out=tmp_path / "fresh", progress=False)
    assert fresh.manifest["cells"]["from_cache"] == 0
    assert "cell cache of an earlier run" not in (tmp_path / "fresh" / "report.md").read_text()
    quality = ~fresh.results["metric"].isin(["fit_seconds"])
    pd.testing.assert_frame_equal(fresh.results[quality].reset_index(drop=True),
                                  result.results[quality].reset_index(drop=True))


def test_interrupted_run_resumes_from_finished_cells(tmp_path, monkeypatch):
    config = _tiny_config(tmp_path, trials=1)
    config["contestants"] = [{"sampler": "uniform", "params": TINY_CONTREC}, {"baseline": "ease"}]
    real = fits_module.run_test_cell
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(fits_module, "run_test_cell", interrupted)
    with pytest.raises(KeyboardInterrupt):
        compare(config, out=tmp_path / "out", progress=False)
    monkeypatch.setattr(fits_module, "run_test_cell", real)
    resumed = compare(config, out=tmp_path / "out", progress=False)
    # 4 tuning trials (1 per contestant and seed) + the 2 uniform test cells were finished before the interruption
    assert resumed.manifest["cells"]["from_cache"] == 6
    assert resumed.manifest["cells"]["total"] == 8
    assert "; 6 of 8 fits came from the cell cache of an earlier run" in (tmp_path / "out" / "report.md").read_text()


def test_domain_rule_without_attributes_fails_before_training(tmp_path):
    config = _tiny_config(tmp_path)
    del config["data"]["item_attributes"]
    with pytest.raises(ConfigError, match="contestant 'genres'"):
        compare(config, progress=False)


def test_cli_errors_are_one_line(tmp_path, capsys):
    from contrec.cli import main

    assert main(["compare", "--samplers", "unifrom", "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "contrec: error: config: contestants[1]: unknown sampler 'unifrom'; choose one of: " + ", ".join(
        __import__("contrec.samplers", fromlist=["SAMPLERS"]).SAMPLERS)
    assert main(["compare", "--config", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "r")]) == 1
    assert "missing.yaml: no such config file" in capsys.readouterr().err
    assert main(["compare", "--seeds", "x", "--out", str(tmp_path / "r")]) == 2



def test_temporal_split_is_audited_for_future_rows(tmp_path):
    config = _tiny_config(tmp_path)
    config["protocol"] = {"split": "temporal"}
    config["contestants"] = [{"baseline": "popularity"}, {"baseline": "ease"}]
    result = compare(config, tune=False, progress=False)
    audit = result.audit.set_index(["split", "check"])
    assert audit.loc[("seed 0", "train positives newer than the user's test"), "status"] == "ok"
    assert audit.loc[("seed 0", "train positives newer than the first test positive"), "status"] == "note"
    # a temporal split does not depend on the seed: only model randomness could differ, and these have none
    ndcg = result.results.query("contestant == 'ease' and metric == 'ndcg' and k == 20")["value"].to_numpy()
    assert ndcg[0] == ndcg[1]
    del config["data"]["timestamp"]
    with pytest.raises(DataError, match="temporal split needs a timestamp column"):
        compare(config, tune=False, progress=False)


def test_kernels_towers_and_objectives_are_contestants(tmp_path):
    config = _tiny_config(tmp_path)
    config["contestants"] = [{"similarity": "kernel-mixture", "params": TINY_CONTREC},
                             {"encoder": "history", "params": TINY_CONTREC},
                             {"encoder": "features", "params": TINY_CONTREC},
                             {"objective": "bpr", "params": TINY_CONTREC},
                             {"baseline": "ease"}]
    config["seeds"] = [0]
    result = compare(config, tune=False, progress=False, out=tmp_path / "r")
    names = [c.name for c in result.config.contestants]
    assert names == ["contrec-kernel-mixture", "contrec-history", "contrec-features", "contrec-bpr", "ease"]
    params = {c.name: c.params for c in result.config.contestants}
    assert params["contrec-history"]["user_tower"] == "history"
    assert params["contrec-bpr"]["objective"] == "bpr" and params["contrec-bpr"]["sampler"] == "uniform"
    assert "weight" in str(result.config.contestants[0].space)  # the mixture's weight is tuned
    md = (tmp_path / "r" / "report.md").read_text()
    assert "contrec · kernel-mixture" in md and "contrec · history users / id items" in md
    assert "## Embeddings" in md
    diag = result.summary.query("metric == 'effective_rank'")
    assert set(diag["contestant"]) == set(names)
    # round trip through the config's dict form keeps every setting
    assert ExperimentConfig.from_dict(result.config.to_dict()) == result.config


def test_variant_names_are_checked_and_features_need_attributes(tmp_path, capsys):
    from contrec.cli import main

    assert main(["compare", "--similarities", "rbf", "--out", str(tmp_path / "r")]) == 1
    assert "unknown similarity 'rbf'; choose one of: dot, cosine" in capsys.readouterr().err
    config = _tiny_config(tmp_path)
    del config["data"]["item_attributes"]
    config["contestants"] = [{"encoder": "features", "params": TINY_CONTREC}]
    with pytest.raises(ConfigError, match="contestant 'contrec-features': item_tower='features' needs item attr"):
        compare(config, progress=False)


def test_tuning_is_honest_for_every_seed(tmp_path):
    """Issue 15.2: no seed's test positives are in the data its settings were chosen on; the audit says so per seed."""
    from contrec.experiments import build_config
    from contrec.experiments.prepare import prepare as _prepare

    config = build_config(_tiny_config(tmp_path))
    prepared = _prepare(config, None)
    assert sorted(prepared.carves) == [0, 1]
    for seed, (fit, validation) in prepared.carves.items():
        test = prepared.splits[seed][1]
        for part in (fit, validation):
            assert part.matrix.multiply(test.matrix).nnz == 0, seed
    # a carve shared by the seeds would hold the other seed's test positives: the point of per-seed tuning
    other_test = prepared.splits[1][1]
    assert prepared.carves[0][0].matrix.multiply(other_test.matrix).nnz > 0
    audit = pd.DataFrame([c.as_dict() for c in prepared.audit]).set_index(["split", "check"])
    for seed in (0, 1):
        assert audit.loc[(f"tuning carve (seed {seed})", "validation ∩ test pairs"), "status"] == "ok"
        assert audit.loc[(f"tuning carve (seed {seed})", "fit ∩ validation pairs"), "status"] == "ok"


def test_a_bfloat16_comparison_trains_in_bfloat16_and_says_so(tmp_path):
    config = {"data": {"path": str(_write_tiny(tmp_path)), "rating": "rating"}, "seeds": [0], "threads": 1,
              "workers": 1, "tuning": {"enabled": False},
              "contestants": [{"sampler": "uniform", "params": TINY_CONTREC}, {"baseline": "popularity"}]}
    low = compare(config, precision="bfloat16", out=tmp_path / "low", progress=False)
    plain = compare(config, out=tmp_path / "plain", progress=False)
    assert low.config.contestants[0].params["precision"] == "bfloat16"
    said = "Score matmuls in bfloat16 (`precision: bfloat16`) for contrec-uniform."
    assert said in (tmp_path / "low" / "report.md").read_text()
    assert "bfloat16" not in (tmp_path / "plain" / "report.md").read_text()

    def ndcg(result):
        rows = result.results
        picked = (rows["metric"] == "ndcg") & (rows["k"] == 20) & (rows["contestant"] == "contrec-uniform")
        return rows[picked]["value"].item()

    assert ndcg(low) != ndcg(plain) and abs(ndcg(low) - ndcg(plain)) < 0.1  # another fit, the same model


def test_a_bfloat16_comparison_without_fast_bfloat16_says_so_once(tmp_path, monkeypatch):
    import contrec.training.loop as loop
    from contrec.runtime.device import SlowBfloat16Warning

    monkeypatch.setattr(fits_module, "native_bfloat16", lambda device: False)
    monkeypatch.setattr(loop, "native_bfloat16", lambda device: False)  # every fit would say it too
    config = {"data": {"path": str(_write_tiny(tmp_path)), "rating": "rating"}, "seeds": [0, 1], "threads": 1,
              "workers": 1, "tuning": {"enabled": False},
              "contestants": [{"sampler": "uniform", "params": TINY_CONTREC},
                              {"sampler": "popularity", "params": TINY_CONTREC}, {"baseline": "popularity"}]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compare(config, precision="bfloat16", progress=False)
    said = [str(w.message) for w in caught if issubclass(w.category, SlowBfloat16Warning)]
    assert len(said) == 1 and "contrec-uniform, contrec-popularity" in said[0] and "slower" in said[0]
    with warnings.catch_warnings(record=True) as caught:  # float32: nothing to say
        warnings.simplefilter("always")
        compare(config, progress=False)
    assert not [w for w in caught if issubclass(w.category, SlowBfloat16Warning)]


def test_report_sentences_are_true_of_a_one_seed_run_without_ratings(tmp_path):
    """Issue 15.15: no CI claimed over one seed, no rating threshold claimed for a file without ratings."""
    csv = _write_tiny(tmp_path)
    frame = pd.read_csv(csv).drop(columns=["rating"]).assign(plays=lambda f: f["t"] % 5 + 1)
    frame.to_csv(tmp_path / "plays.csv", index=False)
    config = {"data": {"path": str(tmp_path / "plays.csv"), "weight": "plays"}, "seeds": [0], "threads": 1,
              "tuning": {"enabled": False}, "contestants": [{"baseline": "popularity"}, {"baseline": "als"}]}
    compare(config, out=tmp_path / "out", progress=False)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Student t over 1 seeds" not in md and "One seed: each value is that seed's test split" in md
    assert "ratings ≥" not in md and "every row is a positive" in md
    # tuning is off in this run: nothing is searched, so the report does not say so
    assert "weights from column `plays`: als's confidence 1 + α·c(weight), c none;" in md and "searched" not in md
    config["tuning"] = {"trials": 2, "validation_size": 0.25}  # tuned: ALS's weighting is searched, and said so
    config["contestants"] = [{"baseline": "als"}]
    compare(config, out=tmp_path / "tuned", progress=False)
    tuned = (tmp_path / "tuned" / "report.md").read_text()
    assert "als's confidence 1 + α·c(weight), c none (searched: none, log1p, linear)" in tuned


def test_weights_warning_and_report_name_the_contestants_that_ignore_them(tmp_path):
    """On weighted data only the contrec contestants that treat positives alike are warned about, by name,
    with the way to change it in a comparison; the report says which contestant uses the weights how."""
    from contrec.models.contrastive import IgnoredWeightsWarning

    csv = _write_tiny(tmp_path)
    pd.read_csv(csv).assign(plays=lambda f: f["t"] % 5 + 1).to_csv(tmp_path / "plays.csv", index=False)
    config = {"data": {"path": str(tmp_path / "plays.csv"), "rating": "rating", "weight": "plays"}, "seeds": [0],
              "threads": 1, "workers": 1, "tuning": {"enabled": False},
              "contestants": [{"sampler": "uniform", "params": TINY_CONTREC},
                              {"sampler": "popularity", "params": {**TINY_CONTREC, "positive_weights": "log1p"}},
                              {"baseline": "popularity"}]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compare(config, out=tmp_path / "out", progress=False)
    said = [str(w.message) for w in caught if issubclass(w.category, IgnoredWeightsWarning)]
    assert len(said) == 1 and "but contrec-uniform treats every positive alike" in said[0], said
    assert "contrec-popularity" not in said[0] and "--positive-weights log1p" in said[0]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "contrec-popularity (log1p) draws heavier positives more often" in md
    # the contestants of this comparison, not every model contrec knows (BPR and EASE are not in it)
    assert "contrec-uniform, popularity treat every positive alike" in md and "EASE" not in md
    config["contestants"] = config["contestants"][1:]  # every contrec contestant uses the weights: nothing to say
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compare(config, out=tmp_path / "out2", progress=False)
    assert not [w for w in caught if issubclass(w.category, IgnoredWeightsWarning)]


def test_a_contestant_that_crashes_is_reported_and_the_others_finish(tmp_path, monkeypatch):
    """Issue 15.8: a failing fit is recorded with its reason; the comparison and its report still complete."""
    config = _tiny_config(tmp_path, trials=1)
    config["contestants"] = [{"baseline": "popularity"}, {"baseline": "ease"}, {"baseline": "als"}]
    real = fits_module.run_test_cell

    def crashing(contestant, *args, **kwargs):
        if contestant.name == "ease":
            raise MemoryError()
        return real(contestant, *args, **kwargs)

    monkeypatch.setattr(fits_module, "run_test_cell", crashing)
    result = compare(config, out=tmp_path / "out", progress=False)
    assert result.failed == {"ease": "seed 0: out of memory"}
    assert set(result.results["contestant"]) == {"popularity", "als"}
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Failed contestants" in md and "| ease | seed 0: out of memory |" in md
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["config"]["contestants"][1]["name"] == "ease"


def test_a_long_fit_shows_its_epochs_in_the_comparison_bar():
    """Issue 15.14: compare's bar shows the running fit's epoch; nothing else of the fit's log gets through."""
    import logging

    from contrec.experiments.fits import quiet_fit as _quiet_fit

    class Bar:
        disable = False
        postfix = ""

        def set_postfix_str(self, text):
            self.postfix = text

    logger = logging.getLogger("contrec")
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger.addHandler(handler)
    before = logger.level
    logger.setLevel(logging.INFO)
    try:
        bar = Bar()
        with _quiet_fit(bar, "contrec-uniform seed 1"):
            logger.info("epoch 3/20: loss 5.1234, 1.0s, 40,000 interactions/s")
            logger.warning("something worth saying")
        assert bar.postfix == "contrec-uniform seed 1: epoch 3/20: loss 5.1234"
        assert seen == ["something worth saying"]
        logger.info("after")
        assert seen[-1] == "after" and logger.level == logging.INFO and len(logger.handlers) >= 1
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)


def test_a_temporal_split_tunes_once_for_every_seed(tmp_path):
    """Every seed has the same temporal carve: its tuning trials run once and are reused (keyed by the carve)."""
    config = _tiny_config(tmp_path, trials=2)
    config["protocol"] = {"split": "temporal"}
    config["contestants"] = [{"baseline": "ease", "space": {"l2": [1.0, 10.0]}}]
    result = compare(config, out=tmp_path / "out", progress=False)
    assert result.manifest["cells"]["from_cache"] == 2  # seed 1's two trials
    assert result.chosen["ease"][0] == result.chosen["ease"][1]


def test_one_protocol_for_the_demo_the_benchmarks_and_compare(tmp_path):
    from contrec.evaluation.protocol import EvaluationProtocol, protocol_split

    assert ExperimentConfig.from_dict({"dataset": "ml-100k", "contestants": ["uniform"]}).protocol == \
        EvaluationProtocol()
    with pytest.raises(ConfigError, match="protocol.split must be 'random' or 'temporal'"):
        ExperimentConfig.from_dict({"dataset": "ml-100k", "contestants": ["uniform"], "protocol": {"split": "x"}})
    assert callable(protocol_split)


def test_a_baseline_winner_comes_with_the_command_that_serves_it(tiny_run, tmp_path):
    """The report's command fits the winner as `contrec fit --model` takes it, with the tuned settings."""
    import dataclasses
    import json as _json
    import shlex

    from contrec.cli import main
    from contrec.experiments.report import markdown_report
    from contrec.models.baselines import make_baseline

    from .conftest import SAMPLE_CSV

    _, _, result = tiny_run
    baseline = next(c for c in result.config.contestants if not c.is_contrec and c.space)  # EASE, its l2 tuned
    contrec_one = next(c for c in result.config.contestants if c.is_contrec)
    assert "--model" not in markdown_report(dataclasses.replace(result, best=contrec_one.name), {})
    md = markdown_report(dataclasses.replace(result, best=baseline.name), {})
    line = next(text for text in md.splitlines() if text.startswith("contrec fit YOUR_LOG.csv"))
    words = shlex.split(line)
    assert words[words.index("--model") + 1] == baseline.model
    settings = _json.loads(words[words.index("--model-params") + 1])
    seed = min(result.chosen[baseline.name])
    assert settings == {k: v for k, v in result.chosen[baseline.name][seed].items() if k not in ("threads", "seed")}
    out = tmp_path / "best.contrec"
    assert main(["fit", str(SAMPLE_CSV), "--user", "user_id", "--item", "item_id", "-q", *words[3:-2],
                 "-o", str(out)]) == 0
    assert type(contrec.load(out)).__name__ == type(make_baseline(baseline.model)).__name__
