"""Serving-time candidates and rules: allow-lists, exclusions, domain rules — exact against brute force."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import contrec
from contrec.errors import ContrecError, DataError
from contrec.serving.recommender import FactorRecommender

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GENRES = ["A", "B", "C", "D"]


class Fixed(FactorRecommender):
    """A factor model with given vectors: what serving sees, without training noise."""

    def __init__(self, train: contrec.Interactions, users: np.ndarray, items: np.ndarray) -> None:
        self._set_state(train, users, items)

    def _encode_histories(self, history):
        return np.asarray(history @ self.item_vectors_, dtype=np.float32)  # a sum: enough to rank by


def _world(seed: int, n_users: int = 6, n_items: int = 30, dim: int = 4) -> Fixed:
    rng = np.random.default_rng(seed)
    rows = [(f"u{u}", f"i{i}") for u in range(n_users) for i in rng.choice(n_items, rng.integers(1, 6), replace=False)]
    frame = pd.DataFrame(rows, columns=["user", "item"])
    names = [f"i{i}" for i in range(n_items)]
    genres = ["|".join(sorted(set(rng.choice(GENRES, rng.integers(1, 3))))) for _ in range(n_items)]
    first = int(rows[0][1][1:])
    genres[first] = "|".join(sorted(set(genres[first].split("|")) | {"A"}))  # "has(genres, A)" always names a value
    attrs = pd.DataFrame({"genres": genres, "lang": rng.choice(["en", "fr"], n_items)}, index=names)
    # every item in the catalogue even without rows: one user who saw them all would change the seen sets
    data = contrec.Interactions.from_frame(frame, item_attributes=attrs)
    return Fixed(data, rng.normal(size=(data.n_users, dim)), rng.normal(size=(data.n_items, dim)))


def _brute(model: Fixed, user: str, k: int, ok) -> list[str]:
    """The k best items of ``user`` that pass ``ok(item id)`` and were not seen, by exact scores."""
    u = model.users_.index(np.array([user]))[0]
    scores = model.item_vectors_ @ model.user_vectors_[u]
    seen = set(model.seen_[u].indices)
    order = [j for j in np.argsort(-scores, kind="stable") if j not in seen and ok(str(model.items_.ids[j]))]
    return [str(model.items_.ids[j]) for j in order[:k]]


@SETTINGS
@given(seed=st.integers(0, 10_000), k=st.integers(1, 12), share=st.floats(0.05, 1.0))
def test_an_allow_list_gives_exactly_the_best_allowed_items(seed, k, share):
    model = _world(seed)
    k = min(k, len(model.items_))  # the catalogue is the items with rows
    rng = np.random.default_rng(seed + 1)
    allowed = list(rng.choice(model.items_.ids, max(1, int(share * len(model.items_))), replace=False)) + ["ghost"]
    got = model.recommend(None, k=k, items=allowed)
    for user in model.users_.ids:
        expected = _brute(model, user, k, lambda i: i in allowed)
        assert got[got["user"] == user]["item"].tolist() == expected  # k of them whenever k pass


@SETTINGS
@given(seed=st.integers(0, 10_000), k=st.integers(1, 12), everyone=st.integers(0, 25), form=st.sampled_from(["map", "frame"]))
def test_exclusions_for_everyone_and_per_user_are_exact(seed, k, everyone, form):
    model = _world(seed)
    k = min(k, len(model.items_))
    rng = np.random.default_rng(seed + 2)
    gone = list(rng.choice(model.items_.ids, min(everyone, len(model.items_)), replace=False))
    per_user = {u: list(rng.choice(model.items_.ids, min(3, len(model.items_)), replace=False))
                for u in model.users_.ids[::2]}
    spec = per_user if form == "map" else pd.DataFrame([(u, i) for u, items in per_user.items() for i in items],
                                                       columns=["user", "item"])
    both = model.recommend(None, k=k, exclude=spec)
    glob = model.recommend(None, k=k, exclude=gone)  # few: per-row exclusions; > half: the complement is searched
    for user in model.users_.ids:
        mine = set(per_user.get(user, []))
        assert both[both["user"] == user]["item"].tolist() == _brute(model, user, k, lambda i: i not in mine)
        assert glob[glob["user"] == user]["item"].tolist() == _brute(model, user, k, lambda i: i not in gone)


def _passes(model: Fixed, user: str, rule: str):
    attrs = model.item_attributes_
    u = model.users_.index(np.array([user]))[0]
    history = [str(model.items_.ids[j]) for j in model.seen_[u].indices]

    def genres(i):
        return set(str(attrs.loc[i, "genres"]).split("|"))

    def ok(j: str) -> bool:
        if rule == "never_same(genres)":
            return all(not (genres(i) & genres(j)) for i in history)
        if rule == "differ(lang)":
            return all(attrs.loc[i, "lang"] != attrs.loc[j, "lang"] for i in history)
        if rule == "not has(genres, A)":
            return "A" not in genres(j)
        if rule == "not has(genres, A) and never_same(lang)":
            return "A" not in genres(j) and all(attrs.loc[i, "lang"] != attrs.loc[j, "lang"] for i in history)
        return all(bool(genres(i) & genres(j)) or attrs.loc[i, "lang"] == attrs.loc[j, "lang"] for i in history)
    return ok


@SETTINGS
@given(seed=st.integers(0, 10_000), k=st.integers(1, 10),
       rule=st.sampled_from(["never_same(genres)", "differ(lang)", "share(genres) or same(lang)",
                             "not has(genres, A) and never_same(lang)"]))
def test_a_serving_rule_holds_against_every_history_item(seed, k, rule):
    model = _world(seed)
    k = min(k, len(model.items_))
    got = model.recommend(None, k=k, rule=rule)
    for user in model.users_.ids:
        assert got[got["user"] == user]["item"].tolist() == _brute(model, user, k, _passes(model, user, rule))


@pytest.mark.parametrize("rule", ["share(genres) or same(lang)", "never_same(genres)", "not has(genres, A)"])
def test_rows_a_rule_leaves_short_after_the_over_fetch_are_refilled_exactly(rule, monkeypatch):
    import contrec.serving.candidates as candidates

    monkeypatch.setattr(candidates, "_RULE_MARGIN", 0)  # fetch 2k: most rows lose items to the rule
    for seed in range(3):
        model = _world(seed, n_users=12, n_items=400)
        got = model.recommend(None, k=6, rule=rule)
        for user in model.users_.ids:
            assert got[got["user"] == user]["item"].tolist() == _brute(model, user, 6, _passes(model, user, rule))


def test_rules_and_lists_combine_and_bad_rules_are_one_line():
    model = _world(3)
    allowed = list(model.items_.ids[:20])
    got = model.recommend(["u1"], k=4, items=allowed, exclude=["i0"], rule="differ(lang)")
    assert got["item"].tolist() == _brute(model, "u1", 4, lambda i: i in allowed and i != "i0"
                                          and _passes(model, "u1", "differ(lang)")(i))
    with pytest.raises(DataError, match="attribute 'franchise', but the item attributes have only: genres, lang"):
        model.recommend(["u1"], k=3, rule="never_same(franchise)")
    with pytest.raises(ContrecError, match="unknown rule 'sameish'"):
        model.recommend(["u1"], k=3, rule="sameish(genres)")
    with pytest.raises(DataError, match="none of the 1 allowed item ids"):
        model.recommend(["u1"], k=3, items=["nope"])


def test_a_plain_attribute_filter_holds_for_every_row_even_without_history():
    model = _world(11)
    genres = model.item_attributes_["genres"].str.split("|")
    got = model.recommend(None, k=5, rule='not has(genres, "A")')
    assert not any("A" in genres.loc[i] for i in got["item"])
    # a history of only unknown items is empty: the filter still holds, relational parts do not bind
    empty = model.recommend_for_history({"new": ["ghost"]}, k=5, unknown="skip", filter_seen=False,
                                        rule={"and": [{"not": {"has": {"genres": "A"}}}, {"differ": "lang"}]})
    assert len(empty) == 5 and not any("A" in genres.loc[i] for i in empty["item"])
    with pytest.raises(DataError, match=r"rule has\(genres, 'Horor'\): no item has genres 'Horor'; its values include: 'A'"):
        model.recommend(["u1"], k=3, rule="not has(genres, Horor)")


def test_similar_items_and_new_users_take_the_same_options():
    model = _world(5)
    sim = model.similar_items(["i1"], k=3, among=list(model.items_.ids[:15]), rule="differ(lang)")
    lang = model.item_attributes_["lang"]
    assert set(sim["similar_item"]) <= set(model.items_.ids[:15]) and "i1" not in set(sim["similar_item"])
    assert (lang.loc[sim["similar_item"]] != lang.loc["i1"]).all()
    train = contrec.Interactions.from_frame(pd.DataFrame({"user": ["a", "a", "b", "c"], "item": ["x", "y", "y", "z"]}),
                                            item_attributes=pd.DataFrame({"g": ["1", "1", "2"]}, index=["x", "y", "z"]))
    als = contrec.ImplicitALS(factors=2, iterations=2, seed=0, threads=1).fit(train)
    got = als.recommend_for_history({"q": ["x"]}, k=2, rule="differ(g)", filter_seen=True)
    assert got["item"].tolist() == ["z"]  # y shares x's g; x is the history itself
    got = als.recommend_for_history({"q": ["x"]}, k=2, exclude={"q": ["z"]})
    assert got["item"].tolist() == ["y"]


def test_cli_notes_lists_shortened_by_seen_items(tmp_path, cli):
    data = tmp_path / "d.csv"
    rows = [("heavy", f"i{i}") for i in range(4)] + [(f"u{u}", f"i{(u + j) % 5}") for u in range(8) for j in range(2)]
    pd.DataFrame(rows, columns=["user", "item"]).to_csv(data, index=False)
    model = tmp_path / "m.contrec"
    cli("fit", data, "-o", model, "--epochs", "1", "--validation-size", "0", "--dim", "8", "--threads", "1", "--quiet",
        check=True)
    short = cli("recommend", model, "--users", "heavy,u1", "-k", "3", check=True)
    recs = pd.read_csv(io.StringIO(short.stdout), dtype=str)
    assert recs["item"][recs["user"] == "heavy"].tolist() == ["i4"] and (recs["user"] == "u1").sum() == 3
    assert short.stderr.strip() == ("contrec: note: 1 of 2 lists hold fewer than 3 items: the items already seen "
                                    "(--include-seen lists them too) leave too few")
    full = cli("recommend", model, "--users", "heavy", "-k", "3", "--include-seen", check=True)
    assert len(pd.read_csv(io.StringIO(full.stdout))) == 3 and "note" not in full.stderr


def test_cli_serving_flags(tmp_path, cli):
    data = tmp_path / "d.csv"
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{i}") for u in range(30) for i in rng.choice(20, 5, replace=False)]
    pd.DataFrame(rows, columns=["user", "item"]).to_csv(data, index=False)
    model = tmp_path / "m.contrec"
    cli("fit", data, "-o", model, "--epochs", "1", "--validation-size", "0", "--dim", "8", "--threads", "1", "--quiet",
        check=True)
    (tmp_path / "allow.txt").write_text("i1\ni2\ni3\ni4\n")
    (tmp_path / "ex.csv").write_text("user,item\nu1,i1\n")
    out = cli("recommend", model, "--users", "u1,u2", "-k", "2", "--items-file", tmp_path / "allow.txt",
              "--exclude-file", tmp_path / "ex.csv", check=True).stdout
    recs = pd.read_csv(io.StringIO(out), dtype=str)
    assert set(recs["item"]) <= {"i1", "i2", "i3", "i4"} and "i1" not in set(recs[recs["user"] == "u1"]["item"])
    seen = set(pd.read_csv(data, dtype=str).query("user == 'u1'")["item"])
    (tmp_path / "few.txt").write_text("\n".join(sorted(seen)[:3] + ["i19" if "i19" not in seen else "i18"]))
    short = cli("recommend", model, "--users", "u1", "-k", "3", "--items-file", tmp_path / "few.txt", check=True)
    assert len(pd.read_csv(io.StringIO(short.stdout))) <= 1  # u1 has seen the other allowed items
    assert "1 of 1 lists hold fewer than 3 items: the items already seen (--include-seen lists them too) " \
        "and the filters (--items-file, --exclude-file, --rule) leave too few" in short.stderr
    bad = cli("recommend", model, "--users", "u1", "--rule", "never_same(genres)")
    assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and "no item attributes" in bad.stderr
