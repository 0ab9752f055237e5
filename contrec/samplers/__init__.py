"""Negative samplers, registered by name.

Example:
    >>> get_sampler("uniform")
    UniformSampler()
"""

from __future__ import annotations

from typing import Any

from contrec.errors import ConfigError
from contrec.samplers.base import NegativeSampler, Negatives
from contrec.samplers.uniform import UniformSampler

__all__ = ["NegativeSampler", "Negatives", "UniformSampler", "SAMPLERS", "get_sampler"]

SAMPLERS: dict[str, type] = {UniformSampler.name: UniformSampler}


def get_sampler(name: "str | NegativeSampler", **params: Any) -> NegativeSampler:
    """A sampler by registry name with its parameters (an instance passes through)."""
    if not isinstance(name, str):
        if isinstance(name, NegativeSampler):
            return name
        raise ConfigError(f"sampler must be a name or a NegativeSampler (got {type(name).__name__})")
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)}")
    try:
        return SAMPLERS[name](**params)
    except TypeError as err:
        raise ConfigError(f"sampler {name!r}: {err}") from None
