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

    distance: ClassVar[bool]  # s = f(‖φ(u) − φ(v)‖²): the loss may fuse the distances into one matmul

    def distance_vectors(self, x: Tensor) -> Tensor:
        """The vectors φ(x) whose squared distances a distance kernel (``distance``) scores."""
        ...

    def score_and_slope_(self, sq: Tensor) -> tuple[Tensor, "Tensor | float"]:
        """A distance kernel's score f of squared distances ``sq`` (overwritten in place) and its slope f′."""
        ...


def _ball(x: Tensor, radius: float | None) -> Tensor:
    """``x`` scaled into the ball of ``radius`` (rows already inside are unchanged); None: ``x``."""
    if radius is None:
        return x
    return x * (radius / x.norm(dim=-1, keepdim=True).clamp_min(radius))


def _radius(max_norm: float | None) -> float | None:
    if max_norm is None:
        return None
    if not isinstance(max_norm, (int, float)) or isinstance(max_norm, bool) or not max_norm > 0:
        raise ConfigError(f"max_norm must be a positive number or None (got {max_norm!r})")
    return float(max_norm)


# Default temperatures, chosen with the default fit on validation carves of the training splits of ml-100k
# and ml-latest-small, never on a test split (docs/encoders.md has the grids and numbers). Free-norm values
# (20 fixed epochs, ml-100k carve, dim 64) are kept for ``max_norm=None``.
_BALL_TAU = 0.2  # dot in the unit ball: cosine's τ (scores in [−1, 1] like cosine's)
_FREE_DOT_TAU = 40.0
_GAUSSIAN_BALL_TAU = 0.4  # −‖u−v‖² spans [−4, 0] in the unit ball: twice cosine's range, twice its τ
_GAUSSIAN_TAU = 100.0
_LAPLACIAN_TAU = 1.0
_LAPLACIAN_NORMALIZED_TAU = 0.1
_MIXTURE_BALL_TAU = 0.2
_MIXTURE_TAU = 50.0
_MIXTURE_NORMALIZED_TAU = 0.25


class BaseSimilarity:
    """Defaults of the optional parts of `Similarity`: not an inner product, not a mixture."""

    inner_product: ClassVar[bool] = False
    distance: ClassVar[bool] = False
    components: "tuple[tuple[Similarity, float], ...]" = ()
    default_temperature: float = 0.2

    def embed(self, x: Tensor) -> Tensor:
        raise ConfigError(f"{type(self).__name__} is not an inner-product kernel; it has no embedding φ")

    def distance_vectors(self, x: Tensor) -> Tensor:
        raise ConfigError(f"{type(self).__name__} is not a distance kernel")

    def score_and_slope_(self, sq: Tensor) -> tuple[Tensor, "Tensor | float"]:
        raise ConfigError(f"{type(self).__name__} is not a distance kernel")


class Dot(BaseSimilarity):
    """Inner product ``u·v`` of vectors kept in the ball of radius ``max_norm``; FAISS inner-product
    search (on the same vectors) ranks in the same order.

    Vectors longer than ``max_norm`` are scaled back onto the ball, in training and serving alike
    (max-norm regularisation): a vector's length — how sure the model is — is still learned, up to
    the radius. ``max_norm=None`` leaves the norms free; sampled softmax then grows them until the
    popular items dominate (ml-100k / ml-latest-small carves: 0.93 / 0.88 × cosine at the best τ,
    against 1.00 / 0.97 in the unit ball).

    Example:
        >>> import torch
        >>> Dot().pairwise(torch.tensor([[0.6, 0.0]]), torch.tensor([[1.0, 0.0], [3.0, 4.0]]))
        tensor([[0.6000, 0.3600]])
    """

    name: ClassVar[str] = "dot"
    faiss_metric: ClassVar[Literal["ip", "l2"]] = "ip"
    inner_product: ClassVar[bool] = True
    def __init__(self, max_norm: float | None = 1.0) -> None:
        self.max_norm = _radius(max_norm)

    @property
    def default_temperature(self) -> float:  # type: ignore[override]
        # free norms run away under a small τ (a large one only slows that down); in the ball of radius R
        # the scores are bounded by R², so cosine's τ·R² trains as well as cosine (docs/encoders.md)
        return _FREE_DOT_TAU if self.max_norm is None else _BALL_TAU * self.max_norm ** 2

    def embed(self, x: Tensor) -> Tensor:
        """The vectors whose inner product is this similarity (lets the loss fuse matmul and bias)."""
        return _ball(x, self.max_norm)

    def pairwise(self, u: Tensor, v: Tensor) -> Tensor:
        return self.embed(u) @ self.embed(v).T  # [B, M]

    def rowwise(self, u: Tensor, v: Tensor) -> Tensor:
        return torch.einsum("bd,bnd->bn", self.embed(u), self.embed(v))  # [B, n]

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        # the very map training scores through: served vectors are the trained ones by construction
        v = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
        return np.ascontiguousarray(self.embed(v).numpy(), dtype=np.float32)

    def from_index(self, values: np.ndarray) -> np.ndarray:
        return values  # FAISS inner product is the score itself

    def __repr__(self) -> str:
        return f"Dot(max_norm={self.max_norm})"


