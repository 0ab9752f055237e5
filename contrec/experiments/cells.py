"""The comparison's cache: every finished fit (a *cell*) stored atomically and reused by a rerun.

A cell is keyed by everything its result depends on (data fingerprint, protocol, threads,
the carve or seed, the model and its settings), so an interrupted comparison resumes where
it stopped and a changed setting never reads a stale result.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from contrec.runtime.artifact import atomic_write

__all__ = ["Cells", "cell_key"]

logger = logging.getLogger("contrec")

_CELL_VERSION = 1


class Cells:
    """Finished fits stored as ``<key>.json`` (+ ``<key>.npz`` per-user arrays), atomically."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> tuple[dict[str, Any], dict[str, np.ndarray] | None] | None:
        if self.folder is None:
            return None
        path = self.folder / f"{key}.json"
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
            arrays = None
            if record.get("has_arrays"):
                with np.load(self.folder / f"{key}.npz", allow_pickle=False) as npz:
                    arrays = {name: npz[name] for name in npz.files}
        except (OSError, ValueError, KeyError) as err:
            logger.warning("cached cell %s is unreadable (%s); running it again", path.name, err)
            return None
        if record.get("version") != _CELL_VERSION or record.get("key") != key:
            return None
        return record, arrays

    def put(self, key: str, record: dict[str, Any], arrays: dict[str, np.ndarray] | None) -> None:
        if self.folder is None:
            return
        record = {**record, "version": _CELL_VERSION, "key": key, "has_arrays": arrays is not None}
        if arrays is not None:
            atomic_write(self.folder / f"{key}.npz", lambda fh: np.savez(fh, **arrays))
        text = json.dumps(record, default=_json_default).encode("utf-8")
        # the JSON last: its presence means the cell is complete
        atomic_write(self.folder / f"{key}.json", lambda fh: fh.write(text))

def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)

def cell_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]
