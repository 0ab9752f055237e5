import numpy as np
import pandas as pd
import pytest

from contrec import IdMap, Interactions
from contrec.errors import DataError


def test_idmap_round_trip_keeps_strings_verbatim():
    ids = IdMap(["007", "7", "u42", "1.0"])
    assert ids.index(["7", "007", "1.0", "nope"]).tolist() == [1, 0, 3, -1]
    assert ids.ids.tolist() == ["007", "7", "u42", "1.0"]


def test_idmap_rejects_duplicates():
    with pytest.raises(DataError, match="appears twice"):
        IdMap(["a", "b", "a"])


def test_from_frame_builds_sorted_csr_and_keeps_ids():
    df = pd.DataFrame({"user": ["b", "a", "b"], "item": ["007", "x", "7"], "w": [2.0, 1.0, 3.0]})
    data = Interactions.from_frame(df, weight="w")
    assert data.shape == (2, 3) and len(data) == 3
    assert data.users.ids.tolist() == ["b", "a"]
    assert data.items.ids.tolist() == ["007", "x", "7"]
    frame = data.to_frame().sort_values(["user", "item"]).reset_index(drop=True)
    assert frame.to_dict("list") == {"user": ["a", "b", "b"], "item": ["x", "007", "7"], "weight": [1.0, 2.0, 3.0]}
    assert np.all(np.diff(data.matrix.indices[data.matrix.indptr[0]:data.matrix.indptr[1]]) > 0)


def test_integer_ids_from_a_frame_become_their_text():
    df = pd.DataFrame({"user": [1, 2], "item": [10.0, 20.0]})  # floats from pandas NaN handling
    data = Interactions.from_frame(df)
    assert data.users.ids.tolist() == ["1", "2"]
    assert data.items.ids.tolist() == ["10", "20"]


def test_filter_reindexes_and_subset_keeps_space():
    df = pd.DataFrame({"user": list("aaabbc"), "item": list("xyzxyx")})
    data = Interactions.from_frame(df)
    kept = data.filter(min_user_interactions=2)
    assert kept.users.ids.tolist() == ["a", "b"] and len(kept) == 5
    half = data.subset(np.arange(len(data)) % 2 == 0)
    assert half.same_space(data) and len(half) == 3


def test_fingerprint_changes_with_content():
    a = Interactions.from_frame(pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"]}))
    b = Interactions.from_frame(pd.DataFrame({"user": ["a", "b"], "item": ["x", "x"]}))
    assert a.fingerprint() == Interactions.from_frame(a.to_frame()).fingerprint()
    assert a.fingerprint() != b.fingerprint()


def test_item_attributes_align_to_items():
    df = pd.DataFrame({"user": ["a", "a"], "item": ["2", "1"]})
    attrs = pd.DataFrame({"title": ["One", "Two", "Three"]}, index=[1, 2, 3])
    data = Interactions.from_frame(df, item_attributes=attrs)
    assert data.item_attributes["title"].tolist() == ["Two", "One"]
    assert data.item_attributes.index.tolist() == ["2", "1"]
