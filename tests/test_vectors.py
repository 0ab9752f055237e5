"""Vectors and scores out: frames, export round-trips through a bare FAISS index, pair scores, CLI."""

from __future__ import annotations

import io
import json

import faiss
import numpy as np
import pandas as pd
import pytest

import contrec
from contrec.data.synthetic import synthetic_interactions
from contrec.errors import ConfigError, DataError


@pytest.fixture(scope="module", params=["cosine", "laplacian"])
def model(request):
    train = synthetic_interactions(60, 80, 900, seed=1)
    return contrec.ContrastiveRecommender(similarity=request.param, dim=16, epochs=2, validation_size=0, seed=0,
                                          threads=1, verbose=False).fit(train)


def _faiss_top(items: pd.DataFrame, users: pd.DataFrame, metric: str, k: int) -> list[list[str]]:
    vectors = np.stack(items["vector"])
    index = faiss.IndexFlatIP(vectors.shape[1]) if metric == "ip" else faiss.IndexFlatL2(vectors.shape[1])
    index.add(vectors)
    _, top = index.search(np.stack(users["vector"]), k)
    return [list(row) for row in items["item"].to_numpy()[top]]


def test_vector_frames_hold_every_id_and_rank_as_recommend_in_a_bare_faiss_index(model):
    users, items = model.user_vectors(), model.item_vectors()
    assert list(users.columns) == ["user", "vector"] and list(items.columns) == ["item", "vector"]
    assert len(users) == len(model.users_) and len(items) == len(model.items_)
    assert users["vector"].iloc[0].dtype == np.float32 and len(items["vector"].iloc[0]) == model.vector_dim
    assert model.vector_metric == ("ip" if model.similarity == "cosine" else "l2")
    got = _faiss_top(items, users, model.vector_metric, 5)
    recs = model.recommend(None, k=5, filter_seen=False)
    assert got == [recs[recs["user"] == u]["item"].tolist() for u in users["user"]]


@pytest.mark.parametrize("fmt", ["parquet", "npy"])
def test_export_round_trips(model, fmt, tmp_path):
    written = contrec.serving.vectors.export_vectors(model, tmp_path / "out", fmt)
    meta = json.loads((tmp_path / "out" / "vectors.json").read_text())
    assert meta["metric"] == model.vector_metric and meta["dim"] == model.vector_dim and all(p.exists() for p in written)
    if fmt == "parquet":
        users = pd.read_parquet(tmp_path / "out" / "users.parquet")
        items = pd.read_parquet(tmp_path / "out" / "items.parquet")
    else:
        def read(key):
            ids = (tmp_path / "out" / f"{key}_ids.txt").read_text().splitlines()
            vectors = np.load(tmp_path / "out" / f"{key}_vectors.npy", allow_pickle=False)
            return pd.DataFrame({key: ids, "vector": list(vectors)})
        users, items = read("user"), read("item")
    assert np.array_equal(np.stack(items["vector"]).astype(np.float32), model.item_vectors_)
    assert _faiss_top(items, users, meta["metric"], 5) == _faiss_top(model.item_vectors(), model.user_vectors(),
                                                                     model.vector_metric, 5)
    with pytest.raises(ConfigError, match="format 'csv' is not known"):
        contrec.serving.vectors.export_vectors(model, tmp_path / "x", "csv")


def test_scores_of_pairs_are_the_scores_recommend_reports(model):
    recs = model.recommend(None, k=3)
    scored = model.score(recs["user"], recs["item"])
    np.testing.assert_allclose(scored["score"].to_numpy(), recs["score"].to_numpy(), rtol=1e-5, atol=1e-5)
    assert scored[["user", "item"]].equals(recs[["user", "item"]].reset_index(drop=True))
    frame = model.score(pd.DataFrame({"user": recs["user"][:2], "item": recs["item"][:2]}))
    assert len(frame) == 2
    mixed = model.score([recs["user"][0], "ghost"], [recs["item"][0], recs["item"][0]], unknown="nan")
    assert np.isfinite(mixed["score"][0]) and np.isnan(mixed["score"][1])
    with pytest.raises(DataError, match="pair 1: user id 'ghost' is not in the training data"):
        model.score([recs["user"][0], "ghost"], [recs["item"][0], recs["item"][0]])
    with pytest.raises(ConfigError, match="2 users but 1 items"):
        model.score(["a", "b"], ["c"])


def test_cli_export_and_score(tmp_path, cli):
    data = tmp_path / "d.csv"
    synthetic_interactions(40, 50, 500, seed=2).to_frame()[["user", "item"]].to_csv(data, index=False)
    path = tmp_path / "m.contrec"
    cli("fit", data, "-o", path, "--epochs", "1", "--validation-size", "0", "--dim", "8", "--threads", "1", "--quiet",
        check=True)
    done = cli("export", path, "--format", "npy", "-o", tmp_path / "vec", check=True)
    assert "item vectors (dim 8, metric ip)" in done.stderr
    assert np.load(tmp_path / "vec" / "item_vectors.npy").shape[1] == 8
    two = ",".join(pd.read_csv(data, dtype=str)["user"].unique()[:2])
    recs = cli("recommend", path, "--users", two, "-k", "3", check=True).stdout
    recs = pd.read_csv(io.StringIO(recs), dtype={"user": str, "item": str})
    recs[["user", "item"]].rename(columns={"user": "uid", "item": "iid"}).to_csv(tmp_path / "p.csv", index=False)
    out = cli("score", path, tmp_path / "p.csv", "--user", "uid", "--item", "iid", check=True).stdout
    np.testing.assert_allclose(pd.read_csv(io.StringIO(out))["score"], recs["score"], rtol=1e-5)
    (tmp_path / "bad.csv").write_text(f"uid,iid\n{two.split(',')[0]},nope\n")
    bad = cli("score", path, tmp_path / "bad.csv", "--user", "uid", "--item", "iid")
    assert bad.returncode == 1 and "bad.csv: line 2: item id 'nope' is not in the training data" in bad.stderr
    assert bad.stderr.strip().count("\n") == 0
    missing = cli("score", path, tmp_path / "bad.csv")
    assert missing.returncode == 1 and "no column 'user' (columns: uid, iid)" in missing.stderr
