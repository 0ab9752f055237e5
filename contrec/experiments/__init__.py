"""Comparisons of negative samplers and baselines: config, leak audit, runner, report.

Example:
    >>> from contrec.experiments import compare                                  # doctest: +SKIP
    >>> result = compare(dataset="ml-100k", samplers=["uniform", "hard"],
    ...                  baselines=["ease"], seeds=3, out="reports/ml-100k")     # doctest: +SKIP
"""

from contrec.evaluation.protocol import EvaluationProtocol
from contrec.experiments.config import Contestant, DataSpec, ExperimentConfig, TuningSpec, build_config, load_config
from contrec.experiments.result import ComparisonResult
from contrec.experiments.runner import compare

__all__ = ["compare", "ComparisonResult", "ExperimentConfig", "DataSpec", "EvaluationProtocol", "TuningSpec",
           "Contestant", "load_config", "build_config"]