class Cosine(Dot):
    """Cosine ``u·v / (‖u‖‖v‖)``: inner product on L2-normalised vectors (so FAISS IP on them)."""

    name: ClassVar[str] = "cosine"

    default_temperature: float = 0.2

    def __init__(self) -> None:
        self.max_norm = None

    def embed(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1)

    def __repr__(self) -> str:
        return "Cosine()"


class _DistanceKernel(BaseSimilarity):
    """Shared parts of the distance kernels: a score that falls with ‖u − v‖, served by FAISS L2.

    InfoNCE puts ``s/τ`` in the softmax, so ``exp(s/τ)`` is the kernel itself: the Gaussian
    kernel exp(−‖u−v‖²/τ) has ``s = −‖u−v‖²``, the Laplacian exp(−‖u−v‖/τ) has
    ``s = −‖u−v‖`` (Kernel-InfoNCE, arXiv 2303.15103). Both decrease with the distance, so
    an exact L2 index ranks items in exactly their order. With ``normalize=True`` vectors
    are L2-normalised first; on unit vectors ‖u−v‖² = 2 − 2·cos, so retrieval then ranks
    exactly like cosine: the kernel changes training, not retrieval. ``max_norm`` keeps the
    vectors in a ball instead (longer ones are scaled back onto it, in training and serving
    alike), as `Dot` does: the Gaussian and the mixture default to the unit ball, because with
    free norms their scores grow with the squared lengths and sampled softmax runs away with
    them (0.93 × cosine at the best τ); the Laplacian's score grows only linearly and trains
    well with free norms (its default ``max_norm=None``).
    """

    base_name: ClassVar[str] = ""
    faiss_metric: ClassVar[Literal["ip", "l2"]] = "l2"
    distance: ClassVar[bool] = True

    def __init__(self, normalize: bool = False, max_norm: float | None = None) -> None:
        self.normalize = bool(normalize)
        radius = _radius(max_norm)
        if self.normalize and radius not in (None, 1.0):
            raise ConfigError(f"max_norm does not apply to {self.name}: its vectors are unit vectors (got {max_norm!r})")
        self.max_norm = None if self.normalize else radius

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"{self.base_name}-normalized" if self.normalize else self.base_name

    def _vectors(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1) if self.normalize else _ball(x, self.max_norm)

    def _from_squared(self, sq: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def distance_vectors(self, x: Tensor) -> Tensor:
        """Unit vectors, or vectors kept in the ball: the ones whose squared distances this kernel scores."""
        return self._vectors(x)

    def score_and_slope_(self, sq: Tensor) -> tuple[Tensor, "Tensor | float"]:
        """The score of squared distances ``sq`` (overwritten in place) and its slope ds/d(sq), elementwise:
        what the fused loss (`contrec.nn.losses`) needs to score and to differentiate without autograd. This
        general form differentiates `_from_squared`; the kernels below write theirs out, in place."""
        x = sq.detach().requires_grad_()
        with torch.enable_grad():
            score = self._from_squared(x)
            (slope,) = torch.autograd.grad(score.sum(), x)
        return sq.copy_(score.detach()), slope

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
        v = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
        return np.ascontiguousarray(self._vectors(v).numpy(), dtype=np.float32)  # as trained: unit or in the ball

    def from_index(self, values: np.ndarray) -> np.ndarray:
        # FAISS L2 gives squared distances (contrec's index negates them so higher is better)
        squared = torch.from_numpy(np.maximum(-np.asarray(values, dtype=np.float32), 0.0))
        return self._from_squared(squared).numpy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(normalize={self.normalize}, max_norm={self.max_norm})"


class Gaussian(_DistanceKernel):
    """Gaussian kernel: ``s(u, v) = −‖u − v‖²``, so exp(s/τ) = exp(−‖u−v‖²/τ), on vectors in the
    ball of radius ``max_norm`` (default 1; None: free norms).

    Example:
        >>> import torch
        >>> u, v = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0], [1.0, 0.0]])
        >>> Gaussian(max_norm=None).pairwise(u, v)
        tensor([[-25.,  -1.]])
        >>> Gaussian().pairwise(u, v)  # (3, 4) is scaled back onto the unit ball first
        tensor([[-1., -1.]])
    """

    base_name: ClassVar[str] = "gaussian"

    def __init__(self, normalize: bool = False, max_norm: float | None = 1.0) -> None:
        super().__init__(normalize, max_norm)

    @property
    def default_temperature(self) -> float:  # type: ignore[override]
        # on unit vectors −‖u−v‖² = 2·cos − 2: τ 0.4 is exactly cosine at τ 0.2
        if self.normalize:
            return 0.4
        return _GAUSSIAN_TAU if self.max_norm is None else _GAUSSIAN_BALL_TAU * self.max_norm ** 2

    def _from_squared(self, sq: Tensor) -> Tensor:
        return -sq

    def score_and_slope_(self, sq: Tensor) -> tuple[Tensor, "Tensor | float"]:
        return sq.neg_(), -1.0


class Laplacian(_DistanceKernel):
    """Laplacian kernel: ``s(u, v) = −‖u − v‖``, so exp(s/τ) = exp(−‖u−v‖/τ).

    A tiny constant inside the square root keeps the gradient finite where u = v. Norms are free
    by default (``max_norm=None``): the score grows only linearly with them.

    Example:
        >>> import torch
        >>> Laplacian().pairwise(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]]))
        tensor([[-5.]])
    """

    base_name: ClassVar[str] = "laplacian"

    @property
    def default_temperature(self) -> float:  # type: ignore[override]
        if self.normalize:
            return _LAPLACIAN_NORMALIZED_TAU
        return _LAPLACIAN_TAU * (1.0 if self.max_norm is None else self.max_norm)

    def _from_squared(self, sq: Tensor) -> Tensor:
        return -torch.sqrt(sq + 1e-12)

    def score_and_slope_(self, sq: Tensor) -> tuple[Tensor, "Tensor | float"]:
        distance = sq.add_(1e-12).sqrt_()
        slope = distance.reciprocal().mul_(-0.5)  # d(−√x)/dx = −1/(2√x)
        return distance.neg_(), slope


class KernelMixture(_DistanceKernel):
    """Laplacian and Gaussian kernels together, as in Kernel-InfoNCE (arXiv 2303.15103).

    The score is ``s = weight · (−‖u−v‖) + (1 − weight) · (−‖u−v‖²)``, so exp(s/τ) is the product
    of a Laplacian and a Gaussian kernel; it is trained and served like every other kernel:
    InfoNCE over s/τ, retrieval by s (the paper's other form, a weighted sum of the two
    kernels' losses at one τ, cannot suit both: alone they want τ ≈ 0.5 and τ ≈ 10). Vectors are
    kept in the unit ball by default, as the Gaussian's (``max_norm``).

    Serving: both terms of the score fall
    with the same distance, so any mixture ranks items exactly in L2 order: exact FAISS L2
    top-k *is* the mixture's top-k, with k candidates — no re-scoring pass is needed (a
    contract test checks FAISS against a brute-force ranking by this score).

    Example:
        >>> import torch
        >>> KernelMixture(weight=0.5, max_norm=None).pairwise(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]]))
        tensor([[-15.]])
    """

    base_name: ClassVar[str] = "kernel-mixture"

    def __init__(self, weight: float = 0.5, normalize: bool = False, max_norm: float | None = 1.0) -> None:
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not 0.0 <= weight <= 1.0:
            raise ConfigError(f"kernel-mixture weight must be in [0, 1] (got {weight!r})")
        super().__init__(normalize, max_norm)
        self.weight = float(weight)

    @property
    def default_temperature(self) -> float:  # type: ignore[override]
        if self.normalize:
            return _MIXTURE_NORMALIZED_TAU
        # the squared term dominates at large radii: scale like the Gaussian's (exact at the default radius 1)
        return _MIXTURE_TAU if self.max_norm is None else _MIXTURE_BALL_TAU * self.max_norm ** 2

    def _from_squared(self, sq: Tensor) -> Tensor:
        return -self.weight * torch.sqrt(sq + 1e-12) - (1.0 - self.weight) * sq

    def score_and_slope_(self, sq: Tensor) -> tuple[Tensor, "Tensor | float"]:
        distance = (sq + 1e-12).sqrt_()
        slope = distance.reciprocal().mul_(-0.5 * self.weight).sub_(1.0 - self.weight)
        return sq.mul_(-(1.0 - self.weight)).sub_(distance, alpha=self.weight), slope

    def __repr__(self) -> str:
        return f"KernelMixture(weight={self.weight}, normalize={self.normalize}, max_norm={self.max_norm})"


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
        KernelMixture(weight=0.3, normalize=False, max_norm=1.0)
    """
    if not isinstance(name, str):
        if isinstance(name, Similarity):
            return name
        raise ConfigError(f"similarity must be a name or a Similarity (got {type(name).__name__})")
    return SIMILARITIES.create(name, **params)
