"""A learned temperature: τ as a trained parameter on a bounded log scale.

CLIP (Radford et al. 2021) learns the logit scale 1/τ as ``exp(t)`` and clips it at 100;
here ``log(1/τ)`` is the parameter and it is clamped to ``[log(1/high), log(1/low)]`` (the
gradient stops at a bound, as with CLIP's clipping). The default bounds leave room for the
unbounded kernels, whose scores (and so their useful τ) run far beyond cosine's.

Example:
    >>> tau = LearnedTemperature(0.2)
    >>> round(tau().item(), 4)
    0.2
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from contrec.errors import ConfigError

__all__ = ["LearnedTemperature"]


class LearnedTemperature(nn.Module):
    """τ = exp(−clamp(log_scale)), trained with the towers; starts at ``initial``."""

    def __init__(self, initial: float, low: float = 0.01, high: float = 1000.0) -> None:
        super().__init__()
        if not 0 < low <= initial <= high:
            raise ConfigError(f"a learned temperature starts inside [{low:g}, {high:g}] (got {initial!r})")
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / initial), dtype=torch.float32))
        self.bounds = (math.log(1.0 / high), math.log(1.0 / low))

    def forward(self) -> Tensor:
        return torch.exp(-self.log_scale.clamp(*self.bounds))

    def value(self) -> float:
        """The current τ as a number (for the history and the model file)."""
        with torch.no_grad():
            return float(self())
