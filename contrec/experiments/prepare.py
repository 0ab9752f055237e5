"""A comparison's data: loaded once, eligible users kept, one split per seed, one tuning carve per seed, audited."""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contrec.data.interactions import Interactions
from contrec.evaluation.protocol import EvaluationProtocol
from contrec.experiments.audit import Check, audit_carve, audit_split, raise_on_failures
from contrec.experiments.config import DataSpec, ExperimentConfig

__all__ = ["Prepared", "prepare", "load_data", "sha256_file"]


@dataclass
class Prepared:
    data: Interactions
    splits: dict[int, tuple[Interactions, Interactions]]
    carves: dict[int, tuple[Interactions, Interactions]]
    audit: list[Check]
    files: dict[str, str]
    fingerprint: str
    duplicates: int

def load_data(spec: DataSpec, protocol: EvaluationProtocol, data_dir: "str | os.PathLike[str] | None"
          ) -> tuple[Interactions, dict[str, str], int]:
    from contrec.data import DuplicateRowsWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DuplicateRowsWarning)
        if spec.dataset is not None:
            from contrec.data.movielens import dataset_info, fetch_movielens, load_movielens

            # fetch verifies the files once; loading from that folder need not verify them again,
            # and a digest pinned in the registry is the file's digest after that check
            folder = fetch_movielens(spec.dataset, data_dir)
            data = load_movielens(spec.dataset, folder.parent, min_rating=protocol.min_rating, download=False,
                                  verify=False)
            pinned = dataset_info(spec.dataset).files
            files = {f"{spec.dataset}/{name}": pinned[name] or sha256_file(folder / name) for name in pinned}
        else:
            from contrec.data.interactions import read_interactions
            from contrec.data.readers import read_item_attributes

            path = Path(spec.path or "")
            extra: dict[str, Any] = {k: v for k, v in (("encoding", spec.encoding), ("duplicates", spec.duplicates))
                                     if v is not None}  # else the reader's defaults
            if spec.item_attributes:
                extra["item_attributes"] = read_item_attributes(spec.item_attributes,
                                                                spec.item_attributes_id or spec.item,
                                                                "set data: item_attributes_id", sep=spec.attributes_sep)
            data = read_interactions(path, user=spec.user, item=spec.item, rating=spec.rating,
                                     weight=spec.weight, timestamp=spec.timestamp, names=spec.names,
                                     min_rating=protocol.min_rating if spec.rating else None,
                                     sep={"\\t": "\t", "tab": "\t"}.get(spec.sep or "", spec.sep), **extra)
            files = {path.name: sha256_file(path)}
            if spec.item_attributes:
                files[Path(spec.item_attributes).name] = sha256_file(Path(spec.item_attributes))
    duplicates = 0
    for w in caught:
        if issubclass(w.category, DuplicateRowsWarning):
            words = str(w.message).split(": ", 1)[-1].split()
            duplicates += int(words[0]) if words and words[0].isdigit() else 0
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return data, files, duplicates

def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

def prepare(config: ExperimentConfig, data_dir: "str | os.PathLike[str] | None") -> Prepared:
    from contrec.data.splits import split_random, split_temporal

    protocol = config.protocol
    raw, files, duplicates = load_data(config.data, protocol, data_dir)
    blind = config.weight_blind_contestants if config.data.weight else []
    if blind:
        from contrec.models.contrastive import IgnoredWeightsWarning

        warnings.warn(f"{config.data.label}: the interactions carry weights (e.g. play counts), but "
                      f"{', '.join(blind)} treat{'s' if len(blind) == 1 else ''} every positive alike; "
                      "--positive-weights log1p (or linear, capped; params: {positive_weights: …} in a config file) "
                      "draws heavier positives more often — it helped with ratings as weights and hurt with play "
                      "counts (README, Weights that count)", IgnoredWeightsWarning, stacklevel=3)
    data = protocol.eligible(raw, config.data.label)
    temporal = protocol.split == "temporal"
    splits: dict[int, tuple[Interactions, Interactions]] = {}
    checks: list[Check] = []
    for seed in config.seeds:
        train, test = protocol.split_data(data, seed)
        splits[seed] = (train, test)
        checks += audit_split(train, test, f"seed {seed}", temporal, duplicates)
    carves: dict[int, tuple[Interactions, Interactions]] = {}
    if config.tuning.enabled:
        # every seed is tuned on a carve of its own training split: no seed's test part is ever in the data
        # that chose its settings (one carve reused for all seeds would contain other seeds' test positives)
        for seed in config.seeds:
            train, test = splits[seed]
            fit, validation = (split_temporal(train, config.tuning.validation_size) if temporal
                               else split_random(train, config.tuning.validation_size, config.tuning.seed + seed))
            carves[seed] = (fit, validation)
            checks += audit_carve(fit, validation, test, f"tuning carve (seed {seed})")
    raise_on_failures(checks)
    return Prepared(data, splits, carves, checks, files, data.fingerprint(), duplicates)
