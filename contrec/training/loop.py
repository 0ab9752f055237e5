"""The training loop: epochs of shuffled (user, positive) batches, one Adam step each.

Each step's loss is `contrec.training.step.step_loss` (candidates with their log q and
masks, both towers, the objective). Around the steps the loop refreshes samplers that
follow the model (``refresh_every`` steps and every epoch end), binds a live-model scorer
to samplers that rank a pool, asks the `contrec.training.validation.Validator` whether to
stop, writes checkpoints and resumes from them bit for bit, and under DDP shards every
epoch's shuffle between the processes.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import astuple
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from contrec.data.interactions import Interactions, binary_matrix
from contrec.data.positives import PositiveLookup, distinct_items
from contrec.errors import ConfigError
from contrec.nn.diagnostics import vector_diagnostics
from contrec.nn.encoders import Encoder, serving_vectors
from contrec.nn.similarity import Similarity
from contrec.nn.temperature import LearnedTemperature
from contrec.runtime.device import SlowBfloat16Warning, native_bfloat16
from contrec.runtime.heap import retained_heap
from contrec.runtime.progress import interactive
from contrec.samplers.base import ModelSnapshot, NegativeSampler, Scorer
from contrec.training import distributed
from contrec.training.candidates import StepStats
from contrec.training.checkpoint import RunState, generators_of, resume_run, save_run
from contrec.training.config import OPTIMIZERS, Checkpointing, TrainingConfig
from contrec.training.optimizer import Optimizer
from contrec.training.sharing import rank_seed
from contrec.training.step import Towers, step_loss
from contrec.training.validation import Validator
from contrec.training.weights import draw_weights, weighted_draw

__all__ = ["TrainingConfig", "Checkpointing", "train_two_tower", "pool_scorer", "OPTIMIZERS"]


def pool_scorer(user_encoder: nn.Module, item_encoder: nn.Module, similarity: Similarity) -> Scorer:
    """Scores of pooled candidates under the live model, for samplers that rank a pool (dynamic-hard).

    The towers are scored in eval mode: a pool ranked with dropout noise (history or ID
    dropout) would pick "hard" negatives at random. Their training mode is restored after.
    """
    def scorer(u: Tensor, j: Tensor) -> Tensor:
        modes = (user_encoder.training, item_encoder.training)
        user_encoder.eval()
        item_encoder.eval()
        device = item_encoder.device
        try:
            with torch.no_grad():
                distinct, index = distinct_items(j, item_encoder.n)  # encode each pooled item once
                scores = similarity.pairwise(user_encoder(u.to(device)), item_encoder(distinct.to(device)))
                # the sampler ranks on the CPU: off a GPU this is one copy (and wait) per step for dynamic-hard
                return scores.gather(1, index.to(device)).cpu()  # [B, C]
        finally:
            user_encoder.train(modes[0])
            item_encoder.train(modes[1])
    return scorer


def place(user_encoder: Encoder, item_encoder: Encoder, temperature: "LearnedTemperature | None",
          device: torch.device) -> None:
    """Move both towers (with a graph tower's shared graph) and a learned τ to ``device``, in place."""
    for module in (user_encoder, item_encoder, temperature):
        if module is not None:
            module.to(device)
    for tower in (user_encoder.without_head(), item_encoder.without_head()):
        propagation = getattr(tower, "propagation", None)
        if propagation is not None:
            propagation.to(device)


def train_two_tower(user_encoder: Encoder, item_encoder: Encoder, similarity: Similarity,
                    sampler: NegativeSampler, train: Interactions, config: TrainingConfig,
                    validation: Interactions | None = None, log: Callable[[str], None] | None = None,
                    checkpointing: Checkpointing | None = None, world: "distributed.World | None" = None,
                    ) -> list[dict[str, Any]]:
    """Train both towers in place; returns the per-epoch history.

    The towers train on ``config.device`` and are back on the CPU when this returns (served and
    saved from there); the candidates are built on the CPU either way (`contrec.runtime.device`).

    With ``validation`` (non-empty, same id space), training scores NDCG@``validation_k``
    after every epoch, stops after ``patience`` epochs without improvement and restores the
    towers to their best epoch (`contrec.training.validation.Validator`). With
    ``config.epoch_diagnostics`` every epoch's record carries the embedding diagnostics.
    ``checkpointing`` writes checkpoints as it goes and/or resumes from one
    (`contrec.training.checkpoint`). ``world``: train as one of several DDP processes
    (`contrec.training.distributed`): every rank takes its equal shard of each epoch's
    shuffle (the few interactions beyond a multiple of the world size sit out that epoch),
    sees every rank's in-batch candidates and shared draws, and only rank 0 writes checkpoints.
    """
    return _Run(user_encoder, item_encoder, similarity, sampler, train, config, validation, log,
                checkpointing, world).train()


class _Run:
    """One call of `train_two_tower`: its fixed inputs, the loop's state, and the loop in named parts."""

    def __init__(self, user_encoder: Encoder, item_encoder: Encoder, similarity: Similarity,
                 sampler: NegativeSampler, train: Interactions, config: TrainingConfig,
                 validation: Interactions | None, log: Callable[[str], None] | None,
                 checkpointing: Checkpointing | None, world: "distributed.World | None") -> None:
        self.user_encoder, self.item_encoder, self.similarity = user_encoder, item_encoder, similarity
        self.sampler, self.train_data, self.config, self.log, self.world = sampler, train, config, log, world
        self.device = torch.device(config.device)
        if world is not None and self.device.type != "cpu":
            raise ConfigError(f"multi-process training (DDP over gloo) runs on the CPU; got device={config.device!r}")
        if config.precision == "bfloat16" and not native_bfloat16(self.device):
            warnings.warn(f"precision='bfloat16': {self.device} has no fast bfloat16 matmuls, so epochs will be "
                          "slower than in float32, not faster", SlowBfloat16Warning, stacklevel=3)
        self.generator = torch.Generator().manual_seed(config.seed)  # the shuffle: the same on every rank
        self.rank, self.n_ranks = (world.rank, world.size) if world is not None else (0, 1)
        # sampled negatives must differ between ranks; one process keeps drawing from the shuffle's generator
        self.draws = self.generator if world is None else torch.Generator().manual_seed(
            rank_seed(config.seed, self.rank))
        self.users = torch.from_numpy(train.row_codes())  # [N]
        self.items = torch.from_numpy(train.matrix.indices.astype(np.int64))  # [N]
        self.n_inter = len(self.users)
        self.n_local = self.n_inter // self.n_ranks  # this rank's interactions per epoch
        if self.n_local == 0:
            raise ConfigError(f"{self.n_inter} training positives cannot be shared by {self.n_ranks} processes; "
                              "use fewer processes")
        draw = draw_weights(train.matrix.data, config.positive_weights)
        # an epoch's rows: a shuffle, or a weighted draw with replacement (contrec.training.weights)
        self.cdf = None if draw is None else torch.from_numpy(np.cumsum(draw))
        counts = torch.from_numpy(train.item_counts() if draw is None else np.bincount(
            train.matrix.indices, weights=draw, minlength=train.n_items)).double()
        # [n_items]: each item's expected share of a batch's positives; −inf for items never a positive
        self.log_p_batch = torch.log(counts / counts.sum()).float()
        self.lookup = PositiveLookup(train.matrix)
        self.temperature = LearnedTemperature(config.temperature) if config.learn_temperature else None
        place(user_encoder, item_encoder, self.temperature, self.device)  # before the optimizer sees the parameters
        extra = list(self.temperature.parameters()) if self.temperature is not None else []
        self.optimizer = Optimizer(user_encoder, item_encoder, config, extra)
        self.towers: nn.Module = Towers(user_encoder, item_encoder, self.temperature)
        if world is not None:
            self.towers = distributed.wrap(self.towers)  # after Optimizer: DDP must see sparse-adam's sparse tables
        sampler.bind(pool_scorer(user_encoder, item_encoder, similarity))
        self.validator = None
        if validation is not None and len(validation) > 0:
            self.validator = Validator(train, validation, config.validation_k, config.patience, world)
        self.n_batches = math.ceil(self.n_local / config.batch_size)
        ckpt = checkpointing or Checkpointing()
        if world is not None:
            ckpt = Checkpointing(ckpt.path, ckpt.every, ckpt.resume, {**ckpt.identity, "processes": self.n_ranks})
        self.ckpt = ckpt
        self.generators = {"trainer": self.generator, **generators_of(user_encoder, item_encoder)}
        self.state = RunState()
        if ckpt.resume:
            self.state = resume_run(ckpt, user_encoder, item_encoder, self.optimizer, sampler, self.generators,
                                    self.draws, self.rank, self.temperature)
            if self.validator is not None:
                v, s = self.validator, self.state
                v.best_score, v.best_epoch, v.best_state = s.best_score, s.best_epoch, s.best_state

    # ---------------------------------------------------------------- the loop
    def train(self) -> list[dict[str, Any]]:
        config, state = self.config, self.state
        total = config.epochs * self.n_batches
        # a bar only on a terminal: redrawn into a log file it is carriage-return noise; the epoch lines stay
        self.bar = tqdm(total=total, initial=min(state.step, total), disable=not config.verbose or not interactive(),
                        unit="batch", leave=False, dynamic_ncols=True, desc="fit")
        self.started = time.perf_counter() - state.elapsed
        self.step = state.step
        try:
            with retained_heap():  # a step's freed buffers are reused by the next, not faulted in again
                for epoch in range(state.epoch if not state.done else config.epochs, config.epochs):
                    if self._epoch(epoch):
                        break
        finally:
            self.bar.close()
            self.optimizer.close()
            place(self.user_encoder, self.item_encoder, self.temperature, torch.device("cpu"))
        # a checkpoint's identity includes the validation data: only a validated run has a best epoch
        if self.validator is not None and self.validator.best_state is not None:
            self.validator.restore(self.user_encoder, self.item_encoder)
            for record in state.history:
                record["best"] = record["epoch"] == self.validator.best_epoch
        self.user_encoder.eval()
        self.item_encoder.eval()
        return state.history

    def _epoch(self, epoch: int) -> bool:
        """Train epoch ``epoch`` (0-based), from its first batch or where a checkpoint left it; True = stop."""
        state, config = self.state, self.config
        resumed = state.batch > 0 and epoch == state.epoch
        if resumed:  # resume inside this epoch: replay its shuffle
            now_rng, epoch_rng = self.generator.get_state(), state.epoch_rng
            self.generator.set_state(epoch_rng)
            perm = self._shard()
            self.generator.set_state(now_rng)
            stats, first = state.stats, state.batch
            t0 = time.perf_counter() - state.epoch_seconds
        else:
            epoch_rng = self.generator.get_state()
            perm = self._shard()
            stats, first, t0 = StepStats(), 0, time.perf_counter()
        self.user_encoder.train()
        self.item_encoder.train()
        refresh_every = self.sampler.refresh_every
        # the epoch's loss sum stays on the device (float64, the same sums as Python floats): no wait per step
        loss_sum = torch.tensor(stats.loss, dtype=torch.float64, device=self.device)
        for b in range(first, self.n_batches):
            if refresh_every and self.step % refresh_every == 0:
                self._refresh(stats)
            idx = perm[b * config.batch_size:(b + 1) * config.batch_size]
            loss = step_loss(self.users[idx], self.items[idx], self.towers, self.similarity, self.sampler,
                             self.lookup, self.log_p_batch, config, self.draws, stats, self.world, self.device)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.schedule(self.step / (config.epochs * self.n_batches))
            self.optimizer.step()
            loss_sum += loss.detach().double() * len(idx)
            self.step += 1
            self.bar.update(1)
            if self.ckpt.path and self.ckpt.every and self.step % self.ckpt.every == 0 and b + 1 < self.n_batches:
                stats.loss = loss_sum.item()
                self._save(epoch, b + 1, stats, epoch_rng, time.perf_counter() - t0)
            if b % 10 == 0 and not self.bar.disable:
                rate = (b + 1) * config.batch_size * self.n_ranks / max(time.perf_counter() - t0, 1e-9)
                self.bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}", inter_per_s=f"{rate:,.0f}",
                                     fn_rate=f"{stats.false_negatives / max(stats.sampled, 1):.3f}")
        stats.loss = loss_sum.item()
        if refresh_every:
            self._refresh(stats)
        return self._end_epoch(epoch, stats, time.perf_counter() - t0)

    def _shard(self) -> Tensor:
        """This rank's share of a fresh shuffle of every training positive (draws from the trainer's generator)."""
        perm = torch.randperm(self.n_inter, generator=self.generator) if self.cdf is None else \
            weighted_draw(self.cdf, self.n_inter, self.generator)
        return perm[self.rank * self.n_local:(self.rank + 1) * self.n_local]

    def _end_epoch(self, epoch: int, stats: StepStats, seconds: float) -> bool:
        """The epoch's record, validation and diagnostics, its log line and checkpoint; True = stop."""
        n_seen = self.n_local * self.n_ranks
        totals = stats if self.world is None else StepStats(*distributed.all_sum(list(astuple(stats))))
        record: dict[str, Any] = {
            "epoch": epoch + 1, "loss": totals.loss / n_seen, "seconds": seconds,
            "interactions_per_s": n_seen / seconds,
            "false_negative_rate": totals.false_negatives / max(totals.sampled, 1),
            "masked_share": totals.masked / max(totals.candidates, 1),
            # the columns the loss scored, of those listed (in-batch + draws): repeats merged (training.candidates)
            "scored_share": totals.scored / max(totals.candidates + n_seen, 1),
            "sampler_seconds": stats.sampler_seconds,
            "sampler_share": stats.sampler_seconds / seconds,
            "refresh_seconds": stats.refresh_seconds, "refreshes": stats.refreshes,
            "elapsed": time.perf_counter() - self.started,
        }
        if self.temperature is not None:
            record["temperature"] = self.temperature.value()
        if self.validator is not None:
            score = self.validator.score(*self._served(), self.similarity.faiss_metric)
            record["validation"] = score
            self.validator.record(epoch + 1, score, self.user_encoder, self.item_encoder)
        if self.config.epoch_diagnostics:
            record["diagnostics"] = self._diagnostics()
        self.state.history.append(record)
        if self.world is not None:
            record["processes"] = self.n_ranks
        if self.log is not None and self.rank == 0:
            val = f", validation {record['validation']:.4f}" if "validation" in record else ""
            self.log(f"epoch {epoch + 1}/{self.config.epochs}: loss {record['loss']:.4f}{val}, {seconds:.1f}s, "
                     f"{record['interactions_per_s']:,.0f} interactions/s, "
                     f"false-negative rate {record['false_negative_rate']:.3f}")
        stop = self.validator is not None and self.validator.should_stop(epoch + 1)
        if self.ckpt.path:
            self._save(epoch + 1, 0, StepStats(), self.generator.get_state(), 0.0, done=stop)
        return stop

    # ---------------------------------------------------------------- parts
    def _served(self) -> tuple[np.ndarray, np.ndarray]:
        """User and item vectors as retrieval will see them (eval mode, the served output, prepared)."""
        self.user_encoder.eval()
        self.item_encoder.eval()
        prepare, serve_from = self.similarity.prepare, self.config.serve_from
        return (prepare(serving_vectors(self.user_encoder, serve_from).cpu().numpy()),
                prepare(serving_vectors(self.item_encoder, serve_from).cpu().numpy()))

    def _diagnostics(self) -> dict[str, float]:
        uv, iv = self._served()
        norms = np.linalg.norm(serving_vectors(self.item_encoder, self.config.serve_from).cpu().numpy(), axis=1)
        return vector_diagnostics(uv, iv, binary_matrix(self.train_data.matrix), norms, seed=self.config.seed)

    def _snapshot(self) -> ModelSnapshot:
        with torch.no_grad():
            # a sampler that follows the model gets the tables once per refresh (FAISS and numpy are on the CPU)
            return ModelSnapshot(self.similarity.prepare(self.user_encoder.encode_all().cpu().numpy()),
                                 self.similarity.prepare(self.item_encoder.encode_all().cpu().numpy()),
                                 self.similarity.faiss_metric, self.step)

    def _refresh(self, stats: StepStats) -> None:
        t0 = time.perf_counter()
        self.sampler.update(self._snapshot())
        stats.refresh_seconds += time.perf_counter() - t0
        stats.refreshes += 1

    def _save(self, epoch: int, batch: int, stats: StepStats, epoch_rng: Tensor, epoch_seconds: float,
              done: bool = False) -> None:
        v = self.validator
        best = (v.best_score, v.best_epoch, v.best_state) if v is not None else (-math.inf, -1, None)
        state = RunState(self.step, epoch, batch, done, self.state.history, *best, stats, epoch_rng, epoch_seconds,
                         time.perf_counter() - self.started)
        ranks = None
        if self.world is not None:  # every rank's own draws generator and partial-epoch counts go to rank 0
            ranks = (distributed.gather(self.draws.get_state()).numpy(),
                     distributed.gather(torch.tensor(astuple(stats), dtype=torch.float64)).numpy())
        if self.rank == 0:
            save_run(self.ckpt, state, self.user_encoder, self.item_encoder, self.optimizer, self.sampler,
                     self.generators, ranks, self.temperature)
