"""Sampled-softmax InfoNCE on embeddings (and BPR for reference).

Convention (stated once, used everywhere): each row b has a user vector ``u_b`` and a list
of candidate item vectors; column ``labels[b]`` holds its positive. Every candidate j —
the positive included — gets the logit

    l(b, j) = s(u_b, v_j) / τ − log q(j)

where q(j) is how likely the candidates' source was to propose j (for a candidate list
built from several sources, the expected number of times j appears in it). The loss is
``−log softmax(l(b, ·))[labels[b]]`` averaged over rows. Masked candidates (accidental
hits: known positives of row b's user other than its own positive) are removed from the
softmax. scale = 1/temperature.

With every item as a candidate exactly once and a uniform q, ``log q`` is the same
constant for all candidates and cancels, so the loss is the full-softmax cross-entropy.

References:
    Jean et al. 2015, "On Using Very Large Target Vocabulary for Neural Machine Translation"
    (sampled softmax); Yi et al. 2019, "Sampling-Bias-Corrected Neural Modeling for Large
    Corpus Item Recommendations" (logQ correction of in-batch candidates); Oord et al. 2018
    (InfoNCE).

Relations:
    With ``log_q=None`` and no mask this is the loss sentence-transformers calls
    MultipleNegativesRankingLoss (in-batch softmax) when candidates are the batch's items.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from contrec.nn.similarity import Similarity

__all__ = ["info_nce", "info_nce_logits", "weighted_info_nce", "bpr_loss", "pairwise_loss", "OBJECTIVES",
           "PRECISIONS"]

OBJECTIVES = ("infonce", "bpr", "triplet")
# The precision of the score matmuls: bfloat16 operands (float32 accumulation, float32 logits from there on)
# multiply 2.35× faster than float32 on an AVX512-BF16 CPU (a step's shapes, docs/performance.md); GPUs with
# bfloat16 units should gain too (not measured here). Inner-product kernels only.
PRECISIONS = ("float32", "bfloat16")
_MASKED = 1e30  # subtracted from a masked candidate's logit: below any real logit by far more than the clamp's 60


def _low(x: Tensor) -> Tensor:
    return x.to(torch.bfloat16)


def _low_scores(u: Tensor, v: Tensor, candidate_index: Tensor | None) -> Tensor:
    """Inner products of already-embedded ``u`` ``[B, d]`` and ``v`` (``[M, d]``, ``[B, n, d]`` or distinct
    vectors picked by ``candidate_index``) from bfloat16 operands, as float32 ``[B, M]``; autograd runs the
    backward matmuls in bfloat16 too and hands float32 gradients to the towers."""
    if candidate_index is not None:
        return (_low(u) @ _low(v).T).float().gather(1, candidate_index)
    if v.dim() == 2:
        return (_low(u) @ _low(v).T).float()
    return torch.einsum("bd,bnd->bn", _low(u), _low(v)).float()


def info_nce_logits(user: Tensor, candidates: Tensor, labels: Tensor, *, similarity: Similarity,
                    temperature: "float | Tensor", log_q: Tensor | None = None, mask: Tensor | None = None,
                    candidate_index: Tensor | None = None, precision: str = "float32",
                    positive_offset: Tensor | None = None) -> Tensor:
    """The corrected, masked logits ``[B, M]`` of `info_nce` (for inspection and tests)."""
    B = user.shape[0]
    M = candidates.shape[-2] if candidate_index is None else candidate_index.shape[1]
    # Everything subtracted from s/τ goes into one bias without gradient: log q, and +inf for
    # masked candidates (a row's own positive is never masked).
    bias = None if log_q is None else log_q.expand(B, M)  # [B, M]
    if mask is not None:
        drop = mask.clone()
        drop[torch.arange(B, device=drop.device), labels] = False
        bias = (bias if bias is not None else user.new_zeros(B, M)).masked_fill(drop, float("inf"))  # [B, M]
    if positive_offset is not None:  # a merged column stands for its copies; the positive for one
        rows = torch.arange(B, device=user.device)
        bias = (bias if bias is not None else user.new_zeros(B, M)).index_put((rows, labels), positive_offset,
                                                                             accumulate=True)
    if precision == "bfloat16" and similarity.inner_product:
        logits = _low_scores(similarity.embed(user), similarity.embed(candidates), candidate_index) / temperature
        return logits if bias is None else logits - bias
    if candidate_index is not None:
        # Per-row candidates as indices into a set of distinct vectors: one [B, U] matmul, then a
        # gather — far lighter than materialising [B, M, d] candidate vectors.
        scores = similarity.pairwise(user, candidates).gather(1, candidate_index)  # [B, M]
        logits = scores / temperature
        return logits if bias is None else logits - bias
    if candidates.dim() == 2 and similarity.inner_product:
        # Inner-product kernels: s/τ − bias in one fused addmm, so backward is two matmuls.
        u, v = similarity.embed(user), similarity.embed(candidates)  # [B, d], [M, d]
        if isinstance(temperature, Tensor):  # a learned τ: its gradient flows through the division
            logits = (u @ v.T) / temperature  # [B, M]
            return logits if bias is None else logits - bias
        if bias is None:
            return (u @ v.T) * (1.0 / temperature)  # [B, M]
        return torch.addmm(-bias, u, v.T, alpha=1.0 / temperature)  # [B, M]
    scores = similarity.pairwise(user, candidates) if candidates.dim() == 2 else \
        similarity.rowwise(user, candidates)  # [B, M]
    logits = scores / temperature  # [B, M]
    return logits if bias is None else logits - bias


def info_nce(user: Tensor, candidates: Tensor, labels: Tensor, *, similarity: Similarity, temperature: "float | Tensor",
             log_q: Tensor | None = None, mask: Tensor | None = None, debias_prior: float = 0.0,
             hardness: float = 0.0, candidate_index: Tensor | None = None, precision: str = "float32",
             positive_offset: Tensor | None = None) -> Tensor:
    """Mean sampled-softmax InfoNCE loss over a batch.

    Args:
        user: ``[B, d]`` user vectors.
        candidates: ``[M, d]`` candidate item vectors shared by all rows, or ``[B, M, d]``.
        labels: ``[B]`` column of each row's positive among the candidates.
        similarity: the kernel s(u, v).
        temperature: τ > 0; logits are s/τ.
        log_q: ``[M]`` or ``[B, M]`` log proposal probability (or expected count) of each
            candidate, subtracted from its logit; None for no correction.
        mask: ``[B, M]`` bool, True removes a candidate from row b's softmax (accidental hits).
        debias_prior: τ⁺ of the debiased contrastive loss (Chuang et al. 2020), the prior
            probability that a negative is in fact a positive; 0 = plain InfoNCE.
        hardness: β of hardness-weighted negatives (Robinson et al. 2021); 0 = plain InfoNCE.
        candidate_index: ``[B, M]``; when given, ``candidates`` is ``[U, d]`` distinct vectors
            and row b's m-th candidate is ``candidates[candidate_index[b, m]]``.
        precision: ``"bfloat16"``: the score matmuls (forward and backward) of an inner-product
            kernel take bfloat16 operands; logits, softmax and gradients stay float32.
        positive_offset: ``[B]``, for merged candidate lists (`contrec.training.candidates`):
            subtracted from row b's positive logit only. A column that stands for m copies of an
            item carries ``log_q − log m``; the positive is one copy (the others are accidental
            hits, masked), so its offset is ``log m``.

    Returns:
        scalar loss. With ``debias_prior = hardness = 0`` this is exactly cross-entropy over
        the corrected logits.

    Example (2 users, 3 shared candidates, dot product, τ = 1; row 0's positive is column 0,
    row 1's is column 2):

        >>> u = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> v = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
        >>> from contrec.nn.similarity import Dot
        >>> loss = info_nce(u, v, torch.tensor([0, 2]), similarity=Dot(max_norm=None), temperature=1.0)
        >>> # row 0 logits (1, 0, 0): −log(e/(e+2)); row 1 logits (0, 0, 2): −log(e²/(e²+2))
        >>> round(float(loss), 4)
        0.3955
    """
    if positive_offset is not None and mask is None:
        raise ValueError("positive_offset needs the mask that removes the positive's other copies")
    if similarity.components:
        # a kernel mixture is trained as the weighted sum of its kernels' losses (Kernel-InfoNCE)
        return sum(weight * info_nce(user, candidates, labels, similarity=kernel, temperature=temperature,
                                     log_q=log_q, mask=mask, debias_prior=debias_prior, hardness=hardness,
                                     candidate_index=candidate_index, precision=precision,
                                     positive_offset=positive_offset)
                   for kernel, weight in similarity.components if weight > 0)
    if debias_prior == 0.0 and hardness == 0.0:
        if similarity.inner_product and candidate_index is None and candidates.dim() == 2 and \
                not isinstance(temperature, Tensor):  # the fused kernel takes a fixed scale
            # inner-product kernel over shared candidates: the fused path (same value, fewer passes)
            return _SharedSoftmaxXent.apply(similarity.embed(user), similarity.embed(candidates), labels,
                                            1.0 / temperature, log_q, mask, precision == "bfloat16",
                                            positive_offset)
        if similarity.distance and candidate_index is None and candidates.dim() == 2 and \
                not isinstance(temperature, Tensor):  # a distance kernel over shared candidates: fused too
            return _SharedDistanceXent.apply(similarity.distance_vectors(user), similarity.distance_vectors(candidates),
                                             labels, 1.0 / temperature, log_q, mask, similarity, positive_offset)
        logits = info_nce_logits(user, candidates, labels, similarity=similarity, temperature=temperature,
                                 log_q=log_q, mask=mask, candidate_index=candidate_index, precision=precision,
                                 positive_offset=positive_offset)
        return F.cross_entropy(logits, labels)
    if positive_offset is not None:
        raise ValueError("merged candidates count each column once; debias_prior and hardness need them one by one")
    raw = info_nce_logits(user, candidates, labels, similarity=similarity, temperature=temperature,
                          candidate_index=candidate_index, precision=precision)  # s/τ
    logits = info_nce_logits(user, candidates, labels, similarity=similarity, temperature=temperature,
                             log_q=log_q, mask=mask, candidate_index=candidate_index, precision=precision)
    return weighted_info_nce(logits, raw, labels, temperature=temperature, debias_prior=debias_prior,
                             hardness=hardness)


def _softmax_in_place(logits: Tensor, labels: Tensor, mask: Tensor | None, positive_offset: Tensor | None
                      ) -> tuple[Tensor, Tensor, Tensor]:
    """Turn corrected ``logits`` ``[B, M]`` into unnormalised softmax weights in place; returns them, their row
    sums and the mean loss. Shared by the fused losses below."""
    target = labels[:, None]
    picked = logits.gather(1, target)  # [B, 1]: the positive is never masked
    if positive_offset is not None:  # its merged column stands for m copies; the positive is one
        picked.sub_(positive_offset[:, None])
    if mask is not None:
        # −10³⁰ for a masked candidate, not −inf: a subtraction of the mask's bytes streams at memory speed,
        # where masked_fill_ took 8× as long (3.1 vs 0.4 ms for [1024, 2048] on one thread) — and after
        # the clamp below both end as the same e^−60 weight, so the result is identical.
        logits.sub_(mask.view(torch.uint8), alpha=_MASKED)
        logits.scatter_(1, target, picked)
    top = logits.amax(dim=1, keepdim=True)  # [B, 1], finite: the positive is never masked
    # Unnormalised softmax in place (one exp sweep, not logsumexp's two). The clamp keeps exp on
    # its fast path: masked (−inf) and far-below-max logits take a scalar slow path on CPU that
    # costs 3–10x a normal sweep. e^−60 ≈ 1e−26 of the max term is below float32 resolution of
    # the sum, so masked candidates still leave the softmax exactly as far as float32 can tell,
    # and their gradient stays a normal (non-denormal) float.
    weights = logits.sub_(top).clamp_(min=-60.0).exp_()
    total = weights.sum(dim=1, keepdim=True)  # [B, 1]
    return weights, total, (top + total.log() - picked).mean()


def _score_gradient_in_place(weights: Tensor, total: Tensor, labels: Tensor, scale: Tensor) -> Tensor:
    """d loss / d (scores) = ``scale`` · (softmax − one-hot), built in the softmax buffer in one sweep."""
    weights.mul_(scale / total)
    weights[torch.arange(weights.shape[0], device=weights.device), labels] -= scale
    return weights


class _SharedSoftmaxXent(torch.autograd.Function):
    """Mean cross-entropy of ``logits = α·u vᵀ − log q`` (masked) over shared candidates, fused.

    Equal to ``F.cross_entropy(info_nce_logits(...), labels)`` for inner-product kernels,
    but the ``[B, M]`` logits buffer is written once, turned into the (unnormalised) softmax in
    place, and reused as the gradient in backward — autograd's unfused chain (bias, masked copy,
    log-softmax, its gradient, the mask's gradient) allocates and sweeps four more
    ``[B, M]`` tensors, which on a CPU costs as much as the matmuls themselves.
    """

    @staticmethod
    def forward(ctx: "torch.autograd.function.FunctionCtx", u: Tensor, v: Tensor, labels: Tensor, alpha: float,
                log_q: Tensor | None, mask: Tensor | None, low: bool = False,
                positive_offset: Tensor | None = None) -> Tensor:
        if low:  # bfloat16 operands; the [B, M] product comes back as float32 before anything else touches it
            logits = torch.mm(_low(u), _low(v).T).float().mul_(alpha)  # [B, M]
            if log_q is not None:
                logits.sub_(log_q)
        elif log_q is None:
            logits = torch.mm(u, v.T).mul_(alpha)  # [B, M]
        else:
            logits = torch.addmm(-log_q, u, v.T, alpha=alpha)  # [B, M]
        weights, total, loss = _softmax_in_place(logits, labels, mask, positive_offset)
        ctx.save_for_backward(u, v, weights, total, labels)
        ctx.alpha, ctx.low = alpha, low
        return loss

    @staticmethod
    def backward(ctx: "torch.autograd.function.FunctionCtx", grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        # autograd's version check refuses a second backward: the buffer below is overwritten
        u, v, probs, total, labels = ctx.saved_tensors
        probs = _score_gradient_in_place(probs, total, labels, grad * (ctx.alpha / u.shape[0]))
        if ctx.low:
            probs, u, v = _low(probs), _low(u), _low(v)
        grad_u = torch.mm(probs, v).float() if ctx.needs_input_grad[0] else None  # [B, d]
        grad_v = torch.mm(probs.T, u).float() if ctx.needs_input_grad[1] else None  # [M, d]
        return grad_u, grad_v, None, None, None, None, None, None


class _SharedDistanceXent(torch.autograd.Function):
    """The same fused cross-entropy for the distance kernels: ``logits = α·f(‖u − v‖²) − log q``.

    The squared distances come from one matmul (‖u‖² + ‖v‖² − 2 u·vᵀ), the kernel turns them into its
    score and slope f′ in place (`score_and_slope_`), and the backward is two matmuls of W = ∂loss/∂s ⊙ f′:
    ∂/∂u_b = 2 u_b Σ_j W_bj − 2 (W v)_b, ∂/∂v_j = 2 v_j Σ_b W_bj − 2 (Wᵀ u)_j. Through autograd the same
    loss swept the ``[B, M]`` scores a dozen times and met −∞ masks in its softmax (2–3 × the epoch time).
    """

    @staticmethod
    def forward(ctx: "torch.autograd.function.FunctionCtx", u: Tensor, v: Tensor, labels: Tensor, alpha: float,
                log_q: Tensor | None, mask: Tensor | None, kernel: Similarity,
                positive_offset: Tensor | None = None) -> Tensor:
        sq = torch.mm(u, v.T).mul_(-2.0)  # [B, M]
        sq.add_((u * u).sum(1, keepdim=True)).add_((v * v).sum(1)).clamp_(min=0.0)
        logits, slope = kernel.score_and_slope_(sq)
        logits.mul_(alpha)
        if log_q is not None:
            logits.sub_(log_q)
        weights, total, loss = _softmax_in_place(logits, labels, mask, positive_offset)
        ctx.save_for_backward(u, v, weights, total, labels, *([slope] if isinstance(slope, Tensor) else []))
        ctx.alpha, ctx.slope = alpha, None if isinstance(slope, Tensor) else float(slope)
        return loss

    @staticmethod
    def backward(ctx: "torch.autograd.function.FunctionCtx", grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        u, v, probs, total, labels, *slope = ctx.saved_tensors
        w = _score_gradient_in_place(probs, total, labels, grad * (ctx.alpha / u.shape[0]))
        w = w.mul_(slope[0]) if slope else w.mul_(ctx.slope)  # ∂loss/∂(‖u − v‖²)
        grad_u = (u * w.sum(1, keepdim=True) - torch.mm(w, v)).mul_(2.0) if ctx.needs_input_grad[0] else None
        grad_v = (v * w.sum(0)[:, None] - torch.mm(w.T, u)).mul_(2.0) if ctx.needs_input_grad[1] else None
        return grad_u, grad_v, None, None, None, None, None, None


def weighted_info_nce(logits: Tensor, raw: Tensor, labels: Tensor, *, temperature: "float | Tensor",
                      debias_prior: float = 0.0, hardness: float = 0.0) -> Tensor:
    """InfoNCE with a debiased and/or hardness-weighted negative term.

    With l⁺ the positive's corrected logit, l_j the negatives' (−inf = masked), N the number
    of unmasked negatives and r_j = s_j/τ their raw scores:

        w_j    = exp(β · r_j)                              (hardness weights; β = 0 → 1)
        neg    = N · Σ_j w_j e^{l_j} / Σ_j w_j              (Robinson et al. 2021, eq. 4)
        Ng     = max((neg − N τ⁺ e^{l⁺}) / (1 − τ⁺), N e^{−1/τ})   (Chuang et al. 2020, eq. 7)
        loss_b = −l⁺ + log(e^{l⁺} + Ng)

    The lower bound N·e^{−1/τ} is the paper's: the smallest value e^{s/τ} takes for unit
    vectors. With β = 0 and τ⁺ = 0 the loss is the plain cross-entropy whenever the bound
    does not bind.
    """
    if not 0.0 <= debias_prior < 1.0:
        raise ValueError(f"debias_prior must be in [0, 1) (got {debias_prior})")
    B = logits.shape[0]
    rows = torch.arange(B, device=logits.device)
    negative = torch.isfinite(logits)  # [B, M]
    negative[rows, labels] = False
    pos = logits[rows, labels]  # [B]
    shift = torch.maximum(logits.masked_fill(~negative, -math.inf).amax(1), pos).detach()  # [B] for stability
    e_neg = torch.exp(logits - shift[:, None]).masked_fill(~negative, 0.0)  # [B, M]
    n_neg = negative.sum(1).clamp(min=1).to(logits.dtype)  # [B]
    if hardness != 0.0:
        scaled = (hardness * raw).masked_fill(~negative, -math.inf)
        w = torch.softmax(scaled, dim=1)  # [B, M] w_j / Σ w_j
        neg = n_neg * (w * e_neg).sum(1)
    else:
        neg = e_neg.sum(1)
    e_pos = torch.exp(pos - shift)
    if debias_prior > 0.0:
        floor = n_neg * torch.exp(-1.0 / temperature - shift)
        neg = torch.maximum((neg - n_neg * debias_prior * e_pos) / (1.0 - debias_prior), floor)
    return (-(pos - shift) + torch.log(e_pos + neg)).mean()


def bpr_loss(positive_scores: Tensor, negative_scores: Tensor) -> Tensor:
    """Bayesian personalised ranking: mean ``−log σ(s⁺ − s⁻)``; scores ``[B]`` and ``[B]`` or ``[B, n]``."""
    if negative_scores.dim() == 2:
        positive_scores = positive_scores[:, None]
    return -F.logsigmoid(positive_scores - negative_scores).mean()


def pairwise_loss(user: Tensor, candidates: Tensor, labels: Tensor, *, similarity: Similarity, temperature: "float | Tensor",
                  objective: str = "bpr", margin: float = 0.2, mask: Tensor | None = None,
                  candidate_index: Tensor | None = None, precision: str = "float32") -> Tensor:
    """A pairwise loss over the same candidates InfoNCE would see: the positive against each negative.

    ``bpr``: mean over (row, unmasked negative) of ``−log σ((s⁺ − s⁻)/τ)``;
    ``triplet``: mean of ``max(0, margin − s⁺ + s⁻)``. There is no partition function, so
    there is nothing for log q to correct: the sampler's bias stays in these losses (which
    is part of what the comparison measures). Masked candidates (accidental hits) are left out.

    Example:
        >>> from contrec.nn.similarity import Dot
        >>> u, v = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> round(float(pairwise_loss(u, v, torch.tensor([0]), similarity=Dot(), temperature=1.0,
        ...                           objective="triplet", margin=1.5)), 4)
        0.5
    """
    if objective not in ("bpr", "triplet"):
        raise ValueError(f"objective must be 'bpr' or 'triplet' (got {objective!r})")
    if similarity.components:
        return sum(weight * pairwise_loss(user, candidates, labels, similarity=kernel, temperature=temperature,
                                          objective=objective, margin=margin, mask=mask,
                                          candidate_index=candidate_index, precision=precision)
                   for kernel, weight in similarity.components if weight > 0)
    scores = info_nce_logits(user, candidates, labels, similarity=similarity, temperature=1.0,
                             candidate_index=candidate_index, precision=precision)  # [B, M] raw s
    B = scores.shape[0]
    rows = torch.arange(B, device=scores.device)
    negative = torch.ones_like(scores, dtype=torch.bool) if mask is None else ~mask
    negative[rows, labels] = False
    diff = scores[rows, labels][:, None] - scores  # [B, M] s⁺ − s⁻
    per_pair = -F.logsigmoid(diff / temperature) if objective == "bpr" else F.relu(margin - diff)
    return per_pair[negative].sum() / negative.sum().clamp(min=1)
