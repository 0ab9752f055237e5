"""Projection head: what the head costs or buys, and which output retrieval should use.

Three models on the standard protocol (contrec.evaluation.protocol: ratings ≥ 4, users with ≥ 5
positives, per-user random 80/20 split per seed, full ranking, train items excluded):

- ``no head`` — the default model (ID towers, cosine, τ 0.2);
- ``head, serve head`` — the same towers followed by an MLP head Linear(64, 128) → ReLU →
  Linear(128, 64) on both sides; the loss sees the head output and so does retrieval;
- ``head, serve tower`` — the same training, but retrieval uses the towers' outputs
  before the head (the SimCLR habit of keeping the pre-head representation).

Each is early-stopped on a 20 % carve of the training split and refitted with that epoch
count on the whole split; NDCG@20 and Recall@20 on the test split, fit seconds.

    CONTREC_DATA=../shared/datasets python benchmarks/projection.py --seeds 0 1 2
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import environment, mean_std, pin_threads, publish  # noqa: E402
from _common import parser as common_parser  # noqa: E402

import contrec  # noqa: E402
from contrec.evaluation.protocol import EvaluationProtocol, protocol_split  # noqa: E402

K = EvaluationProtocol().headline_k
VARIANTS = {
    "no head": {},
    "head, serve head": {"projection": 128, "serve_from": "head"},
    "head, serve tower": {"projection": 128, "serve_from": "tower"},
}


def run(name: str, params: dict[str, Any], train: contrec.Interactions, test: contrec.Interactions, seed: int,
        threads: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    fit, carve = contrec.split_random(train, test_size=0.2, seed=seed)
    probe = contrec.ContrastiveRecommender(seed=seed, threads=threads, verbose=False, **params).fit(fit, carve)
    best = next(r for r in probe.history_ if r.get("best"))
    model = contrec.ContrastiveRecommender(seed=seed, threads=threads, verbose=False, epochs=best["epoch"],
                                           **params).fit(train)
    fit_s = time.perf_counter() - t0
    table = contrec.evaluate(model, train, test, k=K)
    values = dict(zip(table["metric"], table["value"]))
    return {"seed": seed, "variant": name, "params": params, "epochs": best["epoch"],
            "validation": best["validation"], f"ndcg@{K}": values["ndcg"], f"recall@{K}": values["recall"],
            "fit_s": fit_s, "diagnostics": model.diagnostics_}


def markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    lines = [f"### Projection head on {result['dataset']} (seeds {', '.join(map(str, result['seeds']))}; "
             "mean ± std)", "",
             f"| variant | NDCG@{K} | Recall@{K} | validation NDCG@{K} | epochs | effective rank | fit s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in VARIANTS:
        rs = [r for r in rows if r["variant"] == name]
        if not rs:
            continue
        lines.append(f"| {name} | {mean_std([r[f'ndcg@{K}'] for r in rs])} | {mean_std([r[f'recall@{K}'] for r in rs])}"
                     f" | {mean_std([r['validation'] for r in rs])} | "
                     f"{sum(r['epochs'] for r in rs) / len(rs):.1f} | "
                     f"{sum(r['diagnostics']['effective_rank'] for r in rs) / len(rs):.1f} | "
                     f"{sum(r['fit_s'] for r in rs) / len(rs):.1f} |")
    lines += ["", f"Threads: {result['threads']}. Fit s includes the early-stopping probe and the refit."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = common_parser(__doc__).parse_args(argv)
    pin_threads(args.threads)
    rows = []
    for seed in args.seeds:
        train, test = protocol_split(args.dataset, seed)
        for name, params in VARIANTS.items():
            rows.append(run(name, params, train, test, seed, args.threads))
            print(f"seed {seed} {name}: NDCG@{K} {rows[-1][f'ndcg@{K}']:.4f}", flush=True)
    result = {"dataset": args.dataset, "seeds": args.seeds, "rows": rows, **environment(args.threads)}
    return publish(f"projection_{args.dataset}", result, markdown(result), Path(args.out))


if __name__ == "__main__":
    main()
