"""Fit ml-100k (the protocol split) as one process or as every rank of a torchrun launch; rank 0 writes results.

Used by benchmarks/distributed.py and tests/integration/test_distributed.py:

    python -m torch.distributed.run --standalone --nproc-per-node 2 benchmarks/ddp_fit.py --out DIR
    python benchmarks/ddp_fit.py --out DIR           # the same fit in one process

``--keep-checkpoints`` copies every checkpoint the run writes (to resume from any of them
later); the global batch and candidate count stay those of one process: each of W ranks
takes ``--batch-size / W`` rows and draws ``--n-negatives / W``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from scale import PER_ITEM, PER_USER  # the synthetic log's shape: the scale benchmark's


def split(dataset: str, synthetic: int | None = None) -> tuple[Any, Any]:
    """(train, test): the protocol split of ``dataset``, or a seeded synthetic log of ``synthetic``
    interactions split 80/20 at random — the data every contestant of benchmarks/distributed.py sees."""
    import contrec
    from contrec.evaluation.protocol import protocol_split

    if not synthetic:
        return protocol_split(dataset, seed=0)
    from contrec.data.synthetic import synthetic_interactions

    data = synthetic_interactions(synthetic // PER_USER, synthetic // PER_ITEM, synthetic, seed=0)
    return contrec.split_random(data, test_size=0.2, seed=0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--n-negatives", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int)
    p.add_argument("--sampler", default="uniform")
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--synthetic", type=int, help="a seeded power-law log of this many interactions instead "
                                                  "(benchmarks/scale.py's shape), split 80/20 at random")
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--checkpoint-every", type=int, default=0)
    p.add_argument("--keep-checkpoints", action="store_true")
    p.add_argument("--resume")
    args = p.parse_args()

    import contrec
    import contrec.training.checkpoint as training
    from contrec.training import distributed
    world = distributed.init() if distributed.launched_by_torchrun() else None
    size, main_rank = (world.size, world.main) if world else (1, True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.keep_checkpoints and main_rank:
        real_save, kept = training.save_checkpoint, []

        def keep(path, arrays, meta):
            written = real_save(path, arrays, meta)
            kept.append(shutil.copy(written, out / f"ckpt.{len(kept):03d}"))
            return written

        training.save_checkpoint = keep
    train, test = split(args.dataset, args.synthetic)
    params = dict(sampler_params={"rule": "disjoint(genres)"}) if args.sampler == "domain-rule" else {}
    model = contrec.ContrastiveRecommender(
        epochs=args.epochs, batch_size=args.batch_size // size, n_negatives=args.n_negatives // size,
        seed=args.seed, verbose=False, threads=args.threads or max(1, 2 // size), sampler=args.sampler,
        optimizer=args.optimizer, validation_size=0, **params)  # a fixed number of epochs: one process vs several
    checkpoint = out / "run.ckpt" if (args.checkpoint_every or args.keep_checkpoints or args.resume) else None
    t0 = time.perf_counter()
    model.fit(train, checkpoint=checkpoint, checkpoint_every=args.checkpoint_every, resume=args.resume)
    seconds = time.perf_counter() - t0
    if main_rank:
        table = contrec.evaluate(model, train, test, k=20)
        metrics = {m: float(v) for m, k, v in table.itertuples(index=False)}
        np.savez(out / "vectors.npz", users=model.user_vectors_, items=model.item_vectors_)
        (out / "result.json").write_text(json.dumps({
            "processes": size, "fit_seconds": seconds, "metrics": metrics,
            "epoch_seconds": [h["seconds"] for h in model.history_],
            "interactions_per_s": [h["interactions_per_s"] for h in model.history_],
            "history_processes": [h.get("processes", 1) for h in model.history_]}, indent=1))
    distributed.close()


if __name__ == "__main__":
    main()
