"""Contract mixins that every implementation of a protocol inherits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy import stats

from contrec import Interactions


GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance"]


def skewed_interactions(n_users: int = 50, n_items: int = 20, seed: int = 0) -> Interactions:
    """Power-law item popularity, 4 positives per user, and genres/year attributes per item."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1)
    rows = {(u, int(i)) for u in range(n_users) for i in rng.choice(n_items, 4, replace=False, p=pop / pop.sum())}
    df = pd.DataFrame(sorted(rows), columns=["user", "item"]).astype(str)
    attrs = pd.DataFrame({
        "genres": ["|".join(GENRES[g] for g in range(5) if (i >> g) & 1 or g == i % 5) for i in range(n_items)],
        "year": [1970 + 7 * i for i in range(n_items)],
    }, index=[str(i) for i in range(n_items)])
    return Interactions.from_frame(df, item_attributes=attrs)


def random_snapshot(train: Interactions, dim: int = 8, seed: int = 0, step: int = 0):
    from contrec.samplers import ModelSnapshot

    rng = np.random.default_rng(seed)
    return ModelSnapshot(rng.normal(size=(train.n_users, dim)).astype(np.float32),
                         rng.normal(size=(train.n_items, dim)).astype(np.float32), "ip", step)


class SamplerContract:
    """Subclasses define ``make_sampler(exclude_positives)``; the checks below run for each of them."""

    supports_exclusion = True
    declares_proposal = True  # False: log q is not the draw distribution (documented, e.g. DNS)

    def make_sampler(self, exclude_positives: bool = False):  # pragma: no cover - abstract
        raise NotImplementedError

    def prepare(self, sampler, train) -> None:
        """Bring the sampler to a trained-model state (hard samplers: a refresh)."""

    def fitted(self, exclude_positives: bool = False):
        train = skewed_interactions()
        sampler = self.make_sampler(exclude_positives).fit(train)
        self.prepare(sampler, train)
        return sampler, train

    def batch(self, train, size=16):
        users = torch.from_numpy(train.row_codes()[:size])
        items = torch.from_numpy(train.matrix.indices[:size].astype(np.int64))
        return users, items

    def test_shapes_and_dtypes(self, torch_generator):
        sampler, train = self.fitted()
        users, items = self.batch(train)
        neg = sampler.sample(users, items, 7, torch_generator)
        assert neg.items.dtype == torch.int64 and neg.log_q.dtype == torch.float32
        assert neg.items.shape[-1] == 7 and neg.items.shape == neg.log_q.shape
        assert neg.items.dim() == 1 or neg.items.shape == (len(users), 7)
        assert int(neg.items.min()) >= 0 and int(neg.items.max()) < train.n_items
        assert torch.all(neg.log_q <= 1e-6)

    def test_same_seed_same_draws(self):
        sampler, train = self.fitted()
        users, items = self.batch(train)
        a = sampler.sample(users, items, 50, torch.Generator().manual_seed(7))
        b = sampler.sample(users, items, 50, torch.Generator().manual_seed(7))
        c = sampler.sample(users, items, 50, torch.Generator().manual_seed(8))
        assert torch.equal(a.items, b.items) and not torch.equal(a.items, c.items)

    def test_log_q_matches_log_prob(self, torch_generator):
        sampler, train = self.fitted()
        users, items = self.batch(train)
        neg = sampler.sample(users, items, 30, torch_generator)
        log_prob = sampler.log_prob(users, neg.items, items, 30)
        if neg.valid is not None and neg.valid.shape != neg.items.shape:
            # shared draws under a row mask: each row's valid draws carry the declared log q ...
            valid = neg.valid
            assert torch.allclose(log_prob.expand_as(valid)[valid], neg.log_q.expand_as(valid)[valid], atol=1e-6)
            if sampler.forbids:  # ... and a row may use exactly the draws its rule allows
                assert torch.equal(valid, ~sampler.forbidden(users, items, neg.items))
        else:
            assert torch.allclose(log_prob, neg.log_q, atol=1e-6)

    def test_frequencies_follow_declared_q(self):
        """Chi-square goodness of fit of many draws against exp(log_prob) over the catalogue."""
        if not self.declares_proposal:
            return
        for exclude in ([False, True] if self.supports_exclusion else [False]):
            sampler, train = self.fitted(exclude)
            users, items = self.batch(train, size=1)
            draws = sampler.sample(users, items, 40_000, torch.Generator().manual_seed(1))
            kept = draws.items.expand_as(draws.valid) if draws.valid is not None else draws.items
            if draws.valid is not None:
                kept = kept[draws.valid]  # what the loss sees: the row's valid draws
            observed = np.bincount(kept.reshape(-1).numpy(), minlength=train.n_items)
            catalogue = torch.arange(train.n_items)
            q = sampler.log_prob(users, catalogue, items, 40_000).exp().double().numpy().reshape(-1)
            masked = draws.valid is not None and not bool(draws.valid.all())
            # a proposal sums to 1; a mixture with a rule part keeps only the row's allowed mass
            assert (q.sum() <= 1 + 1e-4) if masked else abs(q.sum() - 1) < 1e-4, q.sum()
            if sampler.forbids:  # the valid draws follow q restricted to what the row's rule allows
                q = q * ~sampler.forbidden(users, items, catalogue).numpy().reshape(-1)
            expected = q / q.sum() * observed.sum()
            keep = expected > 0
            assert observed[~keep].sum() == 0  # never draws an item of zero probability
            _, p_value = stats.chisquare(observed[keep], expected[keep])
            assert p_value > 1e-3, (exclude, p_value)

    def test_never_a_known_positive_when_excluding(self):
        if not self.supports_exclusion:
            return
        sampler, train = self.fitted(exclude_positives=True)
        users = torch.from_numpy(train.row_codes())
        items = torch.from_numpy(train.matrix.indices.astype(np.int64))
        neg = sampler.sample(users, items, 64, torch.Generator().manual_seed(3))
        assert neg.items.dim() == 2
        dense = torch.from_numpy(train.matrix.toarray() > 0)
        hits = dense[users[:, None], neg.items]
        valid = torch.ones_like(hits) if neg.valid is None else neg.valid
        assert not (hits & valid).any()
        assert torch.isinf(neg.log_q[hits & valid]).sum() == 0

