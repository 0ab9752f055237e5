"""The sampler registry: names → sampler classes, with one error wording for a wrong name or parameter."""

from __future__ import annotations

from typing import Any

from contrec.errors import ConfigError
from contrec.registry import Registry
from contrec.samplers.base import NegativeSampler
from contrec.samplers.domain_rule import DomainRuleSampler
from contrec.samplers.hard import DynamicHardSampler, HardNegativeSampler
from contrec.samplers.inbatch import InBatchSampler
from contrec.samplers.popularity import PopularitySampler
from contrec.samplers.uniform import UniformSampler

__all__ = ["SAMPLERS", "get_sampler"]

# `contrec.samplers.mixed` registers "mixed" itself (it looks its components up here); a sampler of
# your own can be added with SAMPLERS.register(name, cls).
SAMPLERS: Registry[NegativeSampler] = Registry("sampler", {
    cls.name: cls for cls in (UniformSampler, PopularitySampler, HardNegativeSampler, DynamicHardSampler,
                              DomainRuleSampler, InBatchSampler)})


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
