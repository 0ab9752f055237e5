"""Every kernel with its defaults, as a new user would try it: only ``similarity=`` changed.

The standard protocol (contrec.evaluation.protocol: ratings ≥ 4, users with ≥ 5 positives,
per-user random 80/20 split per seed, full ranking, train items excluded); each model is
``ContrastiveRecommender(similarity=name)`` with every other setting at its default —
temperature included, which is now the kernel's own (``Similarity.default_temperature``,
chosen on validation carves of the training splits, never on a test split). ``--learned``
adds each kernel with ``learn_temperature=True`` (τ trained from the kernel's default).
Reported: NDCG@20 and its ratio to cosine's on the same seeds, fit seconds.

    CONTREC_DATA=../shared/datasets python benchmarks/kernels.py --dataset ml-100k --seeds 0 1 2
    CONTREC_DATA=../shared/datasets python benchmarks/kernels.py --dataset ml-latest-small --seeds 0 1 2
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import environment, mean_std, pin_threads, publish  # noqa: E402
from _common import parser as common_parser  # noqa: E402

import contrec  # noqa: E402
from contrec.evaluation.protocol import EvaluationProtocol, protocol_split  # noqa: E402
from contrec.nn.similarity import SIMILARITIES  # noqa: E402

K = EvaluationProtocol().headline_k


def run(kernel: str, learned: bool, train: contrec.Interactions, test: contrec.Interactions, seed: int,
        threads: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    model = contrec.ContrastiveRecommender(similarity=kernel, learn_temperature=learned, seed=seed,
                                           threads=threads, verbose=False).fit(train)
    fit_s = time.perf_counter() - t0
    table = contrec.evaluate(model, train, test, k=K)
    values = dict(zip(table["metric"], table["value"]))
    return {"seed": seed, "kernel": kernel, "learned": learned, "temperature": model.temperature_,
            f"ndcg@{K}": values["ndcg"], f"recall@{K}": values["recall"], "fit_s": fit_s}


def markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    cosine = {r["seed"]: r[f"ndcg@{K}"] for r in rows if r["kernel"] == "cosine" and not r["learned"]}
    lines = [f"### Kernels with their defaults on {result['dataset']} (seeds "
             f"{', '.join(map(str, result['seeds']))}; mean ± std)", "",
             f"| kernel | τ | NDCG@{K} | × cosine | Recall@{K} | fit s |", "|---|---:|---:|---:|---:|---:|"]
    for kernel in SIMILARITIES:
        for learned in (False, True):
            rs = [r for r in rows if r["kernel"] == kernel and r["learned"] == learned]
            if not rs:
                continue
            ratio = np.mean([r[f"ndcg@{K}"] / cosine[r["seed"]] for r in rs])
            tau = f"{np.mean([r['temperature'] for r in rs]):.3g}" + (" (learned)" if learned else "") + \
                (" †" if any("kept_from" in r for r in rs) else "")
            lines.append(f"| {kernel} | {tau} | {mean_std([r[f'ndcg@{K}'] for r in rs])} | {ratio:.3f} | "
                         f"{mean_std([r[f'recall@{K}'] for r in rs])} | {np.mean([r['fit_s'] for r in rs]):.1f} |")
    lines += ["", f"Threads: {result['threads']}. Every setting but `similarity` (and `learn_temperature`) at its "
              "default; × cosine is the mean over seeds of the ratio on the same split."]
    if any("kept_from" in r for r in rows):
        check = {True: "cosine, rerun now, reproduced its earlier NDCG exactly",
                 False: "but cosine, rerun now, did NOT reproduce its earlier NDCG exactly"}[bool(result["cosine_reproduced"])]
        lines += ["", "† rows kept from the previous run (`--keep`): that kernel's defaults did not change since, and "
                  f"a fit is deterministic ({check}); their fit seconds are that run's, with other fits beside them."]
    return "\n".join(lines) + "\n"


def kept_rows(path: Path, args: Any) -> list[dict[str, Any]]:
    """Rows of an earlier run for kernels whose defaults did not change since (cosine is always rerun)."""
    import json

    previous = json.loads(path.read_text())
    if previous["seeds"] != args.seeds:
        raise SystemExit(f"--keep: {path} has seeds {previous['seeds']}, not {args.seeds}")
    run_now = {"cosine", *args.kernels}
    return [{**r, "kept_from": "previous run"} for r in previous["rows"] if r["kernel"] not in run_now or
            (r["kernel"] == "cosine" and not r["learned"])]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common_parser(__doc__)
    parser.add_argument("--kernels", nargs="+", default=list(SIMILARITIES))
    parser.add_argument("--learned", nargs="*", default=[], help="kernels also run with learn_temperature=True")
    parser.add_argument("--keep", action="store_true",
                        help="keep the previous result's rows of the kernels not run now (same seeds), marked as such")
    args = parser.parse_args(argv)
    pin_threads(args.threads)
    rows = kept_rows(Path(args.out) / f"kernels_{args.dataset}.json", args) if args.keep else []
    t0 = time.perf_counter()
    for seed in args.seeds:
        train, test = protocol_split(args.dataset, seed)
        for kernel in ["cosine"] + [k for k in args.kernels if k != "cosine"]:
            for learned in [False] + ([True] if kernel in args.learned else []):
                rows.append(run(kernel, learned, train, test, seed, args.threads))
                print(f"seed {seed} {kernel}{' learned τ' if learned else ''}: NDCG@{K} "
                      f"{rows[-1][f'ndcg@{K}']:.4f} (τ {rows[-1]['temperature']:.3g}, "
                      f"{rows[-1]['fit_s']:.0f}s)", flush=True)
    # the previous cosine rows only served to check that an unchanged kernel reproduces its numbers
    earlier = {r["seed"]: r[f"ndcg@{K}"] for r in rows if r.get("kept_from") and r["kernel"] == "cosine"}
    rows = [r for r in rows if not (r.get("kept_from") and r["kernel"] == "cosine")]
    reproduced = all(r[f"ndcg@{K}"] == earlier.get(r["seed"]) for r in rows if r["kernel"] == "cosine"
                     and not r["learned"]) if earlier else None
    result = {"dataset": args.dataset, "cosine_reproduced": reproduced, "seeds": args.seeds, "rows": rows, "wall_s": time.perf_counter() - t0,
              **environment(args.threads)}
    return publish(f"kernels_{args.dataset}", result, markdown(result), Path(args.out))


if __name__ == "__main__":
    main()
