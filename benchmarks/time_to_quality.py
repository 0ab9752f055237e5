"""Time to quality: contrec's default fit against a tuned implicit ALS fit, in the same run.

Issue 18's measure, per dataset (the protocol split of one seed; the MovieLens-1M-sized
synthetic log of the throughput table is split 80/20 at random):

- **implicit ALS** with the comparison's tuned settings (128 factors, regularization 30,
  alpha 5, 30 iterations): fit seconds on the training split, test NDCG@20;
- **contrec's previous default** (as it stood when issue 18 was filed: dim 64, 20 fixed epochs,
  no validation carve), fitted here again: its test NDCG@20 is the quality bar (≥ 0.99 × it);
- **contrec's default** (``ContrastiveRecommender()``: its own validation carve, early stopping,
  refit on every positive): wall seconds of ``fit`` and test NDCG@20;
- **contrec's default with** ``precision="bfloat16"`` (the score matmuls in bfloat16);
- **contrec fast**: a spectral start, 6 fixed epochs, no carve, bfloat16 (``FAST``; the epoch
  count chosen on the selection carves, docs/performance.md) — what a user who needs speed can ask for.

The table gives the default's fit time as a multiple of ALS's (target ≤ 10×) and its NDCG as a
multiple of the previous default's (target ≥ 0.99×). Then, on a 20 % validation carve of the
training split, the learning curves — validation NDCG@20 after every ALS iteration and every
contrec epoch (20 epochs, no early stop), training seconds only (scoring is off the clock for
both) — for ``time_to_quality.png``.

    CONTREC_DATA=../shared/datasets python benchmarks/time_to_quality.py
    python benchmarks/time_to_quality.py --datasets synthetic --threads 2
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
from contrec.data.synthetic import synthetic_interactions  # noqa: E402
from contrec.models.baselines import ImplicitALS  # noqa: E402

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


PREVIOUS_DEFAULT: dict[str, Any] = {"dim": 64, "epochs": 20, "validation_size": 0.0}
# fewest epochs within 1 % of the default on both selection carves (docs/performance.md), no carve of its own
FAST: dict[str, Any] = {"init": "spectral", "validation_size": 0.0, "epochs": 6, "precision": "bfloat16"}
CONTRECS: dict[str, dict[str, Any]] = {
    "contrec previous default": PREVIOUS_DEFAULT,
    "contrec default": {},
    "contrec default, bfloat16 matmuls": {"precision": "bfloat16"},
    "contrec fast: spectral start, 6 epochs, bfloat16": FAST,
}


def split(dataset: str, seed: int) -> tuple[contrec.Interactions, contrec.Interactions]:
    if dataset == "synthetic":  # the throughput table's MovieLens-1M-sized log
        return contrec.split_random(synthetic_interactions(6040, 3700, 575_000, seed=seed), test_size=0.2, seed=seed)
    return protocol_split(dataset, seed)


def timed_fit(model: Any, train: contrec.Interactions, test: contrec.Interactions) -> tuple[float, float]:
    """(fit wall seconds, test NDCG@K) of ``model`` fitted on ``train``."""
    started = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - started
    return seconds, float(contrec.evaluate(model, train, test, k=K).set_index("metric").loc["ndcg", "value"])


def run(dataset: str, threads: int, seed: int, curves: bool) -> dict[str, Any]:
    train, test = split(dataset, seed)
    quiet = {"seed": seed, "threads": threads, "verbose": False}
    als_s, als_ndcg = timed_fit(ImplicitALS(**BASELINE_DEFAULTS["als"], threads=threads, seed=seed), train, test)
    rows = [{"model": "implicit ALS (tuned)", "seconds": als_s, "ndcg": als_ndcg}]
    best_epochs = {}
    for name, settings in CONTRECS.items():
        model = contrec.ContrastiveRecommender(**quiet, **settings)
        seconds, ndcg = timed_fit(model, train, test)
        rows.append({"model": name, "seconds": seconds, "ndcg": ndcg, "user_tower": model.user_tower_,
                     "selection": model.selection_})  # which tower the carve kept, and each candidate's score
        best_epochs[name] = model.best_epoch_
    bar = next(row["ndcg"] for row in rows if row["model"] == "contrec previous default")
    for row in rows:
        row["quality_ratio"], row["time_ratio"] = row["ndcg"] / bar, row["seconds"] / als_s
    result: dict[str, Any] = {"dataset": dataset, "rows": rows, "best_epochs": best_epochs}
    if curves:
        fit, val = contrec.split_random(train, test_size=0.2, seed=seed)
        result["als"], result["contrec"] = als_curve(fit, val, threads, seed), contrec_curve(fit, val, threads, seed)
    return result


def markdown(result: dict[str, Any]) -> str:
    lines = [f"### Time to quality (test NDCG@{K}, seed {result['seed']}; fit wall seconds; {result['threads']} threads)",
             "", f"| dataset | model | NDCG@{K} | fit s | × previous default's NDCG (≥ 0.99) | × ALS fit time (≤ 10) |",
             "|---|---|---:|---:|---:|---:|"]
    for r in result["runs"]:
        for row in r["rows"]:
            lines.append(f"| {r['dataset']} | {row['model']} | {row['ndcg']:.4f} | {row['seconds']:.1f} | "
                         f"{row['quality_ratio']:.3f} | {row['time_ratio']:.0f}× |")
    lines += ["", f"Previous default: {PREVIOUS_DEFAULT}; fast: {FAST}; ALS: {BASELINE_DEFAULTS['als']}. "
              f"Versions: {result['versions']}."]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    runs = [r for r in result["runs"] if "als" in r]
    if not runs:
        return
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.6), dpi=120, squeeze=False)
    for ax, r in zip(axes[0], runs):
        for name, style in (("als", "o-"), ("contrec", "s-")):
            pts = r[name]
            ax.plot([p["seconds"] for p in pts], [p["validation"] for p in pts], style, ms=3,
                    label="implicit ALS" if name == "als" else "contrec")
        ax.axhline(r["als"][-1]["validation"], color="grey", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("training seconds (log)")
        ax.set_ylabel(f"validation NDCG@{K}")
        ax.set_title(r["dataset"])
        ax.legend()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common_parser(__doc__)
    p.add_argument("--datasets", nargs="+", default=["ml-100k", "ml-latest-small", "synthetic"],
                   help="MovieLens names and/or 'synthetic' (the MovieLens-1M-sized log)")
    p.add_argument("--no-curves", action="store_true", help="skip the validation curves (the table only)")
    args = p.parse_args(argv)
    pin_threads(args.threads)
    # one tiny fit first, so no timed fit pays the one-off imports (torch's optimizer, scipy.stats: ~2.5 s)
    contrec.ContrastiveRecommender(epochs=1, validation_size=0.0, verbose=False).fit(
        synthetic_interactions(50, 40, 500, seed=0))
    runs = [run(name, args.threads, args.seeds[0], not args.no_curves) for name in args.datasets]
    result = {"runs": runs, "seed": args.seeds[0], **environment(args.threads)}
    md = markdown(result)
    out = Path(args.out)
    write("time_to_quality", result, md, out)
    plot(result, out / "time_to_quality.png")
    print(md)
    return result


if __name__ == "__main__":
    main()
