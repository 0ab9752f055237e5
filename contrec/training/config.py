"""The typed settings of a training run; each validates itself when it is built.

Example:
    >>> TrainingConfig(epochs=10, batch_size=512, lr=0.01, n_negatives=256, temperature=0.2)  # doctest: +ELLIPSIS
    TrainingConfig(epochs=10, batch_size=512, lr=0.01, ...)
    >>> TrainingConfig(epochs=0)
    Traceback (most recent call last):
    ...
    contrec.errors.ConfigError: epochs must be an integer ≥ 1 (got 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contrec.errors import ConfigError, check_choice, check_int, check_number
from contrec.nn.losses import OBJECTIVES, PRECISIONS
from contrec.runtime.device import device_name
from contrec.training.weights import POSITIVE_WEIGHTS

__all__ = ["TrainingConfig", "Checkpointing", "OPTIMIZERS", "SERVE_FROM", "LR_SCHEDULES"]

OPTIMIZERS = ("adam", "sparse-adam")
LR_SCHEDULES = ("constant", "linear", "cosine")  # the learning rate over the run's steps
SERVE_FROM = ("head", "tower")  # which output retrieval uses when a projection head exists


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """How the towers are trained (see `contrec.models.contrastive.ContrastiveRecommender` for each field).

    ``serve_from`` says which output validation and diagnostics score: the one that will be served.
    """

    epochs: int = 20
    batch_size: int = 1024
    lr: float = 0.01
    weight_decay: float = 0.0
    n_negatives: int = 1024
    temperature: float = 0.2
    in_batch: bool = True
    logq: bool = True
    patience: int = 6
    validation_k: int = 20
    seed: int = 0
    verbose: bool = True
    debias_prior: float = 0.0
    hardness: float = 0.0
    objective: str = "infonce"
    margin: float = 0.2
    ssl_weight: float = 0.0
    ssl_dropout: float = 0.3
    optimizer: str = "adam"
    serve_from: str = "head"
    epoch_diagnostics: bool = False
    learn_temperature: bool = False
    lr_schedule: str = "constant"
    positive_weights: str = "none"
    device: str = "cpu"
    precision: str = "float32"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience", "validation_k"):
            check_int(name, getattr(self, name))
        check_int("n_negatives", self.n_negatives, 0)
        check_number("temperature", self.temperature, positive=True)
        check_number("lr", self.lr, positive=True)
        if not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be ≥ 0 (got {self.weight_decay!r})")
        check_number("debias_prior", self.debias_prior, below=1.0)
        check_number("hardness", self.hardness)
        if not self.in_batch and self.n_negatives == 0:
            raise ConfigError("no negatives: with in_batch=False, n_negatives must be ≥ 1")
        check_choice("serve_from", self.serve_from, SERVE_FROM)
        check_choice("objective", self.objective, OBJECTIVES)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_choice("positive_weights", self.positive_weights, POSITIVE_WEIGHTS)
        check_choice("precision", self.precision, PRECISIONS)
        check_number("ssl_dropout", self.ssl_dropout, below=1.0)
        check_number("margin", self.margin)
        check_number("ssl_weight", self.ssl_weight)
        if self.optimizer == "sparse-adam" and self.weight_decay:
            raise ConfigError("optimizer='sparse-adam' has no weight decay (it would touch every row every step); "
                              "use optimizer='adam' with weight_decay")
        if self.objective != "infonce" and (self.debias_prior or self.hardness):
            raise ConfigError("debias_prior and hardness reshape the InfoNCE softmax; "
                              "use them with objective='infonce'")
        object.__setattr__(self, "device", device_name(self.device))  # "auto" → what this machine has
        for name in _FLOATS:  # valid now: a plain float from here on (an int lr works as 0.01 does)
            object.__setattr__(self, name, float(getattr(self, name)))


_FLOATS = ("lr", "weight_decay", "temperature", "debias_prior", "hardness", "margin", "ssl_weight", "ssl_dropout")


@dataclass(frozen=True)
class Checkpointing:
    """Where and how often to write training checkpoints, and which one to resume from.

    ``every``: steps between checkpoints (0: only at the end of every epoch; a checkpoint is
    always written at every epoch end). ``identity``: what a resumed run must share with the
    run that wrote the checkpoint (model settings, data fingerprints), JSON-serialisable.
    """

    path: str | None = None
    every: int = 0
    resume: str | None = None
    identity: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.every, int) or isinstance(self.every, bool) or self.every < 0:
            raise ConfigError(f"checkpoint_every must be an integer ≥ 0 (got {self.every!r})")
