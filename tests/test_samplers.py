"""Every sampler passes the shared contract; then each one's own guarantees."""

import json
import math

import numpy as np
from scipy import stats
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import contrec
from contrec import Interactions
from contrec.errors import ConfigError, DataError, NotFittedError
from contrec.samplers import (SAMPLERS, DomainRuleSampler, DynamicHardSampler, HardNegativeSampler, InBatchSampler,
                              MixedSampler, PopularitySampler, UniformSampler, get_sampler, load_rule, parse_rule)

from .contracts import SamplerContract, random_snapshot, skewed_interactions


class TestUniform(SamplerContract):
    def make_sampler(self, exclude_positives=False):
        return UniformSampler(exclude_positives=exclude_positives)


class TestPopularity(SamplerContract):
    def make_sampler(self, exclude_positives=False):
        return PopularitySampler(alpha=0.75, exclude_positives=exclude_positives)


class TestPopularityUnigram(SamplerContract):
    def make_sampler(self, exclude_positives=False):
        return PopularitySampler(alpha=1.0, smoothing=0.0, exclude_positives=exclude_positives)


class TestHard(SamplerContract):
    def make_sampler(self, exclude_positives=False):
        return HardNegativeSampler(top_m=5, uniform_share=0.3, exclude_positives=exclude_positives)

    def prepare(self, sampler, train):
        sampler.update(random_snapshot(train))


class TestHardPerRow(TestHard):
    def make_sampler(self, exclude_positives=False):
        return HardNegativeSampler(top_m=5, uniform_share=0.3, shared=False, exclude_positives=exclude_positives)


class TestDomainRule(SamplerContract):  # shared draws, the rule as a row mask (per-row when excluding)
    def make_sampler(self, exclude_positives=False):
        return DomainRuleSampler("disjoint(genres) or same(decade)", exclude_positives=exclude_positives)


class TestDomainRuleMaskInBatch(SamplerContract):
    supports_exclusion = False

    def make_sampler(self, exclude_positives=False):
        return DomainRuleSampler("disjoint(genres) or same(decade)", mask_in_batch=True)


class TestDomainRulePerRow(SamplerContract):
    def make_sampler(self, exclude_positives=False):
        return DomainRuleSampler("disjoint(genres) or same(decade)", exclude_positives=exclude_positives,
                                 draw="per-row")


class TestInBatch(SamplerContract):
    supports_exclusion = False

    def make_sampler(self, exclude_positives=False):
        return InBatchSampler()

    def test_frequencies_follow_declared_q(self):
        """Over random batches of training positives, draws follow the declared q(j) = p(j) (chi-square)."""
        sampler, train = self.fitted()
        gen = torch.Generator().manual_seed(1)
        rows, items = torch.from_numpy(train.row_codes()), torch.from_numpy(train.matrix.indices.astype(np.int64))
        observed = np.zeros(train.n_items, dtype=np.int64)
        # a batch is a uniform sample of positives, as the trainer's shuffle makes it; one draw per batch keeps
        # the draws independent (draws from one batch share its items), as the chi-square test assumes
        for _ in range(6000):
            pick = torch.randint(0, len(items), (32,), generator=gen)
            draws = sampler.sample(rows[pick], items[pick], 1, gen)
            assert bool(torch.isin(draws.items, items[pick]).all())  # only the batch's own positives
            observed += np.bincount(draws.items.numpy(), minlength=train.n_items)
        q = sampler.log_prob(rows[:1], torch.arange(train.n_items)).exp().double().numpy().reshape(-1)
        assert abs(q.sum() - 1) < 1e-6
        expected = q * observed.sum()
        keep = expected > 0
        assert observed[~keep].sum() == 0
        _, p_value = stats.chisquare(observed[keep], expected[keep])
        assert p_value > 1e-3, p_value


class TestMixed(SamplerContract):
    supports_exclusion = False

    def make_sampler(self, exclude_positives=False):
        return MixedSampler([(UniformSampler(), 0.2), (PopularitySampler(alpha=1.0), 0.3),
                             (DomainRuleSampler("disjoint(genres)"), 0.3), (HardNegativeSampler(top_m=4), 0.2)])

    def prepare(self, sampler, train):
        sampler.update(random_snapshot(train, step=0))


