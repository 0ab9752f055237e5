"""Data-parallel training over several processes: `torch.distributed` with DDP, launched by torchrun.

contrec does not run its own distributed system. Each process ("rank") is started by
PyTorch's launcher (``torchrun``, or ``contrec fit --distributed``, which calls it), holds
the whole interaction log, and trains on its shard of every epoch's shuffle; the towers
are wrapped in `torch.nn.parallel.DistributedDataParallel`, which averages gradients, so
every rank holds the same model after every step. Backend: gloo (contrec trains on the
CPU; NCCL would need the towers, samplers and lookups on GPUs, which contrec does not do).

Negatives are shared across ranks: every rank's batch item vectors (positives and shared
sampled draws) are all-gathered *with autograd* (`gather_vectors`), so each rank's softmax sees all W·B in-batch candidates and W·n draws, and the gradient
of a candidate's vector flows back to the rank that encoded it. With DDP's averaging the
step is exactly the gradient of the mean loss over all W·B rows (a test checks it against
one process computing that loss). See `contrec.training` for log q and masking across ranks.

Example (two processes on one machine)::

    torchrun --standalone --nproc-per-node 2 -m contrec fit ratings.csv -o model.contrec
    contrec fit ratings.csv -o model.contrec --distributed --nproc-per-node 2   # the same

From Python, under torchrun::

    >>> from contrec import distributed                 # doctest: +SKIP
    >>> world = distributed.init()  # RANK, WORLD_SIZE from torchrun   # doctest: +SKIP
    >>> model = ContrastiveRecommender().fit(train)  # this rank's shard  # doctest: +SKIP
    >>> if world.main: model.save("model.contrec")       # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from contrec.errors import ConfigError

__all__ = ["World", "init", "current", "close", "launched_by_torchrun", "gather", "gather_vectors",
           "all_sum", "wrap"]

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int
    size: int
    backend: str

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes models, checkpoints and logs."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """Whether this process was started by torchrun (its environment names a rank and a world)."""
    return all(v in os.environ for v in _TORCHRUN_VARS)


def init(backend: str | None = None, timeout_s: float = 600.0) -> World:
    """Join the process group torchrun set up (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR/PORT``).

    ``backend``: ``"gloo"``, the CPU backend (contrec trains on the CPU; NCCL, which needs the
    towers on GPUs, is refused). Calling it again returns the current world.
    """
    if not dist.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed; distributed training needs it")
    if dist.is_initialized():
        return _joined()
    if not launched_by_torchrun():
        missing = [v for v in _TORCHRUN_VARS if v not in os.environ]
        raise ConfigError(f"not started by torchrun ({', '.join(missing)} not set); launch with "
                          "`torchrun --nproc-per-node N -m contrec fit ...` or `contrec fit ... --distributed`")
    backend = backend or "gloo"
    if backend == "nccl":
        raise ConfigError("contrec trains on the CPU, and NCCL only moves CUDA tensors; use backend='gloo'")
    if backend != "gloo":
        raise ConfigError(f"backend must be 'gloo' (got {backend!r})")
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return _joined()


def _joined() -> World:
    return World(dist.get_rank(), dist.get_world_size(), dist.get_backend())


def current() -> World | None:
    """The world this process trains in, or None when it trains alone (no group, or a group of one)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return _joined()


def close(wait: bool = True) -> None:
    """Leave the process group (every rank calls it once training and saving are done).

    ``wait``: meet the other ranks first, so none tears down its gloo threads while another
    still talks to it (a rank that left early could abort with "terminate called without an
    active exception"); False after an error, when the others may never arrive.
    """
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def gather(x: Tensor) -> Tensor:
    """``[W, *x.shape]``: every rank's ``x`` (same shape and dtype on all ranks), no gradient."""
    out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.stack(out)


def gather_vectors(x: Tensor) -> Tensor:
    """``[W, *x.shape]``: every rank's ``x``, differentiable.

    Backward sends each rank the sum of all ranks' gradients for its own slice, so the
    vectors a rank encoded get the gradient of every rank's loss that used them.
    """
    return _GatherWithGrad.apply(x.contiguous())


class _GatherWithGrad(torch.autograd.Function):
    # torch.distributed.nn.functional.all_gather does this too but is deprecated in favour of a
    # private module; this is the same operation on the public collectives. Backward is an
    # all-to-all (every rank sends each slice's gradient to its owner, which sums them): half
    # the traffic of an all-reduce, and gloo has no fast reduce-scatter (measured: 3.1 ms vs
    # 3.8 ms all-reduce vs 5.1 ms reduce-scatter for 2 × [2048, 64] on loopback).

    @staticmethod
    def forward(ctx: "torch.autograd.function.FunctionCtx", x: Tensor) -> Tensor:
        return gather(x)

    @staticmethod
    def backward(ctx: "torch.autograd.function.FunctionCtx", grad: Tensor) -> Tensor:  # type: ignore[override]
        slices = [g.contiguous() for g in grad.unbind(0)]  # d(this rank's loss)/d(each rank's slice)
        mine = [torch.empty_like(slices[0]) for _ in slices]
        dist.all_to_all(mine, slices)  # every rank's gradient for this rank's slice
        return torch.stack(mine).sum(0)


def all_sum(values: list[float]) -> list[float]:
    """Sum of each value over the ranks (float64)."""
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def wrap(module: nn.Module) -> nn.Module:
    """``module`` under DistributedDataParallel: rank 0's parameters are broadcast now, gradients averaged in backward."""
    return nn.parallel.DistributedDataParallel(module)
