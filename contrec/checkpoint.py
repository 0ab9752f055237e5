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

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from contrec.artifact import read_artifact, write_artifact
from contrec.errors import ConfigError, ModelFileError

__all__ = ["CHECKPOINT_KIND", "save_checkpoint", "load_checkpoint", "module_arrays", "load_module_arrays",
           "optimizer_arrays", "load_optimizer_arrays", "generators_of", "generator_arrays", "load_generator_arrays"]

CHECKPOINT_KIND = "training-checkpoint"


def save_checkpoint(path: "str | os.PathLike[str]", arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (a temporary file renamed into place).

    A writer killed mid-write leaves its temporary file (``.<name>.*.tmp``) beside the
    checkpoint, never a damaged checkpoint; the next write removes such leftovers.
    """
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    return write_artifact(path, arrays, {"kind": CHECKPOINT_KIND, **meta})


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
