"""contrec: contrastive recommendation from implicit feedback.

Example:
    >>> import contrec
    >>> data = contrec.load_movielens("ml-100k")                            # doctest: +SKIP
    >>> train, test = contrec.split_random(data, test_size=0.2, seed=0)      # doctest: +SKIP
    >>> model = contrec.ContrastiveRecommender(seed=0).fit(train)           # doctest: +SKIP
    >>> contrec.evaluate(model, train, test, k=(10, 20))                    # doctest: +SKIP
"""

from contrec._version import __version__

from contrec.baselines import EASE, ImplicitALS, ImplicitBPR, ItemKNN, PopularityRecommender
from contrec.data import (
    DroppedRowsWarning,
    DuplicateRowsWarning,
    IdMap,
    Interactions,
    dataset_names,
    fetch_movielens,
    load_movielens,
    read_interactions,
    split_random,
    split_temporal,
)
from contrec.errors import ConfigError, ContrecError, DataError, DatasetError, ModelFileError, NotFittedError
from contrec.evaluation import evaluate
from contrec.experiments import ExperimentConfig, compare, load_config
from contrec.index import FaissIndex
from contrec.losses import info_nce
from contrec.model import ContrastiveRecommender, IgnoredWeightsWarning
from contrec.recommender import Recommender
from contrec.samplers import NegativeSampler, Negatives, UniformSampler, get_sampler
from contrec.similarity import Cosine, Dot, Similarity, get_similarity

__all__ = [
    "__version__",
    "Interactions", "IdMap", "read_interactions", "load_movielens", "fetch_movielens", "dataset_names",
    "split_random", "split_temporal", "DuplicateRowsWarning", "DroppedRowsWarning", "IgnoredWeightsWarning",
    "ContrastiveRecommender", "Recommender", "PopularityRecommender", "ImplicitALS", "ImplicitBPR", "ItemKNN", "EASE",
    "NegativeSampler", "Negatives", "UniformSampler", "get_sampler",
    "Similarity", "Dot", "Cosine", "get_similarity", "info_nce",
    "FaissIndex", "evaluate", "compare", "ExperimentConfig", "load_config",
    "ContrecError", "DataError", "ConfigError", "NotFittedError", "ModelFileError", "DatasetError",
]
