"""Property-based tests of the input surface: readers, id maps, splits, metrics.

Random valid inputs never crash and keep their invariants; random malformed inputs raise
contrec's own error type with a message that names the file (and usually the line).
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from contrec import split_random, split_temporal
from contrec.data.interactions import Interactions
from contrec.data.interactions import read_interactions
from contrec.errors import ContrecError
from contrec.evaluation.metrics import hit_rate_at_k, map_at_k, mrr_at_k, ndcg_at_k, precision_at_k, recall_at_k

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ids as users write them: digits, words, unicode, spaces inside, separators inside (quoted by csv)
ids = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=8).filter(
    lambda s: s.strip() == s and s.strip() != "")
logs = st.lists(st.tuples(ids, ids, st.integers(1, 5), st.integers(0, 10**9)), min_size=1, max_size=60)


def _csv(rows: list[tuple], header: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _read(blob: bytes, suffix: str = ".csv", **options) -> Interactions:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"log{suffix}"
        path.write_bytes(blob)
        return read_interactions(path, **options)


@SETTINGS
@given(logs)
def test_valid_csv_round_trips_ids_and_pairs(rows):
    data = _read(_csv(rows, ["user", "item", "rating", "time"]), user="user", item="item", rating="rating",
                 timestamp="time", sep=",", duplicates="last")
    pairs = {(u, i) for u, i, _, _ in rows}
    frame = data.to_frame()
    assert set(zip(frame["user"], frame["item"])) == pairs  # every distinct pair, exactly once
    assert len(data) == len(pairs)
    # ids round-trip: raw -> dense code -> raw
    for id_map, raw in ((data.users, [u for u, *_ in rows]), (data.items, [i for _, i, *_ in rows])):
        codes = id_map.index(raw)
        assert list(id_map.ids[codes]) == raw
        assert set(codes.tolist()) == set(range(len(id_map.ids)))


@SETTINGS
@given(logs, st.floats(0.05, 0.95), st.integers(0, 2**31 - 1))
def test_random_split_puts_every_interaction_in_exactly_one_part(rows, share, seed):
    data = Interactions.from_frame(pd.DataFrame([(u, i) for u, i, *_ in rows], columns=["user", "item"]),
                                   duplicates="last")
    train, test = split_random(data, share, seed=seed)
    whole = set(zip(*data.to_frame()[["user", "item"]].T.values))
    a = set(zip(*train.to_frame()[["user", "item"]].T.values))
    b = set(zip(*test.to_frame()[["user", "item"]].T.values))
    assert a | b == whole and not a & b
    assert train.same_space(test) and train.same_space(data)
    again = split_random(data, share, seed=seed)
    assert (again[1].matrix != test.matrix).nnz == 0  # same seed, same split


@SETTINGS
@given(logs, st.floats(0.05, 0.95))
def test_temporal_split_keeps_each_users_latest_in_test(rows, share):
    data = _read(_csv(rows, ["user", "item", "rating", "time"]), user="user", item="item", timestamp="time",
                 sep=",", duplicates="last")
    train, test = split_temporal(data, share)
    tr, te = train.to_frame(), test.to_frame()
    assert len(tr) + len(te) == len(data)
    assert not set(zip(tr["user"], tr["item"])) & set(zip(te["user"], te["item"]))
    for user, held in te.groupby("user"):
        kept = tr[tr["user"] == user]
        if len(kept):
            assert held["timestamp"].min() >= kept["timestamp"].max()  # nothing older than what is kept


@SETTINGS
@given(st.integers(2, 30).flatmap(lambda n: st.tuples(st.permutations(list(range(n))),
                                                      st.sets(st.integers(0, n - 1), min_size=1),
                                                      st.integers(1, n - 1))))
def test_metrics_grow_with_k_and_do_not_depend_on_other_users(case):
    # (unit interval and perfect-ranking = 1 are tested in test_metrics.py)
    order, relevant, k = case
    n = len(order)
    truth = sp.csr_matrix((np.ones(len(relevant)), (np.zeros(len(relevant), int), sorted(relevant))), shape=(1, n))
    full = np.array([order])
    # a longer list can only find more (recall here divides by min(|relevant|, k), so it is not monotone)
    for fn in (hit_rate_at_k, mrr_at_k, lambda r, t, kk: precision_at_k(r, t, kk) * kk):
        assert fn(full[:, :k + 1], truth, k + 1)[0] >= fn(full[:, :k], truth, k)[0] - 1e-12
    # stacking another user beside it changes nothing for this one
    other = sp.csr_matrix(np.ones((1, n)))
    both = sp.vstack([truth, other]).tocsr()
    for fn in (precision_at_k, recall_at_k, ndcg_at_k, map_at_k, mrr_at_k, hit_rate_at_k):
        alone = fn(full[:, :k], truth, k)[0]
        assert fn(np.vstack([full[:, :k], full[:, ::-1][:, :k]]), both, k)[0] == pytest.approx(alone), fn.__name__


# ---------------------------------------------------------------- malformed input
cells = st.one_of(st.just(""), st.just("NaN"), st.just("x"), st.just("-3"), st.just("1e400"), ids)
bad_rows = st.lists(st.lists(cells, min_size=0, max_size=5), min_size=0, max_size=8)


@SETTINGS
@given(bad_rows, st.sampled_from([",", ";", "\t"]))
def test_malformed_csv_raises_contrecs_error_naming_the_file(rows, sep):
    blob = ("user,item,rating\n" + "\n".join(sep.join(r) for r in rows)).encode("utf-8")
    try:
        data = _read(blob, user="user", item="item", rating="rating", sep=",")
    except ContrecError as err:
        assert "log.csv" in str(err) and "\n" not in str(err).strip()
        return
    # accepted: then it is a faithful reading of well-formed rows
    assert len(data) >= 1 and np.isfinite(data.matrix.data).all() and (data.matrix.data >= 0).all()


@SETTINGS
@given(st.binary(min_size=0, max_size=300))
def test_random_bytes_never_crash_the_reader(blob):
    assume(not blob.startswith(b"PAR1"))
    try:
        _read(blob, user="user", item="item")
    except ContrecError as err:
        assert "log.csv" in str(err)


@SETTINGS
@given(st.lists(st.tuples(st.one_of(ids, st.none(), st.just(float("nan"))), st.one_of(ids, st.none())),
                min_size=1, max_size=20))
def test_frames_with_missing_ids_are_refused_with_the_row(rows):
    frame = pd.DataFrame(rows, columns=["user", "item"], dtype=object)
    missing = frame.isna().any(axis=1)
    if not missing.any():
        assert len(Interactions.from_frame(frame, duplicates="last")) == len(set(map(tuple, frame.values)))
        return
    with pytest.raises(ContrecError, match="is empty"):
        Interactions.from_frame(frame, duplicates="last")


@SETTINGS
@given(st.integers(1, 12), st.integers(1, 15), st.integers(0, 2**31 - 1))
def test_row_set_lookups_answer_set_membership_dense_or_sparse(n_rows, n_items, seed):
    # the dense table (small catalogues) and the CSR slicing (past DENSE_BYTES) answer every lookup alike,
    # and both as plain set membership would — repeated rows and items, duplicates in the matrix included
    import torch

    import contrec.data.positives as positives

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, n_rows * n_items + 1))
    rows_, cols_ = rng.integers(0, n_rows, n), rng.integers(0, n_items, n)
    sets = [set() for _ in range(n_rows)]
    for r, c in zip(rows_, cols_):
        sets[r].add(c)
    matrix = sp.csr_matrix((rng.integers(1, 4, n).astype(np.float32), (rows_, cols_)), shape=(n_rows, n_items))
    batch = torch.from_numpy(rng.integers(0, n_rows, 9))
    asked = torch.from_numpy(rng.integers(0, n_items, 11))
    per_row = torch.from_numpy(rng.integers(0, n_items, (9, 4)))
    expected = torch.tensor([[int(j) in sets[int(r)] for j in asked] for r in batch])
    expected_rows = torch.tensor([[int(j) in sets[int(r)] for j in row] for r, row in zip(batch, per_row)])
    expected_pairs = torch.tensor([int(j) in sets[int(r)] for r, j in zip(batch, per_row[:, 0])])
    before = matrix.copy()
    dense = positives.RowSets(matrix)
    original = positives.DENSE_BYTES
    positives.DENSE_BYTES = 0
    try:
        sparse = positives.RowSets(matrix)
    finally:
        positives.DENSE_BYTES = original
    assert dense.dense is not None and sparse.dense is None
    for lookup in (dense, sparse):
        assert torch.equal(lookup.shared(batch, asked), expected)
        assert torch.equal(lookup.rowwise(batch, per_row), expected_rows)
        assert torch.equal(lookup.pairs(batch, per_row[:, 0]), expected_pairs)
    assert (matrix != before).nnz == 0 and np.array_equal(matrix.data, before.data)  # the caller's weights stay
