"""Training checkpoints: everything needed to continue a fit exactly where it stopped.

A checkpoint holds the towers, the optimizer's moments, the sampler's state (a hard
sampler's candidate table), every random generator (the trainer's, the encoders' dropout
noise, torch's global one), the position in the epoch (the epoch's shuffling is replayed
from the generator state saved at its start), the partial epoch's statistics, the
history and the best epoch so far. Resuming from it and training on gives the same model,
bit for bit on CPU with the same thread count, as a run that was never interrupted.

The file is a model-format artifact (``.npz`` of plain arrays + JSON header, no pickle),
written atomically: a crash or a kill mid-write leaves the previous checkpoint intact.

Example:
    >>> model = ContrastiveRecommender(epochs=20)                                 # doctest: +SKIP
    >>> model.fit(train, checkpoint="run.ckpt", checkpoint_every=500)             # doctest: +SKIP
    >>> # … the process is killed; later, the same call with resume= continues it:
    >>> model.fit(train, checkpoint="run.ckpt", checkpoint_every=500, resume="run.ckpt")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from contrec.errors import ConfigError, ModelFileError
from contrec.runtime.artifact import read_artifact, write_artifact
from contrec.samplers.base import NegativeSampler
from contrec.training.candidates import StepStats
from contrec.training.config import Checkpointing
from contrec.training.optimizer import Optimizer

__all__ = ["CHECKPOINT_KIND", "save_checkpoint", "load_checkpoint", "module_arrays", "load_module_arrays",
           "optimizer_arrays", "load_optimizer_arrays", "generators_of", "generator_arrays", "load_generator_arrays",
           "RunState", "save_run", "resume_run"]

CHECKPOINT_KIND = "training-checkpoint"


def save_checkpoint(path: "str | os.PathLike[str]", arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (a temporary file renamed into place).

    A writer killed mid-write leaves its temporary file (``.<name>.*.tmp``) beside the
    checkpoint, never a damaged checkpoint; the next write removes such leftovers.
    """
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    return write_artifact(path, arrays, {"kind": CHECKPOINT_KIND, **meta}, compress=False)  # every epoch end


def load_checkpoint(path: "str | os.PathLike[str]") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint; a missing, damaged or model (not checkpoint) file is one-line `ModelFileError`."""
    arrays, meta = read_artifact(path, what="checkpoint")
    if meta.get("kind") != CHECKPOINT_KIND:
        raise ModelFileError(f"{path}: a contrec model file, not a training checkpoint (pass the file written by "
                             "checkpoint=… / --checkpoint)")
    return arrays, meta


# ---------------------------------------------------------------- modules
def module_arrays(prefix: str, module: nn.Module) -> dict[str, np.ndarray]:
    """``state_dict`` as plain arrays under ``prefix.``."""
    return {f"{prefix}.{name}": t.detach().cpu().numpy().copy() for name, t in module.state_dict().items()}


def load_module_arrays(prefix: str, module: nn.Module, arrays: dict[str, np.ndarray], where: str) -> None:
    state = {name[len(prefix) + 1:]: torch.from_numpy(np.array(a)) for name, a in arrays.items()
             if name.startswith(prefix + ".")}
    expected = module.state_dict()
    if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in expected):
        raise ConfigError(f"{where}: the checkpoint's {prefix} tower does not match this model's settings "
                          "(dim, towers or data changed since it was written)")
    module.load_state_dict(state)


# ---------------------------------------------------------------- optimizers
def optimizer_arrays(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """An optimizer's ``state_dict``: tensors as arrays, the rest (hyper-parameters) as JSON."""
    state = optimizer.state_dict()
    arrays: dict[str, np.ndarray] = {}
    layout: dict[str, list[str]] = {}
    scalars: dict[str, dict[str, Any]] = {}  # Python numbers stay Python numbers (SparseAdam's int step)
    for pid, slots in state["state"].items():
        layout[str(pid)] = []
        for slot, value in slots.items():
            if isinstance(value, torch.Tensor):
                arrays[f"{prefix}.{pid}.{slot}"] = value.detach().cpu().numpy().copy()
                layout[str(pid)].append(slot)
            else:
                scalars.setdefault(str(pid), {})[slot] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]]
    return arrays, {"state": layout, "scalars": scalars, "param_groups": groups}


def load_optimizer_arrays(prefix: str, optimizer: torch.optim.Optimizer, arrays: dict[str, np.ndarray],
                          meta: dict[str, Any]) -> None:
    state = {int(pid): {slot: torch.from_numpy(np.array(arrays[f"{prefix}.{pid}.{slot}"])) for slot in slots}
             for pid, slots in meta["state"].items()}
    for pid, values in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# ---------------------------------------------------------------- random generators
def generators_of(*modules: nn.Module) -> dict[str, torch.Generator]:
    """The private generators of the modules' submodules (the encoders' dropout noise), by path."""
    found: dict[str, torch.Generator] = {}
    for k, module in enumerate(modules):
        for name, sub in module.named_modules():
            for attr, value in vars(sub).items():
                if isinstance(value, torch.Generator):
                    found[f"{k}.{name}.{attr}"] = value
    return found


def generator_arrays(generators: dict[str, torch.Generator]) -> dict[str, np.ndarray]:
    out = {f"rng.{name}": g.get_state().numpy().copy() for name, g in generators.items()}
    out["rng.torch-global"] = torch.get_rng_state().numpy().copy()
    return out


