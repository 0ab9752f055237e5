"""Time to quality: validation NDCG@20 against training seconds, contrec vs implicit ALS.

Standard protocol split (seed 0), then a 20 % per-user validation carve of the training
split. In the same run:

- **implicit ALS** with the comparison's tuned settings (128 factors, regularization 30,
  alpha 5, 30 iterations); after every iteration a callback scores the current factors;
- **contrec** defaults (20 epochs, patience high enough that all run), scored after
  every epoch.

Only training time counts: scoring happens outside the clock for both (contrec's
per-epoch ``seconds``; ALS's iteration times as its callback reports them, minus the
scoring). Reported: ALS's final validation NDCG and fit time, contrec's best, and the
training seconds contrec needs to first reach ALS's final NDCG (and the ratio to ALS's
fit time). Plot: ``time_to_quality.png``.

    CONTREC_DATA=../shared/datasets python benchmarks/time_to_quality.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import environment, pin_threads, pyplot, save_figure, write  # noqa: E402
from _common import parser as common_parser  # noqa: E402

import contrec  # noqa: E402
from contrec.training.validation import vectors_ndcg  # noqa: E402
from contrec.experiments.config import BASELINE_DEFAULTS  # noqa: E402
from contrec.evaluation.protocol import protocol_split  # noqa: E402

K = 20


def als_curve(fit: contrec.Interactions, val: contrec.Interactions, threads: int, seed: int) -> list[dict[str, float]]:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    s = BASELINE_DEFAULTS["als"]
    model = AlternatingLeastSquares(factors=s["factors"], regularization=s["regularization"], alpha=s["alpha"],
                                    iterations=s["iterations"], random_state=seed, num_threads=threads)
    curve: list[dict[str, float]] = []
    spent = {"scoring": 0.0}
    started = time.perf_counter()

    def callback(iteration: int, _elapsed: float, _loss: float) -> None:
        now = time.perf_counter()
        trained = now - started - spent["scoring"]  # the clock minus all earlier scoring
        score = vectors_ndcg(np.asarray(model.user_factors), np.asarray(model.item_factors), "ip", fit, val, K)
        spent["scoring"] += time.perf_counter() - now
        curve.append({"step": iteration + 1, "seconds": trained, "validation": score})

    with threadpool_limits(1, "blas"):
        model.fit(fit.matrix.astype(np.float32).tocsr(), show_progress=False, callback=callback)
    return curve


def contrec_curve(fit: contrec.Interactions, val: contrec.Interactions, threads: int, seed: int
                  ) -> list[dict[str, float]]:
    model = contrec.ContrastiveRecommender(seed=seed, threads=threads, verbose=False, patience=100).fit(fit, val)
    seconds = np.cumsum([r["seconds"] for r in model.history_])
    return [{"step": r["epoch"], "seconds": float(t), "validation": r["validation"]}
            for r, t in zip(model.history_, seconds)]


def run(dataset: str, threads: int, seed: int) -> dict[str, Any]:
    train, _ = protocol_split(dataset, seed)
    fit, val = contrec.split_random(train, test_size=0.2, seed=seed)
    als = als_curve(fit, val, threads, seed)
    ours = contrec_curve(fit, val, threads, seed)
    target = als[-1]["validation"]
    reached = next((p["seconds"] for p in ours if p["validation"] >= target), None)
    near = next((p["seconds"] for p in ours if p["validation"] >= 0.97 * target), None)
    return {"contrec_reaches_97pct_s": near,"dataset": dataset, "als": als, "contrec": ours, "als_final": target, "als_seconds": als[-1]["seconds"],
            "contrec_best": max(p["validation"] for p in ours), "contrec_seconds": ours[-1]["seconds"],
            "contrec_reaches_als_s": reached,
            "ratio": None if reached is None else reached / als[-1]["seconds"]}


def markdown(result: dict[str, Any]) -> str:
    lines = [f"### Time to quality (validation NDCG@{K}; training seconds only; {result['threads']} threads)", "",
             f"| dataset | ALS final NDCG@{K} | ALS fit s | contrec best NDCG@{K} | contrec 20 epochs s | "
             "contrec reaches ALS's final after | ratio to ALS fit | reaches 97 % of it after |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["runs"]:
        reached = "never" if r["contrec_reaches_als_s"] is None else f"{r['contrec_reaches_als_s']:.1f} s"
        ratio = "–" if r["ratio"] is None else f"{r['ratio']:.1f}×"
        near = r.get("contrec_reaches_97pct_s")
        near_text = "never" if near is None else f"{near:.1f} s ({near / r['als_seconds']:.0f}× ALS)"
        lines.append(f"| {r['dataset']} | {r['als_final']:.4f} | {r['als_seconds']:.2f} | {r['contrec_best']:.4f} | "
                     f"{r['contrec_seconds']:.1f} | {reached} | {ratio} | {near_text} |")
    lines += ["", f"Versions: {result['versions']}."]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(result["runs"]), figsize=(5 * len(result["runs"]), 3.6), dpi=120, squeeze=False)
    for ax, r in zip(axes[0], result["runs"]):
        for name, style in (("als", "o-"), ("contrec", "s-")):
            pts = r[name]
            ax.plot([p["seconds"] for p in pts], [p["validation"] for p in pts], style, ms=3,
                    label="implicit ALS" if name == "als" else "contrec")
        ax.axhline(r["als_final"], color="grey", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("training seconds (log)")
        ax.set_ylabel(f"validation NDCG@{K}")
        ax.set_title(r["dataset"])
        ax.legend()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common_parser(__doc__)
    p.add_argument("--datasets", nargs="+", default=["ml-100k", "ml-latest-small"])
    args = p.parse_args(argv)
    pin_threads(args.threads)
    runs = [run(name, args.threads, args.seeds[0]) for name in args.datasets]
    result = {"runs": runs, "seed": args.seeds[0], **environment(args.threads)}
    md = markdown(result)
    out = Path(args.out)
    write("time_to_quality", result, md, out)
    plot(result, out / "time_to_quality.png")
    print(md)
    return result


if __name__ == "__main__":
    main()
