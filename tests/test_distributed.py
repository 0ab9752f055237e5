"""Two gloo processes on one machine: the loss each rank computes sees every rank's candidates, and one
DDP step is exactly one process's step over the union of the ranks' batches."""

from __future__ import annotations

import os

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from contrec.nn.encoders import IdEncoder
from contrec.nn.losses import info_nce
from contrec.data.positives import PositiveLookup
from contrec.samplers import get_sampler
from contrec.nn.similarity import get_similarity

from .contracts import random_snapshot, skewed_interactions

W, B, N_NEG, DIM, TEMPERATURE = 2, 8, 6, 8, 0.2
SAMPLERS = {  # shared draws; shared draws with a row-wise rule; per-row draws; sparse table gradients
    "uniform": ("uniform", {}),
    "domain-rule (shared draws, row-wise rule)": ("domain-rule", {"rule": "disjoint(genres)"}),
    "uniform excluding positives (per-row draws)": ("uniform", {"exclude_positives": True}),
    "uniform, sparse gradients (sparse-adam)": ("uniform", {}),
    "hard (shared draws whose q follows each rank's batch: kept local)": ("hard", {"top_m": 5, "uniform_share": 0.3}),
}


def _setup(name: str):
    train = skewed_interactions(n_users=30, n_items=40)
    kind, params = SAMPLERS[name]
    sampler = get_sampler(kind, **params).fit(train)
    if kind == "hard":
        sampler.update(random_snapshot(train))
    towers = [IdEncoder(train.n_users, DIM, generator=torch.Generator().manual_seed(1)),
              IdEncoder(train.n_items, DIM, generator=torch.Generator().manual_seed(2))]
    rows = torch.randperm(len(train), generator=torch.Generator().manual_seed(3))[:W * B]
    users = torch.from_numpy(train.row_codes())[rows]
    items = torch.from_numpy(train.matrix.indices.astype(np.int64))[rows]
    return train, sampler, towers, users, items


