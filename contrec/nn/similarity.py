"""Similarities s(u, v) used inside InfoNCE, and how FAISS reproduces their ranking.

Registered: ``dot``, ``cosine``, ``gaussian``, ``laplacian``, ``kernel-mixture`` (and the
``-normalized`` variants of the last three, on unit vectors). A similarity knows three things: how to score
users against a shared candidate list (`pairwise`), against per-row candidates
(`rowwise`), and how to transform vectors so that a FAISS inner-product or L2 index ranks
items in exactly its order (`prepare`).

Example:
    >>> import torch
    >>> sim = get_similarity("cosine")
    >>> sim.pairwise(torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    tensor([[0.6000, 0.8000]])
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from contrec.errors import ConfigError
from contrec.registry import Registry

__all__ = ["Similarity", "BaseSimilarity", "Dot", "Cosine", "Gaussian", "Laplacian", "KernelMixture", "SIMILARITIES",
           "get_similarity"]


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

    def from_index(self, values: np.ndarray) -> np.ndarray:
        """This similarity's score from FAISS's result values (higher first): ``u·v`` for inner
        product, ``−‖u−v‖²`` for L2 — what a recommendation's ``score`` column shows."""
        ...

    default_temperature: float  # the τ this kernel trains well with (chosen on validation carves, docs/encoders.md)
    inner_product: ClassVar[bool]  # s(u, v) = embed(u)·embed(v): the loss may fuse s/τ − log q into one matmul
    components: "tuple[tuple[Similarity, float], ...]"  # a mixture's (kernel, weight) parts; () for one kernel

    def embed(self, x: Tensor) -> Tensor:
        """The map φ with s(u, v) = φ(u)·φ(v), for inner-product kernels (``inner_product``)."""
        ...


class BaseSimilarity:
    """Defaults of the optional parts of `Similarity`: not an inner product, not a mixture."""

    inner_product: ClassVar[bool] = False
    components: "tuple[tuple[Similarity, float], ...]" = ()
    default_temperature: float = 0.2

    def embed(self, x: Tensor) -> Tensor:
        raise ConfigError(f"{type(self).__name__} is not an inner-product kernel; it has no embedding φ")


class Dot(BaseSimilarity):
    """Inner product ``u·v``; FAISS inner-product search ranks in the same order."""

    name: ClassVar[str] = "dot"
    faiss_metric: ClassVar[Literal["ip", "l2"]] = "ip"
    inner_product: ClassVar[bool] = True
    # unbounded scores: a small τ lets the norms run away within the default 20 epochs (ml-100k carve,
    # default fit: τ 25 → NDCG@20 0.231, τ 40 → 0.246, τ 60 → 0.241, τ 150 → 0.204; cosine 0.249)
    default_temperature: float = 40.0

    def embed(self, x: Tensor) -> Tensor:
        """The vectors whose inner product is this similarity (lets the loss fuse matmul and bias)."""
        return x

    def pairwise(self, u: Tensor, v: Tensor) -> Tensor:
        return self.embed(u) @ self.embed(v).T  # [B, M]

    def rowwise(self, u: Tensor, v: Tensor) -> Tensor:
        return torch.einsum("bd,bnd->bn", self.embed(u), self.embed(v))  # [B, n]

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def from_index(self, values: np.ndarray) -> np.ndarray:
        return values  # FAISS inner product is the score itself

    def __repr__(self) -> str:
        return "Dot()"


class Cosine(Dot):
    """Cosine ``u·v / (‖u‖‖v‖)``: inner product on L2-normalised vectors (so FAISS IP on them)."""

    name: ClassVar[str] = "cosine"

    default_temperature: float = 0.2

    def embed(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1)

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        v = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return np.ascontiguousarray(v / np.maximum(norms, 1e-12), dtype=np.float32)

    def __repr__(self) -> str:
        return "Cosine()"


# Default temperatures of the distance kernels, chosen with the default fit (20 epochs, no early stopping)
# on a 20 % validation carve of ml-100k's seed-0 training split (docs/encoders.md has the grids and numbers).
_GAUSSIAN_TAU = 100.0
_LAPLACIAN_TAU = 1.0
_LAPLACIAN_NORMALIZED_TAU = 0.2
_MIXTURE_TAU = 50.0
_MIXTURE_NORMALIZED_TAU = 0.3


