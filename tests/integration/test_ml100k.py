"""End-to-end on the real ml-100k: default quality, reproducibility, the demo's numbers."""

import io

import numpy as np
import pytest

import contrec
from contrec.cli import main
from contrec.cli.demo import run_demo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def default_metrics(ml100k_split):
    train, test = ml100k_split
    model = contrec.ContrastiveRecommender(seed=0, verbose=False, threads=2).fit(train)
    table = contrec.evaluate(model, train, test, k=(10, 20))
    return {(m, k): v for m, k, v in table.itertuples(index=False)}


def test_defaults_reach_target_quality(ml100k_split, default_metrics):
    train, test = ml100k_split
    ndcg = default_metrics[("ndcg", 20)]
    assert ndcg >= 0.33, ndcg  # benchmarks/quality.py: 0.3445 on this split
    pop = contrec.evaluate(contrec.PopularityRecommender().fit(train), train, test, k=20)
    assert ndcg > 1.5 * float(pop.loc[pop["metric"] == "ndcg", "value"].iloc[0])


def test_demo_prints_the_same_numbers(data_dir, default_metrics):
    out = io.StringIO()
    table = run_demo(data_dir=data_dir, seed=0, verbose=False, out=out, threads=2)
    for metric, k in [("ndcg", 20), ("recall", 20), ("ndcg", 10), ("map", 20)]:
        assert table.loc[f"{metric}@{k}", "contrec (defaults)"] == default_metrics[(metric, k)]
    text = out.getvalue()
    assert "liked:" in text and "popularity" in text and "(19" in text  # movie titles carry years
    assert "? the liked items closest to it (similarity): " in text  # one explanation


def test_same_seed_identical_metrics(ml100k_split):
    train, test = ml100k_split
    runs = []
    for _ in range(2):
        model = contrec.ContrastiveRecommender(seed=3, epochs=2, verbose=False, threads=2).fit(train)
        runs.append(contrec.evaluate(model, train, test, k=(10, 20))["value"].to_numpy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_recommendations_never_repeat_seen_items(ml100k_split):
    train, _ = ml100k_split
    model = contrec.PopularityRecommender().fit(train)
    ids, _ = model.top_k(np.arange(train.n_users), 50, exclude=train.matrix)
    seen = train.matrix.toarray() > 0  # 938 × 1447: small enough to check densely here
    assert not seen[np.arange(train.n_users)[:, None], ids].any()
    assert (ids >= 0).all()  # everyone gets 50 items


@pytest.mark.slow
def test_demo_command(data_dir, capsys):
    assert main(["demo", "--data-dir", str(data_dir), "-q"]) == 0
    out = capsys.readouterr().out
    assert "ndcg@20" in out and "popularity" in out and "liked:" in out


def test_compare_command_end_to_end(data_dir, default_metrics, tmp_path, capsys):
    """The issue's acceptance run, small: one seed, no tuning, two contestants."""
    import json

    import pandas as pd

    out = tmp_path / "report"
    code = main(["compare", "--dataset", "ml-100k", "--data-dir", str(data_dir), "--samplers", "uniform",
                 "--baselines", "popularity", "--seeds", "1", "--no-tune", "--out", str(out), "-q"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| contrec-uniform ★ |" in printed and "| popularity † |" in printed
    results = pd.read_csv(out / "results.csv")
    ndcg = results.query("contestant == 'contrec-uniform' and metric == 'ndcg' and k == 20")["value"].item()
    assert ndcg == default_metrics[("ndcg", 20)]  # same protocol, same defaults, same threads: same number
    for name in ("report.md", "report.html", "per_user.npz", "metric_ci.png", "popularity.png", "manifest.json"):
        assert (out / name).is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data"]["files_sha256"]["ml-100k/u.data"].startswith("06416e59")
    assert manifest["command"].startswith("contrec compare --dataset ml-100k")