def _rank(rank: int, folder: str, name: str) -> None:
    import contrec.training.step as training
    from contrec.training.candidates import StepStats
    from contrec.training.config import TrainingConfig
    from contrec.training.sharing import rank_seed
    from contrec.training import distributed

    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=W)
    try:
        train, sampler, (user_enc, item_enc), users, items = _setup(name)
        seen: dict[str, torch.Tensor] = {}
        real_loss, real_sample = training.info_nce, sampler.sample

        def loss_spy(u, v, labels, **kw):  # what the loss is given
            seen.update(v=v.detach().clone(), labels=labels, mask=kw["mask"], log_q=kw["log_q"])
            if kw["candidate_index"] is not None:
                seen["index"] = kw["candidate_index"]
            return real_loss(u, v, labels, **kw)

        def sample_spy(*a):
            neg = real_sample(*a)
            seen["draws"] = neg.items
            if neg.valid is not None:
                seen["valid"] = neg.valid
            return neg

        training.info_nce, sampler.sample = loss_spy, sample_spy
        if "sparse" in name:  # what optimizer="sparse-adam" does to the tables: DDP all-reduces sparse gradients
            user_enc.embedding.sparse = item_enc.embedding.sparse = True
        config = TrainingConfig(epochs=1, batch_size=B, lr=0.01, n_negatives=N_NEG, temperature=TEMPERATURE, patience=1)
        towers = distributed.wrap(training.Towers(user_enc, item_enc))
        counts = torch.from_numpy(train.item_counts()).double()
        log_p = torch.log(counts / len(train)).float()
        mine = slice(rank * B, (rank + 1) * B)
        loss = training.step_loss(users[mine], items[mine], towers, get_similarity("cosine"), sampler,
                              PositiveLookup(train.matrix), log_p, config,
                              torch.Generator().manual_seed(rank_seed(0, rank)), StepStats(),
                              distributed.World(rank, W, "gloo"))
        loss.backward()  # DDP averages the gradients over the ranks
        out = {k: v.numpy() for k, v in seen.items()}
        np.savez(Path(folder, f"rank{rank}.npz"), loss=loss.detach().numpy(), **out,
                 grad_user=user_enc.embedding.weight.grad.to_dense().numpy(),
                 grad_item=item_enc.embedding.weight.grad.to_dense().numpy())
        dist.barrier()  # both ranks' results are on disk
    except BaseException:
        distributed.close(wait=False)
        raise
    # Leave without tearing gloo down: its threads sometimes abort a finished rank at teardown ("terminate
    # called without an active exception", SIGABRT — twice in full local runs, even after a barrier), and
    # this test checks one step's results, which are saved by now.
    os._exit(0)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_each_rank_sees_every_ranks_candidates_and_the_step_is_one_process_over_the_union(tmp_path, name):
    mp.start_processes(_rank, args=(str(tmp_path), name), nprocs=W, start_method="spawn")
    got = [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(W)]
    train, sampler, (user_enc, item_enc), users, items = _setup(name)
    local = sampler.batch_proposal  # one shared draw per rank, each row of the rank keeps it
    per_row = got[0]["draws"].ndim == 2 or local
    P = W * B
    # The candidate list every rank's loss must see: all W·B positives, then every rank's draws
    # (shared), or each row its own rank's draws (per row).
    if per_row:
        draws = torch.from_numpy(np.concatenate([np.broadcast_to(g["draws"], (B, N_NEG)) for g in got]))  # [P, n]
        cand = torch.cat([items.expand(P, P), draws], dim=1)  # [P, P + n]
        n_row = N_NEG
    else:
        draws = torch.from_numpy(np.concatenate([g["draws"] for g in got]))  # [W·n]
        cand = torch.cat([items, draws]).expand(P, -1)  # [P, P + W·n]
        n_row = W * N_NEG
    assert not torch.equal(torch.from_numpy(got[0]["draws"]), torch.from_numpy(got[1]["draws"]))  # ranks draw apart
    table = item_enc.embedding.weight.detach()
    for r, g in enumerate(got):
        rows = slice(r * B, (r + 1) * B)
        seen = torch.from_numpy(g["v"])[torch.from_numpy(g["index"])] if per_row else \
            torch.from_numpy(g["v"]).expand(B, -1, -1)
        assert torch.equal(seen, table[cand[rows]]), "the loss does not see the other rank's candidates"
        np.testing.assert_array_equal(g["labels"], np.arange(B) + r * B)

    # One process, the union of both batches, the same candidates: log q = log(P·p(j) + n_row·q(j)).
    counts = torch.from_numpy(train.item_counts()).double()
    log_p = torch.log(counts / len(train)).float()
    q = torch.cat([sampler.log_prob(users[r * B:(r + 1) * B], cand[r * B:(r + 1) * B], items[r * B:(r + 1) * B])
                   for r in range(W)])  # [P, M]: each rank's rows under its own batch's proposal
    log_q = torch.nan_to_num(torch.logaddexp(math.log(P) + log_p[cand], math.log(n_row) + q), neginf=0.0)
    mask = torch.from_numpy(train.matrix[users.numpy()[:, None], cand.numpy().copy()].toarray() > 0)
    valid = torch.from_numpy(np.concatenate([g["valid"] for g in got])) if "valid" in got[0] else None
    if valid is not None and not per_row:  # a rule over shared draws: every row against every rank's draws
        valid = ~sampler.forbidden(users, items, draws)
    if valid is not None:
        mask[:, P:] |= ~valid
    for r, g in enumerate(got):
        rows = slice(r * B, (r + 1) * B)
        np.testing.assert_array_equal(g["mask"], mask[rows].numpy())
        keep = ~mask[rows]
        np.testing.assert_allclose(np.broadcast_to(g["log_q"], keep.shape)[keep.numpy()], log_q[rows][keep].numpy(),
                                   rtol=1e-6, atol=1e-6)
    vectors = item_enc(cand.reshape(-1)).reshape(P, cand.shape[1], DIM)
    per_rank = [info_nce(user_enc(users[r * B:(r + 1) * B]), vectors[r * B:(r + 1) * B],
                         torch.arange(B) + r * B, similarity=get_similarity("cosine"), temperature=TEMPERATURE,
                         log_q=log_q[r * B:(r + 1) * B], mask=mask[r * B:(r + 1) * B]) for r in range(W)]
    for r in range(W):
        assert float(got[r]["loss"]) == pytest.approx(per_rank[r].item(), rel=1e-5)
    (sum(per_rank) / W).backward()  # the mean loss over all W·B rows
    for g in got:  # DDP left the same, exact gradient on every rank
        np.testing.assert_allclose(g["grad_item"], item_enc.embedding.weight.grad.numpy(), atol=1e-6)
        np.testing.assert_allclose(g["grad_user"], user_enc.embedding.weight.grad.numpy(), atol=1e-6)
    assert np.abs(got[0]["grad_item"]).sum() > 0


def test_init_outside_torchrun_and_nccl_say_what_to_do(monkeypatch):
    from contrec.training import distributed
    from contrec.errors import ConfigError

    assert distributed.current() is None  # no process group: training stays single-process
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="not started by torchrun .*torchrun --nproc-per-node"):
        distributed.init()
    for var, value in (("RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "1")):
        monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match="NCCL"):
        distributed.init("nccl")


def test_more_processes_than_positives_is_refused_before_any_collective(board):
    from contrec.training.distributed import World
    from contrec.errors import ConfigError
    from contrec.training import TrainingConfig, train_two_tower

    towers = [IdEncoder(board.n_users, DIM), IdEncoder(board.n_items, DIM)]
    config = TrainingConfig(epochs=1, batch_size=B, lr=0.01, n_negatives=N_NEG, temperature=TEMPERATURE, patience=1)
    with pytest.raises(ConfigError, match="cannot be shared by 1000000 processes"):
        train_two_tower(*towers, get_similarity("cosine"), get_sampler("uniform").fit(board), board, config,
                        world=World(0, 10**6, "gloo"))