class TestMixedExcluding(SamplerContract):
    """A mixture of excluding components excludes too."""

    def make_sampler(self, exclude_positives=False):
        return MixedSampler([(UniformSampler(exclude_positives=exclude_positives), 0.5),
                             (PopularitySampler(exclude_positives=exclude_positives), 0.5)])


class TestDynamicHard(SamplerContract):
    supports_exclusion = False
    declares_proposal = False  # top-of-pool choice: log q reports only the pool's uniform proposal

    def make_sampler(self, exclude_positives=False):
        return DynamicHardSampler(pool_size=8)

    def prepare(self, sampler, train):
        snap = random_snapshot(train)
        uv, iv = torch.from_numpy(snap.user_vectors), torch.from_numpy(snap.item_vectors)
        sampler.bind(lambda u, j: torch.einsum("bd,bcd->bc", uv[u], iv[j]))
        self.vectors = (uv, iv)


# ---------------------------------------------------------------- registry
def test_registry_lists_choices():
    assert list(SAMPLERS) == ["uniform", "popularity", "hard", "dynamic-hard", "domain-rule", "in-batch", "mixed"]
    with pytest.raises(ConfigError, match=r"unknown sampler 'popular'; choose one of: uniform, popularity, hard, "
                                          r"dynamic-hard, domain-rule, in-batch, mixed"):
        get_sampler("popular")
    with pytest.raises(ConfigError, match="sampler 'uniform'"):
        get_sampler("uniform", alpha=1)
    assert get_sampler("popularity", alpha=0.0).alpha == 0.0


def test_unfitted_sampler_says_so(torch_generator):
    with pytest.raises(NotFittedError):
        UniformSampler().sample(torch.tensor([0]), torch.tensor([0]), 3, torch_generator)


# ---------------------------------------------------------------- popularity
def test_popularity_alpha_zero_is_uniform_and_one_is_unigram():
    train = skewed_interactions()
    items = torch.arange(train.n_items)
    flat = PopularitySampler(alpha=0.0).fit(train).log_prob(torch.tensor([0]), items).exp()
    assert torch.allclose(flat, torch.full_like(flat, 1 / train.n_items))
    unigram = PopularitySampler(alpha=1.0, smoothing=0.0).fit(train).log_prob(torch.tensor([0]), items).exp()
    counts = torch.from_numpy(train.item_counts()).float()
    assert torch.allclose(unigram, counts / counts.sum(), atol=1e-6)


def test_popularity_rejects_bad_alpha():
    with pytest.raises(ConfigError, match="alpha must be ≥ 0"):
        PopularitySampler(alpha=-1)


# ---------------------------------------------------------------- hard
def test_hard_candidates_are_the_models_top_non_positives():
    train = skewed_interactions()
    snap = random_snapshot(train, seed=5)
    sampler = HardNegativeSampler(top_m=6, uniform_share=0.0, shared=False).fit(train)
    sampler.update(snap)
    scores = snap.user_vectors @ snap.item_vectors.T
    scores[train.matrix.toarray() > 0] = -np.inf
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :6]
    assert np.array_equal(np.sort(sampler.candidates_.numpy(), 1), np.sort(expected, 1))
    users = torch.arange(train.n_users)
    neg = sampler.sample(users, users * 0, 50, torch.Generator().manual_seed(0))
    in_top = (neg.items[:, :, None] == torch.from_numpy(expected)[:, None, :]).any(-1)
    assert in_top.all()  # uniform_share=0: every draw is one of the user's top-6
    # q is exactly 1/6 on the top-6 and 0 elsewhere
    q = sampler.log_prob(users[:1], torch.arange(train.n_items)).exp()[0]
    assert torch.allclose(q[torch.from_numpy(expected[0])], torch.full((6,), 1 / 6))
    assert q.sum().item() == pytest.approx(1.0)
    assert len(sampler.refresh_seconds_) == 1