class RecommenderContract:
    """Subclasses define ``make_model()``; every recommender must pass these on the checkerboard."""

    expected_precision = 0.9  # on the checkerboard, a personalised model finds the user's parity

    def make_model(self):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def fitted(cls):
        if not hasattr(cls, "_fitted"):
            from contrec import split_random

            from .conftest import checkerboard

            train, test = split_random(checkerboard(), test_size=0.3, seed=0)
            cls._fitted = (cls().make_model().fit(train), train, test)
        return cls._fitted

    def test_recommend_frame(self):
        model, train, _ = self.fitted()
        recs = model.recommend(["u0", "u3"], k=4)
        assert list(recs.columns) == ["user", "item", "score", "rank"]
        assert recs["user"].tolist() == ["u0"] * 4 + ["u3"] * 4
        assert recs["rank"].tolist() == [1, 2, 3, 4] * 2
        assert recs["item"].isin(train.items.ids).all()

    def test_seen_items_filtered_exactly(self):
        model, train, _ = self.fitted()
        ids, _ = model.top_k(np.arange(train.n_users), 10, exclude=train.matrix)
        assert (ids >= 0).all()
        seen = train.matrix.toarray() > 0
        assert not seen[np.arange(train.n_users)[:, None], ids].any()

    def test_quality_band(self):
        import contrec

        model, train, test = self.fitted()
        table = contrec.evaluate(model, train, test, k=3)
        precision = float(table.loc[table["metric"] == "precision", "value"].iloc[0])
        assert precision >= self.expected_precision

    def test_unknown_user_and_bad_k(self):
        import pytest

        from contrec.errors import ConfigError, DataError

        model, train, _ = self.fitted()
        with pytest.raises(DataError, match="not in the training data"):
            model.recommend(["ghost"])
        with pytest.raises(ConfigError, match="larger than the catalogue"):
            model.recommend(["u0"], k=train.n_items + 1)
