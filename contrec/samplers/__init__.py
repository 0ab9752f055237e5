"""Negative samplers, registered by name.

Example:
    >>> get_sampler("popularity", alpha=0.5)
    PopularitySampler(alpha=0.5)
    >>> list(SAMPLERS)
    ['uniform', 'popularity', 'hard', 'dynamic-hard', 'domain-rule', 'in-batch', 'mixed']
"""

from __future__ import annotations

from contrec.rules import Rule, load_rule, parse_rule
from contrec.samplers.base import BaseSampler, ModelSnapshot, Negatives, NegativeSampler
from contrec.samplers.domain_rule import DomainRuleSampler
from contrec.samplers.hard import DynamicHardSampler, HardNegativeSampler
from contrec.samplers.inbatch import InBatchSampler
from contrec.samplers.mixed import MixedSampler
from contrec.samplers.popularity import PopularitySampler
from contrec.samplers.registry import SAMPLERS, get_sampler
from contrec.samplers.uniform import UniformSampler

__all__ = ["NegativeSampler", "Negatives", "ModelSnapshot", "BaseSampler", "UniformSampler", "PopularitySampler",
           "HardNegativeSampler", "DynamicHardSampler", "DomainRuleSampler", "MixedSampler", "InBatchSampler",
           "Rule", "parse_rule", "load_rule", "SAMPLERS", "get_sampler"]