def load_generator_arrays(generators: dict[str, torch.Generator], arrays: dict[str, np.ndarray], where: str) -> None:
    for name, g in generators.items():
        key = f"rng.{name}"
        if key not in arrays:
            raise ConfigError(f"{where}: the checkpoint has no state for the random generator {name!r} "
                              "(the model's towers changed since it was written)")
        g.set_state(torch.from_numpy(np.array(arrays[key])))
    torch.set_rng_state(torch.from_numpy(np.array(arrays["rng.torch-global"])))


@dataclass
class RunState:
    """Where a run stands between two steps: what a checkpoint stores."""

    step: int = 0
    epoch: int = 0  # the epoch under way (or the next one when batch = 0)
    batch: int = 0  # next batch of that epoch
    done: bool = False  # stopped early (patience); a run that used up its epochs goes on if given more
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float = -math.inf
    best_epoch: int = -1
    best_state: tuple[dict[str, Tensor], dict[str, Tensor]] | None = None
    stats: StepStats = field(default_factory=StepStats)
    epoch_rng: Tensor | None = None  # the trainer's generator at the start of the epoch (replays its shuffle)
    epoch_seconds: float = 0.0
    elapsed: float = 0.0


def save_run(ckpt: Checkpointing, run: RunState, user_encoder: nn.Module, item_encoder: nn.Module,
          optimizer: Optimizer, sampler: NegativeSampler, generators: dict[str, torch.Generator],
          ranks: tuple[np.ndarray, np.ndarray] | None = None, temperature: nn.Module | None = None) -> None:
    """Write ``run`` with the towers, optimizer, sampler state and generators to ``ckpt.path``
    (``ranks``: every process's draws generator and partial-epoch counts, from a DDP run)."""
    arrays = {**module_arrays("user", user_encoder), **module_arrays("item", item_encoder),
              **(module_arrays("temperature", temperature) if temperature is not None else {}),
              **generator_arrays(generators), "epoch_rng": run.epoch_rng.numpy().copy()}
    if ranks is not None:  # [W, ...] per-rank draws generators and partial-epoch counts
        arrays["ranks.draws_rng"], arrays["ranks.stats"] = ranks
    optimizers = []
    for k, opt in enumerate(optimizer.optimizers):
        opt_arrays, opt_meta = optimizer_arrays(f"opt{k}", opt)
        arrays.update(opt_arrays)
        optimizers.append(opt_meta)
    arrays.update({f"sampler.{k}": v for k, v in sampler.state().items()})
    if run.best_state is not None:
        for prefix, tower in zip(("best.user", "best.item"), run.best_state):
            arrays.update({f"{prefix}.{k}": v.detach().cpu().numpy().copy() for k, v in tower.items()})
    meta = {"identity": ckpt.identity, "step": run.step, "epoch": run.epoch, "batch": run.batch, "done": run.done,
            "history": json.loads(json.dumps(run.history, default=float)),
            "best_score": run.best_score if math.isfinite(run.best_score) else None, "best_epoch": run.best_epoch,
            "stats": asdict(run.stats), "epoch_seconds": run.epoch_seconds, "elapsed": run.elapsed,
            "optimizers": optimizers}
    save_checkpoint(ckpt.path, arrays, meta)


def resume_run(ckpt: Checkpointing, user_encoder: nn.Module, item_encoder: nn.Module, optimizer: Optimizer,
            sampler: NegativeSampler, generators: dict[str, torch.Generator], draws: torch.Generator,
            rank: int, temperature: nn.Module | None = None) -> RunState:
    """Load ``ckpt.resume`` into the towers, optimizer, sampler and generators; returns where the run stood."""
    where = str(ckpt.resume)
    arrays, meta = load_checkpoint(where)
    theirs = meta.get("identity", {})
    differ = sorted(k for k in set(theirs) | set(ckpt.identity) if theirs.get(k) != ckpt.identity.get(k))
    if differ:
        raise ConfigError(f"{where}: the checkpoint was written for other settings or data ({', '.join(differ)} "
                          "differ); resume with the same data and settings, or start afresh")
    load_module_arrays("user", user_encoder, arrays, where)
    load_module_arrays("item", item_encoder, arrays, where)
    if temperature is not None:
        load_module_arrays("temperature", temperature, arrays, where)
    if len(meta["optimizers"]) != len(optimizer.optimizers):
        raise ConfigError(f"{where}: the checkpoint's optimizer does not match this model's")
    for k, (opt, opt_meta) in enumerate(zip(optimizer.optimizers, meta["optimizers"])):
        load_optimizer_arrays(f"opt{k}", opt, arrays, opt_meta)
    sampler.load_state({k[len("sampler."):]: v for k, v in arrays.items() if k.startswith("sampler.")})
    load_generator_arrays(generators, arrays, where)
    best_state = None
    if any(k.startswith("best.user.") for k in arrays):
        best_state = tuple({k[len(prefix) + 1:]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
                            if k.startswith(prefix + ".")} for prefix in ("best.user", "best.item"))
    best_score = meta["best_score"] if meta["best_score"] is not None else -math.inf
    stats = StepStats(**meta["stats"])
    if "ranks.draws_rng" in arrays:  # written by a distributed run (the identity guarantees the same world)
        draws.set_state(torch.from_numpy(np.array(arrays["ranks.draws_rng"][rank])))
        stats = StepStats(*np.asarray(arrays["ranks.stats"][rank]).tolist())
    return RunState(meta["step"], meta["epoch"], meta["batch"], meta["done"], meta["history"], best_score,
                     meta["best_epoch"], best_state, stats,
                     torch.from_numpy(np.array(arrays["epoch_rng"])), meta["epoch_seconds"], meta["elapsed"])