class _DistanceKernel(BaseSimilarity):
    """Shared parts of the distance kernels: a score that falls with ‖u − v‖, served by FAISS L2.

    InfoNCE puts ``s/τ`` in the softmax, so ``exp(s/τ)`` is the kernel itself: the Gaussian
    kernel exp(−‖u−v‖²/τ) has ``s = −‖u−v‖²``, the Laplacian exp(−‖u−v‖/τ) has
    ``s = −‖u−v‖`` (Kernel-InfoNCE, arXiv 2303.15103). Both decrease with the distance, so
    an exact L2 index ranks items in exactly their order. With ``normalize=True`` vectors
    are L2-normalised first; on unit vectors ‖u−v‖² = 2 − 2·cos, so retrieval then ranks
    exactly like cosine: the kernel changes training, not retrieval.
    """

    base_name: ClassVar[str] = ""
    faiss_metric: ClassVar[Literal["ip", "l2"]] = "l2"

    def __init__(self, normalize: bool = False) -> None:
        self.normalize = bool(normalize)

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"{self.base_name}-normalized" if self.normalize else self.base_name

    def _vectors(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1) if self.normalize else x

    def _from_squared(self, sq: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def pairwise(self, u: Tensor, v: Tensor) -> Tensor:
        u, v = self._vectors(u), self._vectors(v)
        # ‖u‖² + ‖v‖² − 2u·v: one matmul instead of a [B, M, d] difference tensor
        sq = (u * u).sum(-1, keepdim=True) + (v * v).sum(-1)[None, :] - 2.0 * (u @ v.T)
        return self._from_squared(sq.clamp_min(0.0))  # [B, M]

    def rowwise(self, u: Tensor, v: Tensor) -> Tensor:
        u, v = self._vectors(u), self._vectors(v)
        sq = ((u[:, None, :] - v) ** 2).sum(-1)
        return self._from_squared(sq)  # [B, n]

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        v = np.asarray(vectors, dtype=np.float32)
        if self.normalize:
            v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(v, dtype=np.float32)

    def from_index(self, values: np.ndarray) -> np.ndarray:
        # FAISS L2 gives squared distances (contrec's index negates them so higher is better)
        squared = torch.from_numpy(np.maximum(-np.asarray(values, dtype=np.float32), 0.0))
        return self._from_squared(squared).numpy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(normalize={self.normalize})"


class Gaussian(_DistanceKernel):
    """Gaussian kernel: ``s(u, v) = −‖u − v‖²``, so exp(s/τ) = exp(−‖u−v‖²/τ).

    Example:
        >>> import torch
        >>> Gaussian().pairwise(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0], [1.0, 0.0]]))
        tensor([[-25.,  -1.]])
    """

    base_name: ClassVar[str] = "gaussian"

    @property
    def default_temperature(self) -> float:  # type: ignore[override]
        # on unit vectors −‖u−v‖² = 2·cos − 2: τ 0.4 is exactly cosine at τ 0.2
        return 0.4 if self.normalize else _GAUSSIAN_TAU

    def _from_squared(self, sq: Tensor) -> Tensor:
        return -sq


class Laplacian(_DistanceKernel):
    """Laplacian kernel: ``s(u, v) = −‖u − v‖``, so exp(s/τ) = exp(−‖u−v‖/τ).

    A tiny constant inside the square root keeps the gradient finite where u = v.

    Example:
        >>> import torch
        >>> Laplacian().pairwise(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]]))
        tensor([[-5.]])
    """

    base_name: ClassVar[str] = "laplacian"

    @property
    def default_temperature(self) -> float:  # type: ignore[override]
        return _LAPLACIAN_NORMALIZED_TAU if self.normalize else _LAPLACIAN_TAU

    def _from_squared(self, sq: Tensor) -> Tensor:
        return -torch.sqrt(sq + 1e-12)


class KernelMixture(_DistanceKernel):
    """Laplacian and Gaussian kernels together, as in Kernel-InfoNCE (arXiv 2303.15103).

    The score is ``s = weight · (−‖u−v‖) + (1 − weight) · (−‖u−v‖²)``, so exp(s/τ) is the product
    of a Laplacian and a Gaussian kernel; it is trained and served like every other kernel:
    InfoNCE over s/τ, retrieval by s (the paper's other form, a weighted sum of the two
    kernels' losses at one τ, cannot suit both: alone they want τ ≈ 0.5 and τ ≈ 10).

    Serving: both terms of the score fall
    with the same distance, so any mixture ranks items exactly in L2 order: exact FAISS L2
    top-k *is* the mixture's top-k, with k candidates — no re-scoring pass is needed (a
    contract test checks FAISS against a brute-force ranking by this score).

    Example:
        >>> import torch
        >>> KernelMixture(weight=0.5).pairwise(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]]))
        tensor([[-15.]])
    """

    base_name: ClassVar[str] = "kernel-mixture"

    def __init__(self, weight: float = 0.5, normalize: bool = False) -> None:
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not 0.0 <= weight <= 1.0:
            raise ConfigError(f"kernel-mixture weight must be in [0, 1] (got {weight!r})")
        super().__init__(normalize)
        self.weight = float(weight)

    @property
    def default_temperature(self) -> float:  # type: ignore[override]
        return _MIXTURE_NORMALIZED_TAU if self.normalize else _MIXTURE_TAU

    def _from_squared(self, sq: Tensor) -> Tensor:
        return -self.weight * torch.sqrt(sq + 1e-12) - (1.0 - self.weight) * sq

    def __repr__(self) -> str:
        return f"KernelMixture(weight={self.weight}, normalize={self.normalize})"


SIMILARITIES: Registry[Similarity] = Registry("similarity", {
    "dot": Dot, "cosine": Cosine, "gaussian": Gaussian, "laplacian": Laplacian, "kernel-mixture": KernelMixture,
    # the same kernels on L2-normalised vectors (distances on the sphere)
    "gaussian-normalized": partial(Gaussian, normalize=True),
    "laplacian-normalized": partial(Laplacian, normalize=True),
    "kernel-mixture-normalized": partial(KernelMixture, normalize=True),
})


def get_similarity(name: "str | Similarity", **params: Any) -> Similarity:
    """A similarity by registry name (an instance passes through); ``params`` go to its constructor.

    Example:
        >>> get_similarity("cosine")
        Cosine()
        >>> get_similarity("kernel-mixture", weight=0.3)
        KernelMixture(weight=0.3, normalize=False)
    """
    if not isinstance(name, str):
        if isinstance(name, Similarity):
            return name
        raise ConfigError(f"similarity must be a name or a Similarity (got {type(name).__name__})")
    return SIMILARITIES.create(name, **params)
