"""Similarities s(u, v) used inside InfoNCE, and how FAISS reproduces their ranking.

A similarity knows three things: how to score users against a shared candidate list
(`pairwise`), against per-row candidates (`rowwise`), and how to transform vectors so that
a FAISS inner-product or L2 index ranks items in exactly its order (`prepare`).

Example:
    >>> import torch
    >>> sim = get_similarity("cosine")
    >>> sim.pairwise(torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    tensor([[0.6000, 0.8000]])
"""

from __future__ import annotations

from typing import ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from contrec.errors import ConfigError

__all__ = ["Similarity", "Dot", "Cosine", "SIMILARITIES", "get_similarity"]


@runtime_checkable
class Similarity(Protocol):
    """A similarity (kernel) between user and item vectors."""

    name: ClassVar[str]
    faiss_metric: ClassVar[Literal["ip", "l2"]]

    def pairwise(self, u: Tensor, v: Tensor) -> Tensor:
        """``[B, d] × [M, d] -> [B, M]``."""
        ...

    def rowwise(self, u: Tensor, v: Tensor) -> Tensor:
        """``[B, d] × [B, n, d] -> [B, n]``."""
        ...

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        """The vectors FAISS indexes (and queries with) to rank in this similarity's order."""
        ...


class Dot:
    """Inner product ``u·v``; FAISS inner-product search ranks in the same order."""

    name: ClassVar[str] = "dot"
    faiss_metric: ClassVar[Literal["ip", "l2"]] = "ip"

    def embed(self, x: Tensor) -> Tensor:
        """The vectors whose inner product is this similarity (lets the loss fuse matmul and bias)."""
        return x

    def pairwise(self, u: Tensor, v: Tensor) -> Tensor:
        return self.embed(u) @ self.embed(v).T  # [B, M]

    def rowwise(self, u: Tensor, v: Tensor) -> Tensor:
        return torch.einsum("bd,bnd->bn", self.embed(u), self.embed(v))  # [B, n]

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def __repr__(self) -> str:
        return "Dot()"


class Cosine(Dot):
    """Cosine ``u·v / (‖u‖‖v‖)``: inner product on L2-normalised vectors (so FAISS IP on them)."""

    name: ClassVar[str] = "cosine"

    def embed(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1)

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        v = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return np.ascontiguousarray(v / np.maximum(norms, 1e-12), dtype=np.float32)

    def __repr__(self) -> str:
        return "Cosine()"


SIMILARITIES: dict[str, type] = {"dot": Dot, "cosine": Cosine}


def get_similarity(name: "str | Similarity") -> Similarity:
    """A similarity by registry name (an instance passes through).

    Example:
        >>> get_similarity("cosine")
        Cosine()
    """
    if not isinstance(name, str):
        if isinstance(name, Similarity):
            return name
        raise ConfigError(f"similarity must be a name or a Similarity (got {type(name).__name__})")
    if name not in SIMILARITIES:
        raise ConfigError(f"unknown similarity {name!r}; choose one of: {', '.join(SIMILARITIES)}")
    return SIMILARITIES[name]()
