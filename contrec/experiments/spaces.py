"""Where a comparison's contestants start and what tuning may try: the documented defaults and search spaces.

Every contestant gets the same number of tuning trials; trial 1 is its default settings
(`SAMPLER_DEFAULTS`, `BASELINE_DEFAULTS`), the rest are drawn from its space
(`SEARCH_SPACES`, `VARIANT_SPACES`). docs/compare.md lists them; a config file's ``space:``
replaces a contestant's.

Example:
    >>> SEARCH_SPACES["contrec"]["temperature"]
    [0.1, 0.15, 0.2, 0.3]
"""

from __future__ import annotations

from typing import Any

__all__ = ["SAMPLER_DEFAULTS", "SEARCH_SPACES", "BASELINE_DEFAULTS", "WEIGHTED_BASELINES", "VARIANT_SPACES",
           "VARIANT_KINDS", "CONTREC_SPACE"]

# Sampler settings a contestant named only by its sampler gets (the ones docs/samplers.md measures).
SAMPLER_DEFAULTS: dict[str, dict[str, Any]] = {
    "uniform": {},
    "popularity": {"alpha": 0.75},
    "hard": {"top_m": 100, "uniform_share": 0.5, "refresh_every": 200},
    "dynamic-hard": {"pool_size": 2048},
    "domain-rule": {"rule": "disjoint(genres)"},
    "mixed": {"components": [{"name": "popularity", "weight": 0.5}, {"name": "uniform", "weight": 0.3},
                             {"name": "hard", "weight": 0.2, "top_m": 100, "refresh_every": 200}]},
    "in-batch": {},
}

# The documented validation search spaces. Every contestant gets the same number of trials
# (TuningSpec.trials): trial 1 is its default settings, the rest are drawn from its space.
CONTREC_SPACE: dict[str, list[Any]] = {"temperature": [0.1, 0.15, 0.2, 0.3], "lr": [0.005, 0.01, 0.02]}
SEARCH_SPACES: dict[str, dict[str, list[Any]]] = {
    "contrec": CONTREC_SPACE,
    "contrec:popularity": {**CONTREC_SPACE, "sampler_params.alpha": [0.25, 0.5, 0.75, 1.0]},
    "contrec:hard": {**CONTREC_SPACE, "sampler_params.top_m": [50, 100, 200],
                     "sampler_params.uniform_share": [0.25, 0.5, 0.75]},
    "contrec:dynamic-hard": {**CONTREC_SPACE, "sampler_params.pool_size": [512, 1024, 2048]},
    "popularity": {},
    "als": {"factors": [64, 128, 256], "regularization": [3.0, 10.0, 30.0, 100.0], "alpha": [1.0, 2.0, 5.0, 10.0],
            "iterations": [15, 30]},
    "bpr": {"factors": [32, 64, 128], "learning_rate": [0.002, 0.005, 0.01], "regularization": [0.0001, 0.001, 0.01],
            "iterations": [100, 200]},
    "itemknn": {"neighbours": [10, 20, 50, 100, 200, 400]},
    "ease": {"l2": [10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0]},
}

# Kernels, towers and objectives are compared like samplers: contrec with the uniform sampler
# and one setting changed. A wider temperature range for the kernels: distance kernels on
# unnormalised vectors live on another scale than cosine.
_KERNEL_SPACE: dict[str, list[Any]] = {"temperature": [0.05, 0.1, 0.2, 0.5, 1.0, 2.0], "lr": [0.005, 0.01, 0.02]}
_LR = {"lr": [0.005, 0.01, 0.02]}  # each kernel's τ grid brackets its default (contrec.nn.similarity)
VARIANT_KINDS = ("similarity", "encoder", "objective")
VARIANT_SPACES: dict[str, dict[str, list[Any]]] = {
    "similarity": _KERNEL_SPACE,
    "similarity:dot": {"temperature": [10.0, 25.0, 40.0, 60.0, 100.0], **_LR},
    "similarity:gaussian": {"temperature": [10.0, 30.0, 100.0, 300.0], **_LR},
    "similarity:laplacian": {"temperature": [0.25, 0.5, 1.0, 2.0], **_LR},
    "similarity:kernel-mixture": {"temperature": [5.0, 15.0, 50.0, 150.0], **_LR,
                                  "similarity_params.weight": [0.25, 0.5, 0.75]},
    "similarity:kernel-mixture-normalized": {**CONTREC_SPACE, "similarity_params.weight": [0.25, 0.5, 0.75]},
    "similarity:cosine": CONTREC_SPACE,
    "similarity:gaussian-normalized": {"temperature": [0.2, 0.3, 0.4, 0.6], "lr": [0.005, 0.01, 0.02]},
    "similarity:laplacian-normalized": CONTREC_SPACE,
    "encoder": CONTREC_SPACE,
    "encoder:history": {**CONTREC_SPACE, "history_dropout": [0.25, 0.5, 0.75]},
    "encoder:history-attention": {**CONTREC_SPACE, "history_dropout": [0.25, 0.5, 0.75]},
    "encoder:history-features": {**CONTREC_SPACE, "history_dropout": [0.25, 0.5, 0.75]},
    "encoder:history-ssl": {**CONTREC_SPACE, "ssl_weight": [0.05, 0.1, 0.3]},
    "encoder:features": {**CONTREC_SPACE, "id_dropout": [0.0, 0.2, 0.5]},
    "encoder:projection": {**CONTREC_SPACE, "serve_from": ["head", "tower"]},
    "encoder:simplex": {**CONTREC_SPACE, "history_dropout": [0.25, 0.5, 0.75]},
    "encoder:graph": {**CONTREC_SPACE, "graph_layers": [1, 2, 3]},
    "objective": CONTREC_SPACE,
    "objective:triplet": {"margin": [0.1, 0.2, 0.5, 1.0], "lr": [0.005, 0.01, 0.02]},
}

# Baselines start from settings found on ml-100k's validation carve (never its test split),
# as contrec's own defaults were: a fair race starts every contestant from a good point.
# implicit's library defaults (ALS regularization 0.01, BPR lr 0.01) score far lower there.
# On data with weights (`data: {weight: …}`), ALS's confidence c(w) is searched too, and starts from the weights
# ignored: on a play-count log's selection carve (the seed-0 training split of `synthetic_play_log`, 20 % carve)
# ALS at these defaults scored NDCG@20 0.1646 ignoring the weights, 0.1037 with log1p and 0.0603 with the raw
# counts as confidence (docs/compare.md). Unweighted data keeps the entries above: its cells keep their keys.
# item-kNN likewise (its similarities and scores from the weighted matrix): 0.0313 ignoring the weights, 0.0034 with
# the raw counts, on the same carve (200 neighbours).
WEIGHTED_BASELINES: dict[str, dict[str, Any]] = {
    "als": {"default": {"confidence": "none"}, "space": {"confidence": ["none", "log1p", "linear"]}},
    "itemknn": {"default": {"weights": "none"}, "space": {"weights": ["none", "log1p", "linear"]}},
}
BASELINE_DEFAULTS: dict[str, dict[str, Any]] = {
    "als": {"factors": 128, "regularization": 30.0, "alpha": 5.0, "iterations": 30},
    "bpr": {"factors": 64, "learning_rate": 0.005, "regularization": 0.001, "iterations": 100},
    "itemknn": {"neighbours": 200},
    "ease": {"l2": 250.0},
}
