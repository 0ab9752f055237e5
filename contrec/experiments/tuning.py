"""Which settings each contestant tries: trial 1 its defaults, then distinct draws from its search space."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Mapping

import numpy as np

from contrec.experiments.config import Contestant
from contrec.experiments.fits import constructor_defaults, with_overrides

__all__ = ["trial_settings", "short_settings", "best_trial"]


def trial_settings(contestant: Contestant, trials: int, seed: int) -> list[dict[str, Any]]:
    """Trial 1 is the defaults; the rest are distinct draws from the search space.

    Draws are compared after filling in constructor defaults, so a draw that equals the
    defaults (EASE's l2 = 250 among its grid) does not spend a trial.
    """
    overrides: list[dict[str, Any]] = [{}]
    space = contestant.space
    if trials > 1 and space:
        keys = sorted(space)
        sizes = [len(space[k]) for k in keys]
        total = int(np.prod(sizes))
        name_seed = int.from_bytes(hashlib.sha256(contestant.name.encode()).digest()[:4], "little")
        rng = np.random.default_rng([seed, name_seed])
        defaults = constructor_defaults(contestant)

        def resolved(combo: Mapping[str, Any]) -> str:
            settings = {**defaults, **with_overrides(contestant.params, combo)}
            if contestant.is_contrec and settings.get("temperature") is None:
                # τ None means the kernel's own default: a draw of that value is the defaults again
                from contrec.nn.similarity import get_similarity

                kernel = get_similarity(settings["similarity"], **(settings.get("similarity_params") or {}))
                settings["temperature"] = kernel.default_temperature
            return json.dumps(settings, sort_keys=True, default=str)

        seen = {resolved({})}
        picks = rng.permutation(total) if total <= 1_000_000 else rng.integers(0, total, 4 * trials)
        for flat in picks:
            if len(overrides) >= trials:
                break
            combo = {k: space[k][i] for k, i in zip(keys, np.unravel_index(int(flat), sizes))}
            key = resolved(combo)
            if key not in seen:
                seen.add(key)
                overrides.append(combo)
    return [with_overrides(contestant.params, o) for o in overrides]

def short_settings(params: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    changed = {k: v for k, v in params.items() if defaults.get(k) != v}
    return json.dumps(changed, sort_keys=True, default=str) if changed else "its defaults"


def best_trial(records: list[dict[str, Any]], contestant: Contestant) -> tuple[int, dict[str, Any]] | None:
    """The best-scoring trial (ties: the earlier) and the settings to test with; None when every trial failed.

    contrec early-stopped on the carve: its best epoch becomes the number of epochs of the test fit,
    which therefore carves nothing of its own (``validation_size=0``).
    """
    scored = [i for i, r in enumerate(records) if np.isfinite(r["score"])]
    if not scored:
        return None
    best = max(scored, key=lambda i: (records[i]["score"], -i))
    params = copy.deepcopy(records[best]["params"])
    if contestant.is_contrec and records[best]["best_epoch"]:
        params["epochs"] = int(records[best]["best_epoch"])
        params["validation_size"] = 0.0
    return best, params