@pytest.mark.parametrize("exclude", [False, True])
def test_shared_hard_draws_pool_the_batch_tables(exclude):
    """shared=True: one draw for the batch from its rows' pooled top-M tables; chi-square against
    the declared q(j) = (1 − ε)·mean_b [j ∈ H_b]/|H_b| + ε/N, known positives never drawn when excluded."""
    train = skewed_interactions(n_users=50, n_items=40)
    sampler = HardNegativeSampler(top_m=6, uniform_share=0.2, exclude_positives=exclude).fit(train)
    sampler.update(random_snapshot(train, seed=5))
    users = torch.tensor([0, 3, 3, 17])  # a repeated user counts once per row
    tables = sampler.candidates_[users].numpy()
    expected = np.full(train.n_items, 0.2 / train.n_items)
    for row in tables:
        np.add.at(expected, row, 0.8 / len(users) / len(row))
    q = sampler.log_prob(users, torch.arange(train.n_items)).exp().double().numpy()
    if not exclude:
        assert q.shape == (train.n_items,) and np.allclose(q, expected) and q.sum() == pytest.approx(1.0)
        neg = sampler.sample(users, users * 0, 60_000, torch.Generator().manual_seed(2))
        assert neg.items.shape == (60_000,)  # shared by the rows: one matrix product scores it
        observed = np.bincount(neg.items.numpy(), minlength=train.n_items)
        assert stats.chisquare(observed, expected * 60_000).pvalue > 1e-3
        assert torch.allclose(neg.log_q, sampler.log_prob(users, neg.items), atol=1e-6)
        # q is cached for the step's users tensor only: another batch, or new tables, get their own
        other = torch.tensor([5, 6])
        mine = np.full(train.n_items, 0.2 / train.n_items)
        for row in sampler.candidates_[other].numpy():
            np.add.at(mine, row, 0.8 / 2 / len(row))
        assert np.allclose(sampler.log_prob(other, torch.arange(train.n_items)).exp().double().numpy(), mine)
        sampler.update(random_snapshot(train, seed=9))
        fresh = np.full(train.n_items, 0.2 / train.n_items)
        for row in sampler.candidates_[users].numpy():
            np.add.at(fresh, row, 0.8 / len(users) / len(row))
        assert np.allclose(sampler.log_prob(users, torch.arange(train.n_items)).exp().double().numpy(), fresh)
        assert not np.allclose(fresh, expected)
        return
    known = train.matrix.toarray() > 0
    neg = sampler.sample(users, users * 0, 20_000, torch.Generator().manual_seed(2))
    assert neg.items.shape == (len(users), 20_000)
    assert not known[users.numpy()[:, None], neg.items.numpy()].any()
    for b, user in enumerate(users.tolist()):  # each row: the batch proposal renormalised off its positives
        row_q = np.where(known[user], 0.0, expected)
        row_q /= row_q.sum()
        assert np.allclose(q[b], row_q, atol=1e-7)
        observed = np.bincount(neg.items[b].numpy(), minlength=train.n_items)
        allowed = row_q > 0
        assert stats.chisquare(observed[allowed], row_q[allowed] * 20_000).pvalue > 1e-3


def test_hard_before_refresh_is_uniform():
    train = skewed_interactions()
    sampler = HardNegativeSampler().fit(train)
    lq = sampler.log_prob(torch.tensor([0]), torch.arange(3))
    assert torch.allclose(lq, torch.full((1, 3), -math.log(train.n_items)))


def test_dynamic_hard_keeps_the_top_of_each_pool():
    case = TestDynamicHard()
    sampler, train = case.fitted()
    uv, iv = case.vectors
    users, items = case.batch(train, size=8)
    neg = sampler.sample(users, items, 3, torch.Generator().manual_seed(0))
    # regenerate the same pool and check the chosen items are its 3 best non-positives
    pool = torch.randint(0, train.n_items, (8, 8), generator=torch.Generator().manual_seed(0))
    scores = torch.einsum("bd,bcd->bc", uv[users], iv[pool])
    scores = scores.masked_fill(sampler.lookup_.rowwise(users, pool), -math.inf)
    best = pool.gather(1, scores.topk(3, dim=1).indices)
    assert torch.equal(neg.items.sort(dim=1).values, best.sort(dim=1).values)  # a row's negatives are a set


