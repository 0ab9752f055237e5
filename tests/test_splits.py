import numpy as np
import pandas as pd
import pytest

from contrec import Interactions, split_random, split_temporal
from contrec.errors import ConfigError, DataError


def make(n_users=30, per_user=(1, 12), seed=0, timestamps=True):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        n = rng.integers(*per_user)
        for i in rng.choice(50, size=n, replace=False):
            rows.append((f"u{u}", f"i{i}", int(rng.integers(0, 10**6))))
    df = pd.DataFrame(rows, columns=["user", "item", "t"])
    return Interactions.from_frame(df, timestamp="t" if timestamps else None)


def pairs(d):
    f = d.to_frame()
    return set(zip(f["user"], f["item"]))


def test_random_split_partitions_each_user():
    data = make()
    train, test = split_random(data, test_size=0.25, seed=3)
    assert train.same_space(data) and test.same_space(data)
    assert pairs(train) | pairs(test) == pairs(data) and not pairs(train) & pairs(test)
    n = data.user_counts()
    expected = np.minimum(np.floor(n * 0.25 + 0.5), n - 1)
    np.testing.assert_array_equal(test.user_counts(), expected)
    assert np.all(train.user_counts() >= 1)


def test_random_split_is_deterministic_per_seed():
    data = make()
    a, _ = split_random(data, 0.2, seed=1)
    b, _ = split_random(data, 0.2, seed=1)
    c, _ = split_random(data, 0.2, seed=2)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_temporal_split_holds_out_latest():
    data = make()
    train, test = split_temporal(data, test_size=0.3)
    tr, te = train.to_frame(), test.to_frame()
    for user, group in te.groupby("user"):
        assert group["timestamp"].min() >= tr[tr["user"] == user]["timestamp"].max()


def test_leave_one_out_count():
    data = make(per_user=(2, 6))
    _, test = split_temporal(data, test_size=1)
    assert np.all(test.user_counts() == 1)


def test_split_errors():
    with pytest.raises(ConfigError, match="fraction"):
        split_random(make(), test_size=1.5)
    with pytest.raises(DataError, match="needs timestamps"):
        split_temporal(make(timestamps=False))
