"""Scale: how training and evaluation cost grow with the number of interactions.

Seeded power-law logs from `contrec.data.synthetic` at 1M, 5M and 25M interactions, shaped
like MovieLens-25M (about 150 positives per user, 420 per item: 25M → 167k users × 60k
items; item exponent 0.8, user exponent 0.6, 20 taste clusters). Each size runs in its own
process, so its peak memory (RSS, from the kernel's accounting of that process) is its
own. Per size: generation, a per-user random 80/20 split, **one training epoch** of the
default model (dim 64, cosine, uniform sampler, 1,024 shared negatives per batch of 1,024
plus in-batch, logQ, masking) with dense Adam and with ``optimizer="sparse-adam"`` (lazy
row-wise updates of the tables: dense Adam touches every row every step, a cost that grows
with users + items per step, so quadratically over an epoch), and **evaluation** (exact FAISS top-20 for every test user,
training items filtered, streamed through the index in batches of users — no
users × items matrix exists anywhere).

    python benchmarks/scale.py                     # 1M, 5M, 25M, both optimizers (about 40 min on 2 cores)
    python benchmarks/scale.py --sizes 1000000 --optimizers sparse-adam   # quick
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import environment, pin_threads, write  # noqa: E402
from _common import parser as common_parser  # noqa: E402

PER_USER, PER_ITEM = 150, 420


def worker(size: int, optimizer: str, threads: int, seed: int) -> dict[str, Any]:
    pin_threads(threads)
    import contrec
    from contrec.data.synthetic import synthetic_interactions

    t0 = time.perf_counter()
    data = synthetic_interactions(max(size // PER_USER, 10), max(size // PER_ITEM, 10), size, seed=seed)
    gen_s = time.perf_counter() - t0
    train, test = contrec.split_random(data, test_size=0.2, seed=seed)
    model = contrec.ContrastiveRecommender(epochs=1, seed=seed, threads=threads, verbose=False, optimizer=optimizer)
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0
    epoch_s = model.history_[0]["seconds"]
    t0 = time.perf_counter()
    table = contrec.evaluate(model, train, test, k=20)
    eval_s = time.perf_counter() - t0
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    return {"interactions": size, "optimizer": optimizer, "users": data.n_users, "items": data.n_items, "train": len(train),
            "generate_s": gen_s, "epoch_s": epoch_s, "fit_s": fit_s, "eval_s": eval_s,
            "eval_users": int(table.attrs["n_users"]), "train_per_s": len(train) / epoch_s,
            "ndcg@20": float(table.query("metric == 'ndcg'")["value"].iloc[0]), "peak_rss_mib": rss_mib}


def markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    lines = [f"### Scale on synthetic power-law logs ({result['threads']} threads; one epoch; exact evaluation)", "",
             "| interactions | users | items | train positives | optimizer | epoch s | train positives/s "
             "| evaluation s (users) | peak RSS MiB | NDCG@20 after 1 epoch |",
             "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['interactions']:,} | {r['users']:,} | {r['items']:,} | {r['train']:,} | "
                     f"{r.get('optimizer', 'adam')} | {r['epoch_s']:.1f} | {r['train_per_s']:,.0f} | "
                     f"{r['eval_s']:.1f} ({r['eval_users']:,}) | {r['peak_rss_mib']:,.0f} | {r['ndcg@20']:.4f} |")
    for optimizer in dict.fromkeys(r.get("optimizer", "adam") for r in rows):
        series = [r for r in rows if r.get("optimizer", "adam") == optimizer]
        if len(series) < 2:
            continue
        x = np.log([r["train"] for r in series])
        for key, label in (("epoch_s", "epoch time"), ("eval_s", "evaluation time"), ("peak_rss_mib", "peak RSS")):
            slope = np.polyfit(x, np.log([r[key] for r in series]), 1)[0]
            lines.append(f"\nGrowth of {label} ({optimizer}): ∝ interactions^{slope:.2f} (log-log slope; 1 = linear).")
    lines += ["", "Evaluation ranks the whole catalogue for every test user: users and items both grow "
              "with the log here, so its work grows ∝ interactions² by nature (exact search; an HNSW index, "
              "`index=\"hnsw\"`, makes it sub-linear in items)."]
    lines += ["", f"Versions: {result['versions']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common_parser(__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000, 25_000_000])
    p.add_argument("--optimizers", nargs="+", default=["sparse-adam", "adam"], choices=["adam", "sparse-adam"])
    p.add_argument("--optimizer", default="adam", help=argparse_hidden())
    p.add_argument("--worker", type=int, help=argparse_hidden())
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.optimizer, args.threads, args.seeds[0])))
        return {}
    rows = []
    for optimizer in args.optimizers:
        for size in args.sizes:
            out = subprocess.run([sys.executable, __file__, "--worker", str(size), "--optimizer", optimizer,
                                  "--threads", str(args.threads), "--seeds", str(args.seeds[0])],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"{size:,} {optimizer}: epoch {rows[-1]['epoch_s']:.1f}s, eval {rows[-1]['eval_s']:.1f}s, "
                  f"RSS {rows[-1]['peak_rss_mib']:.0f} MiB", flush=True)
            result = {"rows": rows, "seed": args.seeds[0], **environment(args.threads)}
            md = markdown(result)
            write("scale", result, md, Path(args.out))  # after every size: a long run keeps what it measured
    print(md)
    return result


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