# ---------------------------------------------------------------- domain rules
def test_rule_strings_dicts_and_errors():
    rule = parse_rule("disjoint(genres) and (same(decade) or not share(language))")
    assert str(rule) == "disjoint(genres) and (same(decade) or not share(language))"
    assert rule.attributes() == {"genres", "decade", "language"}
    as_dict = parse_rule({"and": [{"disjoint": "genres"}, {"or": [{"same": "decade"},
                                                                  {"not": {"share": "language"}}]}]})
    assert str(as_dict) == str(rule)
    for bad, message in [("disjoint(genres", "ends early"), ("similar(genres)", "unknown rule 'similar'"),
                         ("disjoint(genres) xor same(year)", "unexpected 'xor'"), ("", "the rule is empty"),
                         ("disjoint()", "needs an attribute name"), ("__import__('os')", "unknown rule '__import__'"), ("disjoint(genres) ; rm", "cannot parse rule")]:
        with pytest.raises(ConfigError, match=message):
            parse_rule(bad)
    with pytest.raises(ConfigError, match="exactly one key"):
        parse_rule({"disjoint": "genres", "same": "decade"})
    has = parse_rule("""disjoint(genres) and not has(genres, "Children's")""")
    assert str(has) == """disjoint(genres) and not has(genres, "Children's")""" and parse_rule(str(has)) == has
    assert parse_rule({"not": {"has": ["genres", "Children's"]}}) == parse_rule("not has(genres, \"Children's\")")
    for bad, message in [("has(genres)", "expected ','"), ("has(genres, )", "needs a value"),
                         ("'Drama'", "quoted value stands only inside has")]:
        with pytest.raises(ConfigError, match=message):
            parse_rule(bad)
    with pytest.raises(ConfigError, match="'has' takes one attribute and one value"):
        parse_rule({"has": "genres"})


def test_rule_files_json_and_yaml(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"rule": {"disjoint": "genres"}, "fallback": "skip"}))
    (tmp_path / "r.yaml").write_text("rule: disjoint(genres) and never_same(decade)\nfallback: uniform\n")
    (tmp_path / "bad.yaml").write_text("rule: [unclosed\n")
    rule, settings = load_rule(tmp_path / "r.json")
    assert str(rule) == "disjoint(genres)" and settings == {"fallback": "skip"}
    sampler = DomainRuleSampler(str(tmp_path / "r.yaml"))
    assert str(sampler.rule) == "disjoint(genres) and never_same(decade)" and sampler.fallback == "uniform"
    assert DomainRuleSampler(str(tmp_path / "r.json")).fallback == "skip"
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_rule(tmp_path / "bad.yaml")
    (tmp_path / "evil.yaml").write_text("rule: !!python/object/apply:os.system ['echo owned']\n")
    with pytest.raises(ConfigError, match="evil.yaml: not valid YAML"):  # safe_load refuses python tags
        load_rule(tmp_path / "evil.yaml")


def test_rule_needs_known_attributes():
    train = skewed_interactions()
    with pytest.raises(DataError, match="uses attribute 'language', but the item attributes have only: genres, year"):
        DomainRuleSampler("differ(language)").fit(train)
    bare = Interactions.from_frame(pd.DataFrame({"user": ["a"], "item": ["x"]}))
    with pytest.raises(DataError, match="needs item attributes"):
        DomainRuleSampler().fit(bare)


