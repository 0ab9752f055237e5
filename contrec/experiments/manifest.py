"""What a comparison's manifest records: command, versions, seeds, data digests, config hash, machine, times."""

from __future__ import annotations

import datetime as _dt
import os
import platform
from pathlib import Path
from typing import Any

from contrec.experiments.config import ExperimentConfig
from contrec.experiments.prepare import Prepared

__all__ = ["build_manifest", "versions"]


def versions() -> dict[str, str]:
    from importlib import metadata

    import contrec

    out = {"contrec": contrec.__version__, "python": platform.python_version()}
    for dist in ("torch", "faiss-cpu", "implicit", "numpy", "scipy", "pandas", "matplotlib", "tqdm", "pyyaml"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out

def build_manifest(config: ExperimentConfig, prepared: Prepared, started_at: _dt.datetime, command: str | None,
              wall: dict[str, float], n_cached: int, n_tasks: int) -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    data = prepared.data
    return {
        "command": command,
        "started": started_at.isoformat(timespec="seconds"),
        "versions": versions(),
        "seeds": list(config.seeds),
        "data": {"source": config.data.label, "files_sha256": prepared.files,
                 "interactions_sha256": prepared.fingerprint,
                 "users": data.n_users, "items": data.n_items, "positives": len(data)},
        "config": config.to_dict(),
        "config_sha256": config.hash(),
        "machine": {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
                    "threads": config.threads, "torch_threads": torch.get_num_threads()},
        "wall_seconds": {k: round(v, 2) for k, v in wall.items()},
        "cells": {"total": n_tasks, "from_cache": n_cached},
    }
