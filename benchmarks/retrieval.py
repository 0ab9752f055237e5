"""Retrieval: recommend-all-users with seen-item filtering, exact FAISS vs IVF vs HNSW.

Catalogues:

- ``ml-100k`` — the item and user vectors of a default contrec model fitted on the
  standard protocol's seed-0 training split (cosine: inner product on unit vectors),
  every user, their training items filtered;
- ``ml-1m-size`` — 6,040 users × 3,700 items, dim 64, the 575k seen pairs of the seeded
  power-law generator (`contrec.data.synthetic`), clustered unit vectors (see below): the
  issue's "recommend-all for 6k users × 3.7k items" case;
- ``synthetic-100k`` / ``synthetic-1m`` — 100,000 / 1,000,000 items, 5,000 query users.

Synthetic vectors are clustered like learned embeddings (not uniform noise, which no
index can organise): 256 cluster centres on the unit sphere, each vector a centre plus
Gaussian noise (σ 0.6 per dimension before normalising), unit length; users the same
way; each user has 50 seen items drawn at random, filtered from their results.

For each index the table gives the build time, the search time for all queries (top-20,
seen items filtered), queries per second, the speed-up over exact search on the same
catalogue, and recall@20 against the exact top-20. IVF and HNSW are swept over their
query-time knob (nprobe, ef_search); the line per kind that first reaches recall ≥ 0.99
is marked.

    python benchmarks/retrieval.py                      # all catalogues (about 10 min on 2 cores)
    python benchmarks/retrieval.py --catalogues ml-100k ml-1m-size synthetic-100k   # quick subset
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).parent))
from _common import environment, pin_threads, publish  # noqa: E402
from _common import parser as common_parser  # noqa: E402

from contrec.serving.index import FaissIndex  # noqa: E402

K = 20
DIM = 64
SWEEPS = {"ivf": ("nprobe", [4, 8, 16, 32, 64]), "hnsw": ("ef_search", [32, 64, 128, 256])}


def clustered(n: int, rng: np.random.Generator, centres: np.ndarray, noise: float = 0.6) -> np.ndarray:
    x = centres[rng.integers(0, len(centres), n)] + rng.normal(0.0, noise / np.sqrt(DIM), (n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def random_seen(n_users: int, n_items: int, per_user: int, rng: np.random.Generator) -> sp.csr_matrix:
    cols = rng.integers(0, n_items, (n_users, per_user))
    rows = np.repeat(np.arange(n_users), per_user)
    seen = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols.ravel())), shape=(n_users, n_items))
    seen.sum_duplicates()
    return seen


def catalogue(name: str, seed: int) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """(user vectors, item vectors, seen matrix) for a catalogue name."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(256, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    if name == "ml-100k":
        import contrec
        from contrec.evaluation.protocol import protocol_split

        train, _ = protocol_split("ml-100k", seed)
        model = contrec.ContrastiveRecommender(seed=seed, verbose=False, threads=2).fit(train)
        return model.user_vectors_, model.item_vectors_, model.seen_
    if name == "ml-1m-size":
        from contrec.data.synthetic import synthetic_interactions

        data = synthetic_interactions(6040, 3700, 575_000, seed=seed)
        seen = data.matrix.copy()
        seen.data[:] = 1.0
        return clustered(6040, rng, centres), clustered(3700, rng, centres), seen
    n_items = {"synthetic-100k": 100_000, "synthetic-1m": 1_000_000}[name]
    return clustered(5000, rng, centres), clustered(n_items, rng, centres), random_seen(5000, n_items, 50, rng)


def measure(index: FaissIndex, users: np.ndarray, items: np.ndarray, seen: sp.csr_matrix
            ) -> tuple[float, float, np.ndarray]:
    t0 = time.perf_counter()
    index.build(items)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ids, _ = index.search(users, K, seen)
    return build_s, time.perf_counter() - t0, ids


def recall(ids: np.ndarray, exact: np.ndarray) -> float:
    # per row: share of the exact top-k found (rows are id sets; -1 padding never matches)
    rows = np.arange(len(ids))[:, None]
    keys_exact = np.sort((rows * (exact.max() + 2) + exact).ravel())
    keys = (rows * (exact.max() + 2) + ids).ravel()
    pos = np.clip(np.searchsorted(keys_exact, keys), 0, len(keys_exact) - 1)
    hits = (keys_exact[pos] == keys) & (ids.ravel() >= 0)
    return float(hits.sum() / exact.size)