def test_fallback_uniform_and_skip_are_counted():
    df = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "z"]})
    attrs = pd.DataFrame({"genres": ["A|B", "A", "B"]}, index=["x", "y", "z"])
    train = Interactions.from_frame(df, item_attributes=attrs)
    positives = torch.tensor([0, 1])  # x shares a genre with every item: no candidate; y allows z
    users = torch.tensor([0, 0])
    for fallback in ("uniform", "skip"):
        sampler = DomainRuleSampler("disjoint(genres)", fallback=fallback, draw="per-row").fit(train)
        neg = sampler.sample(users, positives, 5, torch.Generator().manual_seed(0))
        assert sampler.stats_["fallback_rows"] == 1
        assert (neg.items[1] == 2).all()  # y -> only z
        assert torch.allclose(neg.log_q[1], torch.zeros(5))  # q = 1/|{z}|
        if fallback == "skip":
            assert neg.valid is not None and not neg.valid[0].any() and neg.valid[1].all()
        else:
            assert torch.allclose(neg.log_q[0], torch.full((5,), -math.log(3)))


def _oracle_allowed(op, a, b):
    a, b = set(a), set(b)
    return {"disjoint": not a & b, "never_same": not a & b, "share": bool(a & b),
            "same": bool(a) and a == b, "differ": not (bool(a) and a == b)}[op]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sets(st.sampled_from("ABCDEFG"), max_size=3), min_size=2, max_size=25),
       st.sampled_from(["disjoint", "share", "same", "differ", "never_same"]),
       st.integers(0, 2**31 - 1))
def test_domain_rule_draws_satisfy_the_rule(genre_sets, op, seed):
    n = len(genre_sets)
    items = [f"i{k}" for k in range(n)]
    attrs = pd.DataFrame({"genres": ["|".join(sorted(s)) for s in genre_sets]}, index=items)
    df = pd.DataFrame({"user": [f"u{k}" for k in range(n)], "item": items})
    train = Interactions.from_frame(df, item_attributes=attrs)
    sampler = DomainRuleSampler(f"{op}(genres)", fallback="skip", draw="per-row").fit(train)
    positives = torch.arange(n)
    neg = sampler.sample(positives, positives, 20, torch.Generator().manual_seed(seed))
    ids = train.items.ids
    index = {i: k for k, i in enumerate(items)}
    for row in range(n):
        allowed = [j for j in range(n) if _oracle_allowed(op, genre_sets[index[ids[row]]], genre_sets[index[ids[j]]])]
        if not allowed:
            assert not neg.valid[row].any()
            continue
        drawn = set(neg.items[row].tolist())
        assert drawn <= set(allowed)
        assert torch.allclose(neg.log_q[row], torch.full((20,), -math.log(len(allowed))))



@settings(max_examples=40, deadline=None)
@given(st.lists(st.sets(st.sampled_from("ABCDEFG"), max_size=3), min_size=2, max_size=25),
       st.sampled_from(["disjoint", "share", "same", "differ", "never_same"]),
       st.sampled_from(["uniform", "skip"]), st.integers(0, 2**31 - 1))
def test_shared_domain_rule_mask_is_exactly_the_rule(genre_sets, op, fallback, seed):
    # draw="shared": one uniform draw for the batch; a row may use a draw iff its rule allows it
    n = len(genre_sets)
    items = [f"i{k}" for k in range(n)]
    attrs = pd.DataFrame({"genres": ["|".join(sorted(s)) for s in genre_sets]}, index=items)
    train = Interactions.from_frame(pd.DataFrame({"user": [f"u{k}" for k in range(n)], "item": items}),
                                    item_attributes=attrs)
    sampler = DomainRuleSampler(f"{op}(genres)", fallback=fallback, draw="shared").fit(train)
    positives = torch.arange(n)
    neg = sampler.sample(positives, positives, 20, torch.Generator().manual_seed(seed))
    assert neg.items.shape == (20,) and neg.valid.shape == (n, 20)
    assert torch.allclose(neg.log_q, torch.full((20,), -math.log(n)))
    sets = dict(zip(items, genre_sets))
    ids = train.items.ids
    for row in range(n):
        allowed = {j for j in range(n) if _oracle_allowed(op, sets[ids[row]], sets[ids[j]])}
        expected = [j in allowed for j in neg.items.tolist()] if allowed else [fallback == "uniform"] * 20
        assert neg.valid[row].tolist() == expected


