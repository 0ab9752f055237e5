"""The training loop: mini-batches of (user, positive), candidates, masking, InfoNCE, Adam.

Each step, for a batch of B (user, positive item) pairs:

1. candidates = the batch's B positives (in-batch negatives for the other rows) followed by
   n items drawn by the sampler (shared by all rows, ``[n]``, or per row, ``[B, n]``);
2. each candidate j is corrected by ``log E[count of j in the candidates]``
   = ``log(B · p(j) + n · q(j))`` where p is j's share of training interactions (its chance
   of being a batch positive) and q the sampler's per-draw probability — the exact
   expected count of a two-source candidate set, so duplicates across sources are not
   double-counted (sampled softmax, Yi et al. 2019). A candidate neither source could have
   proposed (a row's own positive when the sampler excludes positives and in-batch is off)
   has no finite correction and is left uncorrected;
3. candidates that are known training positives of the row's user are masked (accidental
   hits, counted as the sampler's false-negative rate), except the row's own positive;
   draws the sampler marked invalid are masked too, and with a domain rule's
   ``mask_in_batch`` so are the in-batch candidates the rule forbids for the row;
4. loss = `contrec.losses.info_nce` (optionally debiased / hardness-weighted), or a
   pairwise BPR / triplet loss over the same candidates; plus, with ``ssl_weight`` and a
   history user tower, an auxiliary InfoNCE between two random views of each user's
   history (augmented positives, as in SGL / CL4SRec); one Adam step.

The user tower is called with ``exclude`` = the row's positive, so a tower built from the
user's history never sees the item it is asked to predict.

Samplers with ``refresh_every`` see the model's current vectors every that many steps and
at every epoch end; samplers with ``bind`` get a scorer for the live model.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, astuple, dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from contrec import distributed
from contrec.checkpoint import (generator_arrays, generators_of, load_checkpoint, load_generator_arrays,
                                load_module_arrays, load_optimizer_arrays, module_arrays, optimizer_arrays,
                                save_checkpoint)
from contrec.data.interactions import Interactions
from contrec.distributed import World
from contrec.encoders import Encoder
from contrec.errors import ConfigError
from contrec.losses import info_nce, pairwise_loss
from contrec.positives import PositiveLookup, distinct_items
from contrec.progress import interactive
from contrec.samplers.base import ModelSnapshot, NegativeSampler
from contrec.similarity import Similarity

__all__ = ["TrainingConfig", "Checkpointing", "train_two_tower", "OPTIMIZERS"]

OPTIMIZERS = ("adam", "sparse-adam")


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    n_negatives: int
    temperature: float
    in_batch: bool
    logq: bool
    patience: int
    seed: int
    verbose: bool
    debias_prior: float = 0.0
    hardness: float = 0.0
    objective: str = "infonce"
    margin: float = 0.2
    ssl_weight: float = 0.0
    ssl_dropout: float = 0.3
    optimizer: str = "adam"


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


@dataclass
class _EpochStats:
    loss: float = 0.0
    sampled: int = 0  # valid sampled negatives
    false_negatives: int = 0  # of those, known positives of the row's user
    candidates: int = 0  # all candidates but each row's own positive
    masked: int = 0  # of those, masked
    sampler_seconds: float = 0.0
    refresh_seconds: float = 0.0
    refreshes: int = 0


def pool_scorer(user_encoder: nn.Module, item_encoder: nn.Module, similarity: Any) -> Any:
    """Scores of pooled candidates under the live model, for samplers that rank a pool (dynamic-hard).

    The towers are scored in eval mode: a pool ranked with dropout noise (history or ID
    dropout) would pick "hard" negatives at random. Their training mode is restored after.
    """
    def scorer(u: Tensor, j: Tensor) -> Tensor:
        modes = (user_encoder.training, item_encoder.training)
        user_encoder.eval()
        item_encoder.eval()
        try:
            with torch.no_grad():
                distinct, index = distinct_items(j, item_encoder.n)  # encode each pooled item once
                return similarity.pairwise(user_encoder(u), item_encoder(distinct)).gather(1, index)  # [B, C]
        finally:
            user_encoder.train(modes[0])
            item_encoder.train(modes[1])
    return scorer


def train_two_tower(user_encoder: Encoder, item_encoder: Encoder, similarity: Similarity,
                    sampler: NegativeSampler, train: Interactions, config: TrainingConfig,
                    validate: Callable[[], float] | None = None,
                    log: Callable[[str], None] | None = None,
                    diagnose: Callable[[], dict[str, float]] | None = None,
                    checkpointing: Checkpointing | None = None, world: World | None = None,
                    ) -> list[dict[str, Any]]:
    """Train both towers in place; returns the per-epoch history.

    ``validate`` returns a validation score (higher is better, e.g. NDCG@k) computed from
    the towers' current state. With it, training stops after ``patience`` epochs without
    improvement and the towers are restored to their best epoch. ``diagnose``, when given,
    is called after every epoch and its result stored in that epoch's record.
    ``checkpointing`` writes checkpoints as it goes and/or resumes from one (`contrec.checkpoint`).
    ``world``: train as one of several DDP processes (`contrec.distributed`): every rank takes
    its equal shard of each epoch's shuffle (the few interactions beyond a multiple of the
    world size sit out that epoch), sees every rank's in-batch candidates and shared draws,
    and only rank 0 writes checkpoints.
    """
    generator = torch.Generator().manual_seed(config.seed)  # the shuffle: the same on every rank
    rank, n_ranks = (world.rank, world.size) if world is not None else (0, 1)
    # sampled negatives must differ between ranks; one process keeps drawing from the shuffle's generator
    draws = generator if world is None else torch.Generator().manual_seed(_rank_seed(config.seed, rank))
    users = torch.from_numpy(train.row_codes())  # [N]
    items = torch.from_numpy(train.matrix.indices.astype(np.int64))  # [N]
    n_inter = len(users)
    n_local = n_inter // n_ranks  # this rank's interactions per epoch
    if n_local == 0:
        raise ConfigError(f"{n_inter} training positives cannot be shared by {n_ranks} processes; use fewer processes")
    counts = torch.from_numpy(train.item_counts()).double()
    log_p_batch = torch.log(counts / n_inter).float()  # [n_items]; −inf for items never a positive
    lookup = PositiveLookup(train.matrix)
    optimizer = _Optimizer(user_encoder, item_encoder, config)
    towers: nn.Module = _Towers(user_encoder, item_encoder)
    if world is not None:
        towers = distributed.wrap(towers)  # after _Optimizer: DDP must see sparse-adam's sparse tables

    def snapshot(step: int) -> ModelSnapshot:
        with torch.no_grad():
            return ModelSnapshot(similarity.prepare(user_encoder.encode_all().numpy()),
                                 similarity.prepare(item_encoder.encode_all().numpy()),
                                 similarity.faiss_metric, step)

    if hasattr(sampler, "bind"):
        sampler.bind(pool_scorer(user_encoder, item_encoder, similarity))
    refresh_every = getattr(sampler, "refresh_every", None)

    n_batches = math.ceil(n_local / config.batch_size)
    ckpt = checkpointing or Checkpointing()
    if world is not None:
        ckpt = Checkpointing(ckpt.path, ckpt.every, ckpt.resume, {**ckpt.identity, "processes": n_ranks})
    generators = {"trainer": generator, **generators_of(user_encoder, item_encoder)}
    run = _RunState()
    if ckpt.resume:
        run = _resume(ckpt, user_encoder, item_encoder, optimizer, sampler, generators, draws, rank)
    history, best_score, best_epoch, best_state = run.history, run.best_score, run.best_epoch, run.best_state
    # a bar only on a terminal: redrawn into a log file it is carriage-return noise; the epoch lines stay
    bar = tqdm(total=config.epochs * n_batches, initial=min(run.step, config.epochs * n_batches),
               disable=not config.verbose or not interactive(), unit="batch", leave=False, dynamic_ncols=True,
               desc="fit")
    started = time.perf_counter() - run.elapsed
    step = run.step

    def save(epoch: int, batch: int, stats: _EpochStats, epoch_rng: Tensor, epoch_seconds: float,
             done: bool = False) -> None:
        state = _RunState(step, epoch, batch, done, history, best_score, best_epoch, best_state, stats,
                          epoch_rng, epoch_seconds, time.perf_counter() - started)
        ranks = None
        if world is not None:  # every rank's own draws generator and partial-epoch counts go to rank 0
            ranks = (distributed.gather(draws.get_state()).numpy(),
                     distributed.gather(torch.tensor(astuple(stats), dtype=torch.float64)).numpy())
        if rank == 0:
            _save(ckpt, state, user_encoder, item_encoder, optimizer, sampler, generators, ranks)

    try:
        for epoch in range(run.epoch if not run.done else config.epochs, config.epochs):
            if run.batch > 0 and epoch == run.epoch:  # resume inside this epoch: replay its shuffle
                now_rng, epoch_rng = generator.get_state(), run.epoch_rng
                generator.set_state(epoch_rng)
                perm = torch.randperm(n_inter, generator=generator)[rank * n_local:(rank + 1) * n_local]
                generator.set_state(now_rng)
                stats, first = run.stats, run.batch
                t0 = time.perf_counter() - run.epoch_seconds
            else:
                epoch_rng = generator.get_state()
                perm = torch.randperm(n_inter, generator=generator)[rank * n_local:(rank + 1) * n_local]
                stats, first, t0 = _EpochStats(), 0, time.perf_counter()
            user_encoder.train()
            item_encoder.train()
            for b in range(first, n_batches):
                if refresh_every and step % refresh_every == 0:
                    _refresh(sampler, snapshot, step, stats)
                idx = perm[b * config.batch_size:(b + 1) * config.batch_size]
                loss = _step(users[idx], items[idx], towers, similarity, sampler, lookup, log_p_batch, config,
                             draws, stats, world)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                stats.loss += loss.item() * len(idx)
                step += 1
                bar.update(1)
                if ckpt.path and ckpt.every and step % ckpt.every == 0 and b + 1 < n_batches:
                    save(epoch, b + 1, stats, epoch_rng, time.perf_counter() - t0)
                if b % 10 == 0:
                    rate = (b + 1) * config.batch_size * n_ranks / max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}", inter_per_s=f"{rate:,.0f}",
                                    fn_rate=f"{stats.false_negatives / max(stats.sampled, 1):.3f}")
            if refresh_every:
                _refresh(sampler, snapshot, step, stats)
            seconds = time.perf_counter() - t0
            totals = stats if world is None else _EpochStats(*distributed.all_sum(list(astuple(stats))))
            record: dict[str, Any] = {
                "epoch": epoch + 1, "loss": totals.loss / (n_local * n_ranks), "seconds": seconds,
                "interactions_per_s": n_local * n_ranks / seconds,
                "false_negative_rate": totals.false_negatives / max(totals.sampled, 1),
                "masked_share": totals.masked / max(totals.candidates, 1),
                "sampler_seconds": stats.sampler_seconds,
                "sampler_share": stats.sampler_seconds / seconds,
                "refresh_seconds": stats.refresh_seconds, "refreshes": stats.refreshes,
                "elapsed": time.perf_counter() - started,
            }
            if validate is not None:
                user_encoder.eval()
                item_encoder.eval()
                score = float(validate())
                record["validation"] = score
                if score > best_score:
                    best_score, best_epoch = score, epoch + 1
                    best_state = (copy.deepcopy(user_encoder.state_dict()), copy.deepcopy(item_encoder.state_dict()))
            if diagnose is not None:
                user_encoder.eval()
                item_encoder.eval()
                record["diagnostics"] = diagnose()
            history.append(record)
            if world is not None:
                record["processes"] = n_ranks
            if log is not None and rank == 0:
                val = f", validation {record['validation']:.4f}" if "validation" in record else ""
                log(f"epoch {epoch + 1}/{config.epochs}: loss {record['loss']:.4f}{val}, {seconds:.1f}s, "
                    f"{record['interactions_per_s']:,.0f} interactions/s, "
                    f"false-negative rate {record['false_negative_rate']:.3f}")
            stop = validate is not None and epoch + 1 - best_epoch >= config.patience
            if ckpt.path:
                save(epoch + 1, 0, _EpochStats(), generator.get_state(), 0.0, done=stop)
            if stop:
                break
    finally:
        bar.close()
        optimizer.close()
    if best_state is not None:
        user_encoder.load_state_dict(best_state[0])
        item_encoder.load_state_dict(best_state[1])
        for record in history:
            record["best"] = record["epoch"] == best_epoch
    user_encoder.eval()
    item_encoder.eval()
    return history


@dataclass
class _RunState:
    """Where a run stands between two steps: what a checkpoint stores."""

    step: int = 0
    epoch: int = 0  # the epoch under way (or the next one when batch = 0)
    batch: int = 0  # next batch of that epoch
    done: bool = False  # stopped early (patience); a run that used up its epochs goes on if given more
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float = -math.inf
    best_epoch: int = -1
    best_state: tuple[dict[str, Tensor], dict[str, Tensor]] | None = None
    stats: _EpochStats = field(default_factory=_EpochStats)
    epoch_rng: Tensor | None = None  # the trainer's generator at the start of the epoch (replays its shuffle)
    epoch_seconds: float = 0.0
    elapsed: float = 0.0


def _save(ckpt: Checkpointing, run: _RunState, user_encoder: nn.Module, item_encoder: nn.Module,
          optimizer: "_Optimizer", sampler: NegativeSampler, generators: dict[str, torch.Generator],
          ranks: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    arrays = {**module_arrays("user", user_encoder), **module_arrays("item", item_encoder),
              **generator_arrays(generators), "epoch_rng": run.epoch_rng.numpy().copy()}
    if ranks is not None:  # [W, ...] per-rank draws generators and partial-epoch counts
        arrays["ranks.draws_rng"], arrays["ranks.stats"] = ranks
    optimizers = []
    for k, opt in enumerate(optimizer.optimizers):
        opt_arrays, opt_meta = optimizer_arrays(f"opt{k}", opt)
        arrays.update(opt_arrays)
        optimizers.append(opt_meta)
    state = getattr(sampler, "state", None)
    if state is not None:
        arrays.update({f"sampler.{k}": v for k, v in state().items()})
    if run.best_state is not None:
        for prefix, tower in zip(("best.user", "best.item"), run.best_state):
            arrays.update({f"{prefix}.{k}": v.detach().cpu().numpy().copy() for k, v in tower.items()})
    meta = {"identity": ckpt.identity, "step": run.step, "epoch": run.epoch, "batch": run.batch, "done": run.done,
            "history": json.loads(json.dumps(run.history, default=float)),
            "best_score": run.best_score if math.isfinite(run.best_score) else None, "best_epoch": run.best_epoch,
            "stats": asdict(run.stats), "epoch_seconds": run.epoch_seconds, "elapsed": run.elapsed,
            "optimizers": optimizers}
    save_checkpoint(ckpt.path, arrays, meta)


def _resume(ckpt: Checkpointing, user_encoder: nn.Module, item_encoder: nn.Module, optimizer: "_Optimizer",
            sampler: NegativeSampler, generators: dict[str, torch.Generator], draws: torch.Generator,
            rank: int) -> _RunState:
    where = str(ckpt.resume)
    arrays, meta = load_checkpoint(where)
    theirs = meta.get("identity", {})
    differ = sorted(k for k in set(theirs) | set(ckpt.identity) if theirs.get(k) != ckpt.identity.get(k))
    if differ:
        raise ConfigError(f"{where}: the checkpoint was written for other settings or data ({', '.join(differ)} "
                          "differ); resume with the same data and settings, or start afresh")
    load_module_arrays("user", user_encoder, arrays, where)
    load_module_arrays("item", item_encoder, arrays, where)
    if len(meta["optimizers"]) != len(optimizer.optimizers):
        raise ConfigError(f"{where}: the checkpoint's optimizer does not match this model's")
    for k, (opt, opt_meta) in enumerate(zip(optimizer.optimizers, meta["optimizers"])):
        load_optimizer_arrays(f"opt{k}", opt, arrays, opt_meta)
    load_state = getattr(sampler, "load_state", None)
    if load_state is not None:
        load_state({k[len("sampler."):]: v for k, v in arrays.items() if k.startswith("sampler.")})
    load_generator_arrays(generators, arrays, where)
    best_state = None
    if any(k.startswith("best.user.") for k in arrays):
        best_state = tuple({k[len(prefix) + 1:]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
                            if k.startswith(prefix + ".")} for prefix in ("best.user", "best.item"))
    best_score = meta["best_score"] if meta["best_score"] is not None else -math.inf
    stats = _EpochStats(**meta["stats"])
    if "ranks.draws_rng" in arrays:  # written by a distributed run (the identity guarantees the same world)
        draws.set_state(torch.from_numpy(np.array(arrays["ranks.draws_rng"][rank])))
        stats = _EpochStats(*np.asarray(arrays["ranks.stats"][rank]).tolist())
    return _RunState(meta["step"], meta["epoch"], meta["batch"], meta["done"], meta["history"], best_score,
                     meta["best_epoch"], best_state, stats,
                     torch.from_numpy(np.array(arrays["epoch_rng"])), meta["epoch_seconds"], meta["elapsed"])


class _Optimizer:
    """Adam over both towers: dense (fused kernel) or, for ``sparse-adam``, lazy row-wise on the tables.

    The fused kernel is the same Adam update in one sweep per tensor, ~10x faster than the
    per-tensor loop on CPU. Dense Adam still reads and writes every row of every table each
    step (and the tables' gradients are dense), which at 100k+ rows costs more than the loss;
    ``sparse-adam`` switches the embedding tables to sparse gradients and updates only the
    rows a batch touched (`torch.optim.SparseAdam`; a row's moments age only when it is used).
    """

    def __init__(self, user_encoder: nn.Module, item_encoder: nn.Module, config: TrainingConfig) -> None:
        params = list(user_encoder.parameters()) + list(item_encoder.parameters())
        self._tables: list[nn.Module] = []
        if config.optimizer == "sparse-adam":
            self._tables = [m for enc in (user_encoder, item_encoder) for m in enc.modules()
                            if isinstance(m, (nn.Embedding, nn.EmbeddingBag))]
        table_ids = {id(m.weight) for m in self._tables}
        dense = [p for p in params if id(p) not in table_ids]
        self.optimizers: list[torch.optim.Optimizer] = []
        if self._tables:
            for m in self._tables:
                m.sparse = True
            self.optimizers.append(torch.optim.SparseAdam([m.weight for m in self._tables], lr=config.lr))
        if dense:
            fused = all(p.dtype in (torch.float32, torch.float64) and p.device.type == "cpu" for p in dense)
            self.optimizers.append(torch.optim.Adam(dense, lr=config.lr, weight_decay=config.weight_decay,
                                                     fused=fused or None))

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def close(self) -> None:
        """Back to dense gradients: the trained towers are served and saved as ordinary modules."""
        for m in self._tables:
            m.sparse = False


def _refresh(sampler: NegativeSampler, snapshot: Callable[[int], ModelSnapshot], step: int,
             stats: _EpochStats) -> None:
    t0 = time.perf_counter()
    sampler.update(snapshot(step))
    stats.refresh_seconds += time.perf_counter() - t0
    stats.refreshes += 1


class _Towers(nn.Module):
    """Both towers behind one forward, so DDP (which must see every forward) can wrap them together."""

    def __init__(self, user_encoder: nn.Module, item_encoder: nn.Module) -> None:
        super().__init__()
        self.user, self.item = user_encoder, item_encoder

    def forward(self, users: Tensor, positives: Tensor, items: Tensor, ssl_dropout: float = 0.0,
                ) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor] | None]:
        """User vectors ``[B, d]`` (each row's positive hidden from its history), item vectors, and,
        with ``ssl_dropout``, two augmented views of each distinct user's history."""
        u = self.user(users, exclude=positives)
        v = self.item(items)
        views = self.user.augmented_pair(torch.unique(users), ssl_dropout) if ssl_dropout > 0 else None
        return u, v, views


def _rank_seed(seed: int, rank: int) -> int:
    """Seed of rank ``rank``'s negative draws: distinct per rank, fixed by the run's seed."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint64)[0] >> 1)


def _step(bu: Tensor, bi: Tensor, towers: nn.Module, similarity: Similarity, sampler: NegativeSampler,
          lookup: PositiveLookup, log_p_batch: Tensor, config: TrainingConfig, generator: torch.Generator,
          stats: _EpochStats, world: World | None = None) -> Tensor:
    B, n = len(bu), config.n_negatives
    rank, W = (world.rank, world.size) if world is not None else (0, 1)
    P = W * B  # in-batch candidates: the positives of every rank's batch (equal batch sizes on all ranks)
    labels = torch.arange(B) + rank * B  # row b's positive is candidate column rank·B + b
    t0 = time.perf_counter()
    neg = sampler.sample(bu, bi, n, generator) if n > 0 else None
    per_row = neg is not None and neg.items.dim() == 2
    # A row's candidate list: P in-batch positives, then W·n shared draws (each rank's n) or its own n.
    pos_all, draws, draws_log_q, valid = bi, None, None, None
    if neg is not None:
        draws, draws_log_q, valid = neg.items, neg.log_q, neg.valid
    if W > 1:
        shared = neg is not None and not per_row
        # one all-gather for the positives, the shared draws and their log q (bits carried in int64:
        # a shared draw's q does not depend on the row, so the other ranks' values are exact here)
        ids = distributed.gather(torch.cat([bi, neg.items, neg.log_q.double().view(torch.int64)])
                                     if shared else bi)  # [W, B (+ 2n)]
        pos_all = ids[:, :B].reshape(-1)  # [P]
        if shared:
            draws = ids[:, B:B + n].reshape(-1)  # [W·n]
            draws_log_q = ids[:, B + n:].reshape(-1).view(torch.float64).float()  # [W·n]
            if valid is not None and valid.dim() == 1:
                valid = distributed.gather(valid).reshape(-1)
            elif valid is not None:  # a row-wise rule over shared draws: test this rank's rows against every draw
                forbidden = getattr(sampler, "forbidden", None)
                if forbidden is None:
                    raise ConfigError(f"the {sampler.name!r} sampler cannot share its draws across processes")
                valid = ~forbidden(bu, bi, draws)
    n_row = 0 if neg is None else (n if per_row else W * n)  # draws in one row's candidate list
    log_P, log_n = math.log(P), math.log(max(n_row, 1))
    # Two blocks of candidates: the in-batch positives [P] and the sampled items ([W·n] or [B, n]).
    # Each gets log E[count] = log(P·p(j) + n_row·q(j)), from whichever sources can propose it.
    blocks_items, blocks_log_q = [pos_all], []
    if neg is not None:
        in_batch_q = sampler.log_prob(bu, pos_all.expand(B, P) if per_row else pos_all, bi)  # [B, P] or [P]
        blocks_items.append(draws)
        blocks_log_q = [log_n + in_batch_q, log_n + draws_log_q]
    stats.sampler_seconds += time.perf_counter() - t0
    if config.in_batch:
        p_terms = [log_P + log_p_batch[items] for items in blocks_items]
        blocks_log_q = [torch.logaddexp(p, q) for p, q in zip(p_terms, blocks_log_q)] if blocks_log_q else p_terms
    if per_row:
        blocks_items[0] = pos_all.expand(B, P)
    if any(q.dim() == 2 for q in blocks_log_q):  # a row-dependent proposal (domain rules) over shared items
        blocks_log_q = [q if q.dim() == 2 else q.expand(B, -1) for q in blocks_log_q]
    cand = torch.cat(blocks_items, dim=-1)  # [P + W·n] or [B, P + n]
    log_q = None
    if config.logq and blocks_log_q:
        log_q = torch.cat(blocks_log_q, dim=-1)
        log_q = torch.nan_to_num_(log_q, neginf=0.0)  # cat made a fresh tensor: fix it in place, one sweep

    index = None
    if per_row and W == 1:
        distinct, index = distinct_items(cand, lookup.n_items)  # encode and look up each item once
        mask = lookup.shared(bu, distinct).gather(1, index)  # [B, B+n] accidental hits
        encode = distinct
    elif per_row:  # the other ranks' positives arrive as vectors; this rank encodes its own rows' draws
        distinct, draw_index = distinct_items(draws, lookup.n_items)
        index = torch.cat([torch.arange(P).expand(B, P), draw_index + P], dim=1)  # [B, P + n]
        mask = torch.cat([lookup.shared(bu, pos_all), lookup.shared(bu, distinct).gather(1, draw_index)], dim=1)
        encode = torch.cat([bi, distinct])
    else:
        mask = lookup.shared(bu, cand)  # [B, P + W·n]
        encode = cand if W == 1 else torch.cat([bi, neg.items]) if neg is not None else bi
    if getattr(sampler, "mask_in_batch", False) and n > 0 and config.in_batch:
        mask[:, :P] |= sampler.forbidden(bu, bi, pos_all)  # type: ignore[attr-defined]  # the rule holds in-batch too
    sampled_hits = mask[:, P:]
    if valid is not None:
        valid = valid if valid.dim() == 2 else valid.expand(B, -1)
        stats.sampled += int(valid.count_nonzero())
        stats.false_negatives += int((sampled_hits & valid).count_nonzero())
        mask[:, P:] |= ~valid
    else:
        stats.sampled += sampled_hits.numel()
        stats.false_negatives += int(sampled_hits.count_nonzero())
    if not config.in_batch:
        mask[:, :P] = True  # other rows' positives are not candidates; the label column is kept by info_nce
    stats.candidates += mask.numel() - B
    stats.masked += int(mask.count_nonzero()) - B  # every label column is a known positive
    u, v, views = towers(bu, bi, encode, config.ssl_dropout if config.ssl_weight > 0 else 0.0)
    if W > 1:
        v = _gather_candidates(v, B, W, per_row)
    if config.objective == "infonce":
        loss = info_nce(u, v, labels, similarity=similarity, temperature=config.temperature, log_q=log_q, mask=mask,
                        debias_prior=config.debias_prior, hardness=config.hardness, candidate_index=index)
    else:
        loss = pairwise_loss(u, v, labels, similarity=similarity, temperature=config.temperature,
                             objective=config.objective, margin=config.margin, mask=mask, candidate_index=index)
    if views is not None:
        loss = loss + config.ssl_weight * _ssl_loss(*views, config.temperature)
    return loss


def _gather_candidates(v: Tensor, B: int, W: int, per_row: bool) -> Tensor:
    """Every rank's candidate vectors in candidate-list order, differentiable back to the rank that encoded them.

    ``v`` holds this rank's B positives, then its n shared draws (or its rows' distinct draws,
    which stay local).
    """
    if per_row:
        return torch.cat([distributed.gather_vectors(v[:B]).reshape(W * B, -1), v[B:]])  # [P + U, d]
    everyone = distributed.gather_vectors(v)  # [W, B + n, d]
    d = v.shape[-1]
    return torch.cat([everyone[:, :B].reshape(W * B, d), everyone[:, B:].reshape(-1, d)])  # [P + W·n, d]


def _ssl_loss(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """InfoNCE between two random views of each distinct user's history, the other users as negatives."""
    a, b = torch.nn.functional.normalize(a, dim=-1), torch.nn.functional.normalize(b, dim=-1)
    return torch.nn.functional.cross_entropy((a @ b.T) / temperature, torch.arange(len(a)))