def run_catalogue(name: str, seed: int, threads: int) -> list[dict[str, Any]]:
    users, items, seen = catalogue(name, seed)
    base = {"catalogue": name, "items": int(len(items)), "queries": int(len(users)), "dim": int(items.shape[1])}
    flat = FaissIndex("ip", threads=threads)
    build_s, search_s, exact = measure(flat, users, items, seen)
    t0 = time.perf_counter()
    flat.search(users, K)  # the same search without filtering: the floor filtering is measured against
    unfiltered_s = time.perf_counter() - t0
    rows = [{**base, "kind": "exact", "setting": "", "build_s": build_s, "search_s": search_s,
             "qps": len(users) / search_s, "speedup": 1.0, "recall": 1.0, "unfiltered_s": unfiltered_s}]
    print(f"{name}: exact {search_s:.3f}s (unfiltered {unfiltered_s:.3f}s)", flush=True)
    for kind, (knob, values) in SWEEPS.items():
        built = FaissIndex("ip", threads=threads, kind=kind, seed=seed)
        t0 = time.perf_counter()
        built.build(items)
        build_s = time.perf_counter() - t0
        for value in values:  # the query-time knob changes without rebuilding
            setattr(built, knob, value)
            if kind == "ivf":
                built._index.nprobe = min(value, built._index.nlist)
            t0 = time.perf_counter()
            ids, _ = built.search(users, K, seen)
            search_s = time.perf_counter() - t0
            rows.append({**base, "kind": kind, "setting": f"{knob}={value}", "build_s": build_s,
                         "search_s": search_s, "qps": len(users) / search_s, "speedup": rows[0]["search_s"] / search_s,
                         "recall": recall(ids, exact)})
            print(f"{name}: {kind} {knob}={value} {search_s:.3f}s recall {rows[-1]['recall']:.4f}", flush=True)
    return rows


def markdown(result: dict[str, Any]) -> str:
    lines = [f"### Recommend-all retrieval, top-{K}, seen items filtered ({result['threads']} threads)", "",
             "| catalogue | items | queries | index | setting | build s | search s | queries/s | speed-up vs exact | "
             f"recall@{K} |", "|---|---:|---:|---|---|---:|---:|---:|---:|---:|"]
    for name in dict.fromkeys(r["catalogue"] for r in result["rows"]):
        rows = [r for r in result["rows"] if r["catalogue"] == name]
        first = {}
        for r in rows:
            if r["kind"] != "exact" and r["recall"] >= 0.99 and r["kind"] not in first:
                first[r["kind"]] = r["setting"]
        for r in rows:
            mark = " ✓" if first.get(r["kind"]) == r["setting"] and r["kind"] != "exact" else ""
            lines.append(f"| {name} | {r['items']:,} | {r['queries']:,} | {r['kind']} | {r['setting']}{mark} | "
                         f"{r['build_s']:.2f} | {r['search_s']:.3f} | {r['qps']:,.0f} | {r['speedup']:.1f}× | "
                         f"{r['recall']:.4f} |")
    lines += ["", "Exact search with seen items filtered against the same search unfiltered (FAISS flat, no "
              "exclusion) — what filtering costs:", ""]
    for r in result["rows"]:
        if r["kind"] == "exact" and "unfiltered_s" in r:
            lines.append(f"- {r['catalogue']}: {r['search_s']:.3f} s vs {r['unfiltered_s']:.3f} s "
                         f"(**{r['search_s'] / r['unfiltered_s']:.1f}×**)")
    lines += ["", "✓: the first setting of that index reaching recall@20 ≥ 0.99 against exact search. "
              f"Versions: {result['versions']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common_parser(__doc__)
    p.add_argument("--catalogues", nargs="+", default=["ml-100k", "ml-1m-size", "synthetic-100k", "synthetic-1m"])
    args = p.parse_args(argv)
    pin_threads(args.threads)
    rows: list[dict[str, Any]] = []
    for name in args.catalogues:
        rows += run_catalogue(name, args.seeds[0], args.threads)
    result = {"rows": rows, "seed": args.seeds[0], **environment(args.threads)}
    return publish("retrieval", result, markdown(result), Path(args.out))


if __name__ == "__main__":
    main()
