"""contrec: contrastive recommendation from implicit feedback.

Example:
    >>> import contrec
    >>> data = contrec.load_movielens("ml-100k")                            # doctest: +SKIP
    >>> train, test = contrec.split_random(data, test_size=0.2, seed=0)      # doctest: +SKIP
    >>> model = contrec.ContrastiveRecommender(seed=0).fit(train)           # doctest: +SKIP
    >>> contrec.evaluate(model, train, test, k=(10, 20))                    # doctest: +SKIP
    >>> model.save("model.contrec"); model = contrec.load("model.contrec")   # doctest: +SKIP
"""

from typing import Any

from contrec._version import __version__
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
from contrec.models.baselines import EASE, ImplicitALS, ImplicitBPR, ItemKNN, PopularityRecommender
from contrec.models.contrastive import ContrastiveRecommender, IgnoredWeightsWarning
from contrec.models.loading import load
from contrec.nn.losses import info_nce
from contrec.nn.similarity import Cosine, Dot, Similarity, get_similarity
from contrec.samplers import Negatives, NegativeSampler, UniformSampler, get_sampler
from contrec.runtime.device import SlowBfloat16Warning
from contrec.serving.index import FaissIndex
from contrec.serving.recommender import Recommender
from contrec.training import distributed

# The experiments layer sits above everything else; it is loaded on first use so that importing
# any core module (which runs this file) never imports it.
_EXPERIMENTS = ("compare", "ExperimentConfig", "load_config")


def __getattr__(name: str) -> Any:
    if name in _EXPERIMENTS:
        import contrec.experiments as experiments

        return getattr(experiments, name)
    raise AttributeError(f"module 'contrec' has no attribute {name!r}")


__all__ = [
    "__version__",
    "Interactions", "IdMap", "read_interactions", "load_movielens", "fetch_movielens", "dataset_names",
    "split_random", "split_temporal", "DuplicateRowsWarning", "DroppedRowsWarning", "IgnoredWeightsWarning",
    "SlowBfloat16Warning",
    "ContrastiveRecommender", "Recommender", "load", "PopularityRecommender", "ImplicitALS", "ImplicitBPR", "ItemKNN", "EASE",
    "NegativeSampler", "Negatives", "UniformSampler", "get_sampler",
    "Similarity", "Dot", "Cosine", "get_similarity", "info_nce",
    "FaissIndex", "distributed", "evaluate", "compare", "ExperimentConfig", "load_config",
    "ContrecError", "DataError", "ConfigError", "NotFittedError", "ModelFileError", "DatasetError",
]
