"""`load`: any model file contrec wrote, whichever model it holds.

Example:
    >>> model = load("model.contrec")    # doctest: +SKIP
    >>> model.recommend(["196"], k=10)   # doctest: +SKIP
"""

from __future__ import annotations

import os

from contrec.models.baseline_files import load_baseline
from contrec.models.baselines import BASELINES
from contrec.models.persistence import load_model
from contrec.runtime.artifact import read_artifact
from contrec.serving.recommender import FactorRecommender

__all__ = ["load", "BASELINE_CLASSES"]

# a file names its model by class name; every registered baseline can be read back
BASELINE_CLASSES: dict[str, type] = {factory.__name__: factory for factory in BASELINES.values()
                                     if isinstance(factory, type)}


def load(path: "str | os.PathLike[str]") -> FactorRecommender:
    """Any model contrec wrote: a `ContrastiveRecommender` or a baseline (popularity, ALS, BPR, item-kNN, EASE).

    A damaged or foreign file is one `ModelFileError` line naming it.

    Example:
        >>> model = load("als.contrec")  # written by `contrec fit --model als` or ImplicitALS().fit(…).save(…)  # doctest: +SKIP
        >>> model.recommend(["196"], k=10)  # doctest: +SKIP
    """
    read = read_artifact(path)
    if read[1].get("model") == "ContrastiveRecommender":
        from contrec.models.contrastive import ContrastiveRecommender

        return load_model(ContrastiveRecommender, path, read)
    return load_baseline(path, BASELINE_CLASSES, read)
