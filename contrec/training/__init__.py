"""Training two towers with sampled-softmax InfoNCE.

``config`` (typed settings), ``candidates`` (a step's candidate set with its log q and
masks), ``step`` (one step's loss), ``loop`` (`train_two_tower`: epochs, refreshes,
early stopping through a ``validation.Validator``), ``optimizer``, ``checkpoint`` (resume
bit-for-bit) and ``distributed`` (DDP over several processes).
"""

from contrec.training.loop import OPTIMIZERS, Checkpointing, TrainingConfig, pool_scorer, train_two_tower

__all__ = ["TrainingConfig", "Checkpointing", "train_two_tower", "pool_scorer", "OPTIMIZERS"]
