"""Negative samplers, registered by name.

Example:
    >>> get_sampler("popularity", alpha=0.5)
    PopularitySampler(alpha=0.5)
    >>> list(SAMPLERS)
    ['uniform', 'popularity', 'hard', 'dynamic-hard', 'domain-rule', 'mixed', 'in-batch']
"""

from __future__ import annotations

from typing import Any

from contrec.errors import ConfigError
from contrec.registry import Registry
from contrec.rules import Rule, load_rule, parse_rule
from contrec.samplers.base import BaseSampler, ModelSnapshot, Negatives, NegativeSampler
from contrec.samplers.domain_rule import DomainRuleSampler
from contrec.samplers.hard import DynamicHardSampler, HardNegativeSampler
from contrec.samplers.inbatch import InBatchSampler
from contrec.samplers.mixed import MixedSampler
from contrec.samplers.popularity import PopularitySampler
from contrec.samplers.uniform import UniformSampler

__all__ = ["NegativeSampler", "Negatives", "ModelSnapshot", "BaseSampler", "UniformSampler", "PopularitySampler",
           "HardNegativeSampler", "DynamicHardSampler", "DomainRuleSampler", "MixedSampler", "InBatchSampler",
           "Rule", "parse_rule", "load_rule", "SAMPLERS", "get_sampler"]

SAMPLERS: Registry[NegativeSampler] = Registry("sampler", {
    cls.name: cls for cls in (UniformSampler, PopularitySampler, HardNegativeSampler, DynamicHardSampler,
                              DomainRuleSampler, MixedSampler, InBatchSampler)})


def get_sampler(name: "str | NegativeSampler", **params: Any) -> NegativeSampler:
    """A sampler by registry name with its parameters (an instance passes through).

    A wrong name lists the choices: ``ConfigError("unknown sampler 'popular'; choose one of: …")``.
    """
    if not isinstance(name, str):
        if isinstance(name, NegativeSampler):
            if params:
                raise ConfigError("sampler parameters go to the sampler's constructor when passing an instance")
            return name
        raise ConfigError(f"sampler must be a name or a NegativeSampler (got {type(name).__name__})")
    return SAMPLERS.create(name, **params)
