"""evaluate() on a recommender with hand-set vectors, so every number can be checked by hand."""

import numpy as np
import pandas as pd
import pytest

import contrec
from contrec.errors import DataError
from contrec.serving.recommender import FactorRecommender


class Fixed(FactorRecommender):
    """Every user gets the same ranking: item -> fixed score."""

    def __init__(self, scores: dict):
        self.scores = scores

    def fit(self, train, validation=None):
        vector = np.array([self.scores[i] for i in train.items.ids], dtype=np.float32)
        self._set_state(train, np.ones((train.n_users, 1), np.float32), vector[:, None])
        return self


def data():
    # items i0..i4; user a: train {i0}, test {i1, i3}; user b: train {i1}, test {i4}; user c: train only
    rows = [("a", "i0"), ("a", "i1"), ("a", "i3"), ("b", "i1"), ("b", "i4"), ("c", "i2"), ("c", "i0")]
    full = contrec.Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item"]))
    is_test = np.array([(u, i) in {("a", "i1"), ("a", "i3"), ("b", "i4")} for u, i in
                        zip(full.users.ids[full.row_codes()], full.items.ids[full.matrix.indices])])
    return full.subset(~is_test), full.subset(is_test)


def test_hand_checked_table():
    train, test = data()
    # global ranking by score: i0 > i1 > i2 > i3 > i4
    model = Fixed({"i0": 5, "i1": 4, "i2": 3, "i3": 2, "i4": 1}).fit(train)
    table, per_user = contrec.evaluate(model, train, test, k=(2,), per_user=True)
    got = dict(zip(table["metric"], table["value"]))
    # a: train i0 excluded -> ranks i1, i2 ; hits [1, 0]; |R| = 2: recall 1/2, ndcg 1 / (1 + 1/log2 3)
    # b: train i1 excluded -> ranks i0, i2 ; no hit
    # c: no test items -> not evaluated
    assert table.attrs["n_users"] == 2
    assert got["recall"] == pytest.approx((0.5 + 0) / 2)
    assert got["ndcg"] == pytest.approx((1 / (1 + 1 / np.log2(3)) + 0) / 2)
    assert got["hit_rate"] == pytest.approx(0.5)
    assert got["mrr"] == pytest.approx(0.5)
    assert got["precision"] == pytest.approx(0.25)
    assert got["coverage"] == pytest.approx(3 / 5)  # i0, i1, i2
    assert list(per_user.index) == ["a", "b"]
    # popularity = share of the 3 train users per item: i0 2/3 (a, c), i1 1/3 (b), i2 1/3 (c)
    assert per_user.loc["a", "mean_popularity@2"] == pytest.approx((1 / 3 + 1 / 3) / 2)  # i1, i2
    assert per_user.loc["b", "mean_popularity@2"] == pytest.approx((2 / 3 + 1 / 3) / 2)  # i0, i2


def test_different_space_is_refused():
    train, test = data()
    model = Fixed({"i0": 5, "i1": 4, "i2": 3, "i3": 2, "i4": 1}).fit(train)
    other = contrec.Interactions.from_frame(pd.DataFrame({"user": ["a"], "item": ["i1"]}))
    with pytest.raises(DataError, match="do not share id maps"):
        contrec.evaluate(model, train, other)


def test_overlapping_train_and_test_is_refused_or_dropped():
    """Issue 15.4: test pairs that are also train pairs can never be retrieved; never in the denominator silently."""
    train, test = data()
    model = Fixed({"i0": 5, "i1": 4, "i2": 3, "i3": 2, "i4": 1}).fit(train)
    both = contrec.Interactions(test.matrix + train.matrix, train.users, train.items)  # test ∪ train
    with pytest.raises(DataError, match="4 test .user, item. pairs are also known"):
        contrec.evaluate(model, train, both, k=2)
    dropped = contrec.evaluate(model, train, both, k=2, overlap="drop")
    clean = contrec.evaluate(model, train, test, k=2)
    assert dropped.attrs["n_overlap_dropped"] == 4
    pd.testing.assert_frame_equal(dropped, clean)


def test_unknown_test_items_count_as_misses():
    """Issue 15.3: test items outside the model's catalogue stay relevant (misses), as in split_random's path."""
    train, test = data()
    model = Fixed({"i0": 5, "i1": 4, "i2": 3, "i3": 2, "i4": 1}).fit(train)
    frame = test.to_frame()
    frame = pd.concat([frame, pd.DataFrame({"user": ["a", "b"], "item": ["new1", "new2"], "weight": [1.0, 1.0]})])
    wider = contrec.read_interactions(frame, users=train.users, items=train.items, unknown_items="extend")
    assert wider.n_items == train.n_items + 2
    table = contrec.evaluate(model, train, wider, k=(2,))
    got = dict(zip(table["metric"], table["value"]))
    assert table.attrs["n_unknown_item_positives"] == 2
    # a: |R| = 3 now (i1, i3, new1), hit at rank 1 only: recall 1/2 (min(k, |R|) = 2); b: |R| = 2, no hit
    assert got["recall"] == pytest.approx((1 / 2 + 0) / 2)