def test_shared_domain_rule_settings():
    assert DomainRuleSampler("disjoint(genres)").draw == "shared"
    assert DomainRuleSampler("disjoint(genres)", exclude_positives=True).draw == "per-row"
    assert repr(DomainRuleSampler("same(decade)", draw="per-row")) == \
        "DomainRuleSampler(rule='same(decade)', fallback='uniform', draw='per-row')"
    with pytest.raises(ConfigError, match="draw must be 'per-row' or 'shared'"):
        DomainRuleSampler("disjoint(genres)", draw="rowwise")
    with pytest.raises(ConfigError, match="cannot exclude each row's positives"):
        DomainRuleSampler("disjoint(genres)", draw="shared", exclude_positives=True)


def test_domain_rule_on_movielens_style_genres_and_decade():
    train = skewed_interactions()
    sampler = DomainRuleSampler("disjoint(genres) and differ(decade)", fallback="skip", draw="per-row").fit(train)
    users, positives = torch.arange(10), torch.from_numpy(train.matrix.indices[:10].astype(np.int64))
    neg = sampler.sample(users, positives, 30, torch.Generator().manual_seed(0))
    attrs = train.item_attributes
    assert 0 < sampler.stats_["fallback_rows"] < 10  # some positives have no such candidate
    for row in range(10):
        p = attrs.iloc[int(positives[row])]
        for j in neg.items[row][neg.valid[row]].tolist():
            c = attrs.iloc[j]
            assert not set(p["genres"].split("|")) & set(c["genres"].split("|"))
            assert p["year"] // 10 != c["year"] // 10


def test_a_has_rule_draws_only_items_holding_the_value():
    train = skewed_interactions()
    sampler = DomainRuleSampler("has(genres, Drama)", fallback="skip", draw="per-row").fit(train)
    neg = sampler.sample(torch.arange(6), torch.from_numpy(train.matrix.indices[:6].astype(np.int64)), 20,
                         torch.Generator().manual_seed(0))
    genres = train.item_attributes["genres"].str.split("|")
    drawn = (neg.items if neg.valid is None else neg.items[neg.valid]).reshape(-1).tolist()
    assert drawn and all("Drama" in genres.iloc[j] for j in drawn)
    with pytest.raises(DataError, match=r"no item has genres 'Dramaa'"):
        DomainRuleSampler("has(genres, Dramaa)").fit(train)


# ---------------------------------------------------------------- mixed and in-batch
def test_mixed_counts_and_exact_mixture_probability():
    train = skewed_interactions()
    uni, pop = UniformSampler(), PopularitySampler(alpha=1.0, smoothing=0.0)
    mixed = MixedSampler([(uni, 0.25), (pop, 0.75)]).fit(train)
    assert mixed.counts(8).tolist() == [2, 6] and mixed.counts(10).tolist() == [3, 7]  # ties: first component
    neg = mixed.sample(torch.tensor([0, 1]), torch.tensor([0, 1]), 8, torch.Generator().manual_seed(0))
    items = torch.arange(train.n_items)
    expected = 0.25 * uni.log_prob(torch.tensor([0]), items).exp() + 0.75 * pop.log_prob(torch.tensor([0]), items).exp()
    assert torch.allclose(mixed.log_prob(torch.tensor([0]), items).exp(), expected, atol=1e-6)
    assert neg.items.shape == (8,)
    with pytest.raises(ConfigError, match="weights must be ≥ 0"):
        MixedSampler({"uniform": -1.0})


def test_mixed_from_names_and_dict_specs():
    m = MixedSampler([{"name": "popularity", "weight": 0.3, "alpha": 0.5}, {"name": "uniform", "weight": 0.7}])
    assert m.components[0].alpha == 0.5 and np.allclose(m.weights, [0.3, 0.7])
    assert repr(MixedSampler({"uniform": 1, "in-batch": 1})) == "MixedSampler(uniform=0.5, in-batch=0.5)"


