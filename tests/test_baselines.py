"""Every recommender (contrec's and the baselines) passes the same contract."""


import contrec

from .contracts import RecommenderContract


class TestContrastive(RecommenderContract):
    def make_model(self):
        return contrec.ContrastiveRecommender(dim=16, epochs=15, batch_size=64, n_negatives=32, lr=0.05,
                                              verbose=False)


class TestALS(RecommenderContract):
    def make_model(self):
        return contrec.ImplicitALS(factors=8, iterations=10, regularization=0.1, threads=1)


class TestBPR(RecommenderContract):
    def make_model(self):
        return contrec.ImplicitBPR(factors=8, iterations=200, learning_rate=0.05, threads=1)


class TestPopularity(RecommenderContract):
    expected_precision = 0.0  # not personalised: the checkerboard's items are equally popular

    def make_model(self):
        return contrec.PopularityRecommender()


def test_popularity_ranks_by_count_with_stable_ties():
    import pandas as pd

    df = pd.DataFrame({"user": ["a", "b", "c", "c", "b"], "item": ["x", "y", "y", "z", "z"]})
    data = contrec.Interactions.from_frame(df)
    model = contrec.PopularityRecommender().fit(data)
    recs = model.recommend("a", k=3, filter_seen=False)
    assert recs["item"].tolist() == ["y", "z", "x"]  # y and z tie at 2: the first-seen item wins
    assert recs["score"].tolist() == [2.0, 2.0, 1.0]
