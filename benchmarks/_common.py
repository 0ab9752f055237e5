"""Helpers shared by the benchmarks: environment record, thread pinning, result files."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from contrec.runtime.artifact import atomic_write

RESULTS = Path(__file__).parent / "results"


_PINNED = contextlib.ExitStack()  # held for the whole benchmark process


def pin_threads(threads: int) -> None:
    """Same thread count for torch, FAISS and BLAS, so contestants are compared fairly (contrec's
    one pinning context, entered for the rest of the process)."""
    from contrec.runtime.threads import pinned_threads

    _PINNED.enter_context(pinned_threads(threads, blas=True))


def environment(threads: int) -> dict[str, Any]:
    import faiss
    import implicit
    import torch

    import contrec

    return {
        "threads": threads,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpu_count": os.cpu_count()},
        "versions": {"contrec": contrec.__version__, "torch": torch.__version__, "faiss": faiss.__version__,
                     "implicit": implicit.__version__, "numpy": np.__version__},
    }


def mean_std(values: Sequence[float], digits: int = 4) -> str:
    v = np.asarray(values, dtype=np.float64)
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def write(name: str, result: dict[str, Any], markdown: str, out: Path = RESULTS) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / f"{name}.json", lambda fh: fh.write(json.dumps(result, indent=2).encode("utf-8")))
    atomic_write(out / f"{name}.md", lambda fh: fh.write(markdown.encode("utf-8")))


def publish(name: str, result: dict[str, Any], markdown: str, out: Path = RESULTS,
            plot: Callable[[dict[str, Any], Path], None] | None = None) -> dict[str, Any]:
    """Write ``name``.json / .md (and with ``plot`` ``name``.png) under ``out``, print the table, return ``result``."""
    write(name, result, markdown, out)
    if plot is not None:
        plot(result, out / f"{name}.png")
    print(markdown)
    return result


def parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every benchmark takes: dataset, seeds, threads, output folder."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(RESULTS))
    return p


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> None:
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format=Path(path).suffix.lstrip(".") or "png"))
    pyplot().close(fig)