def test_in_batch_draws_only_batch_positives_with_item_share_q():
    train = skewed_interactions()
    sampler = InBatchSampler().fit(train)
    positives = torch.tensor([3, 3, 7])
    neg = sampler.sample(torch.tensor([0, 1, 2]), positives, 100, torch.Generator().manual_seed(0))
    assert set(neg.items.tolist()) <= {3, 7}
    counts = train.item_counts()
    assert neg.log_q[neg.items == 7][0].item() == pytest.approx(math.log(counts[7] / counts.sum()), rel=1e-5)


def test_rule_on_a_user_supplied_attribute_with_missing_values():
    df = pd.DataFrame({"user": ["a", "a", "b", "b"], "item": ["260", "1196", "1214", "1"]})
    train = Interactions.from_frame(df)
    franchise = pd.DataFrame({"franchise": ["star-wars", "star-wars", "alien", None]},
                             index=["260", "1196", "1214", "1"])
    sampler = DomainRuleSampler("never_same(franchise)", attributes=franchise, draw="per-row").fit(train)
    star_wars = int(train.items.index(["260"])[0])
    neg = sampler.sample(torch.tensor([0]), torch.tensor([star_wars]), 200, torch.Generator().manual_seed(0))
    drawn = set(train.items.ids[neg.items[0].numpy()])
    assert drawn == {"1214", "1"}  # never the other Star Wars film (or itself); missing is allowed


def test_an_unfitted_domain_rule_sampler_says_so():
    """Issue 15.7: contrec's not-fitted error, not an AttributeError from inside."""
    from contrec.errors import NotFittedError

    with pytest.raises(NotFittedError, match="DomainRuleSampler used before fit"):
        DomainRuleSampler("disjoint(genres)").sample(torch.tensor([0]), torch.tensor([1]), 4,
                                                      torch.Generator().manual_seed(0))


def test_mixed_log_q_is_a_function_of_the_draw_count_not_of_the_last_draw():
    train = skewed_interactions(n_users=30, n_items=40)
    mixed = MixedSampler({"uniform": 1, "popularity": 2}).fit(train)
    users, items = torch.tensor([0]), torch.arange(train.n_items)
    by_weight = mixed.log_prob(users, items)
    seven = mixed.log_prob(users, items, n_draws=7)  # 7 draws: 2 uniform + 5 popularity, not 1/3 : 2/3
    shares = mixed.counts(7) / 7
    uni, pop = mixed.components
    expected = shares[0] * uni.log_prob(users, items).exp() + shares[1] * pop.log_prob(users, items).exp()
    assert torch.allclose(seven.exp(), expected.float(), atol=1e-6)
    mixed.sample(users, items[:1], 7, torch.Generator().manual_seed(0))
    assert torch.equal(mixed.log_prob(users, items), by_weight)  # drawing leaves nothing behind
    assert not torch.allclose(seven, by_weight)


def test_every_capability_has_a_declared_default():
    from contrec.samplers.base import BaseSampler, NegativeSampler

    class Flat(BaseSampler):  # a new sampler: only the draw and its q, everything else inherited
        name = "flat"

        def _draw(self, users, positives, n, generator):
            return torch.randint(0, self.n_items_, (n,), generator=generator)

        def _base_log_prob(self, users, items, positives):
            return torch.full(items.shape, -math.log(self.n_items_), dtype=torch.float64)

        def _item_log_q(self):
            return torch.full((self.n_items_,), -math.log(self.n_items_))

    train = skewed_interactions(n_users=20, n_items=12)
    sampler = Flat().fit(train)
    assert isinstance(sampler, NegativeSampler)
    assert sampler.refresh_every is None and not sampler.forbids and not sampler.mask_in_batch
    assert sampler.bind(lambda u, j: j.float()) is None
    assert not sampler.forbidden(torch.tensor([0, 1]), torch.tensor([2, 3]), torch.arange(5)).any()
    assert sampler.params() == {} and set(sampler.state()) == {"stats.draws", "stats.redraws", "stats.unresolved"}
    model = contrec.ContrastiveRecommender(sampler=sampler, dim=8, epochs=1, batch_size=16, n_negatives=4,
                                           verbose=False).fit(train)
    assert model.history_[0]["loss"] > 0
