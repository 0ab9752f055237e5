"""Multi-fidelity tuning: successive halving over training epochs, one contestant and seed at a time.

Every setting of a contrec contestant first trains ``min_epochs`` epochs on the seed's
validation carve; the best ``1/eta`` of them (at least one) continue to ``eta`` times as many
epochs, and so on, until the survivors train the contestant's full epoch budget with early
stopping (Jamieson & Talwalkar 2016; ASHA, Li et al. 2020, is the asynchronous form of the
same rule). A promoted setting *continues* from the checkpoint its last rung wrote — the
continuation is bit-identical to an uninterrupted fit of the longer budget — so promotion
costs only the extra epochs. Settings without an epoch budget (the baselines: ALS, EASE, …
are cheap to fit) and ``search="full"`` train every setting to the end, as before.

Example:
    >>> halving_rungs(6, max_epochs=20, min_epochs=3, eta=3)
    [(3, 6), (9, 2), (20, 1)]
    >>> halving_rungs(6, max_epochs=20, min_epochs=3, eta=3, full=True)
    [(20, 6)]
    >>> promoted([0.30, 0.31, float("nan"), 0.29, 0.33, 0.32], keep=2)
    [4, 5]
"""

from __future__ import annotations

import math
from typing import Sequence

__all__ = ["halving_rungs", "promoted", "SEARCHES"]

SEARCHES = ("halving", "full")


def halving_rungs(n_trials: int, max_epochs: int, min_epochs: int, eta: int, full: bool = False
                  ) -> list[tuple[int, int]]:
    """The rungs of one search: (epochs trained by the end of the rung, settings in it).

    The first rung holds every setting; each next one keeps ``⌊n/eta⌋`` (at least one) and
    trains ``eta`` times as long, capped at ``max_epochs``. A rung with one setting left goes
    straight to ``max_epochs``: there is nothing left to compare it with.
    """
    if full or n_trials <= 1 or min_epochs >= max_epochs:
        return [(max_epochs, n_trials)]
    rungs = [(min_epochs, n_trials)]
    while rungs[-1][0] < max_epochs:
        epochs, n = rungs[-1]
        keep = max(1, n // eta)
        rungs.append((max_epochs if keep == 1 else min(max_epochs, epochs * eta), keep))
    return rungs


def promoted(scores: Sequence[float], keep: int) -> list[int]:
    """Positions of the ``keep`` best scores (a failed trial's NaN never goes on; ties: the earlier), in order."""
    finite = [i for i, s in enumerate(scores) if math.isfinite(s)]
    best = sorted(finite, key=lambda i: (-scores[i], i))[:keep]
    return sorted(best)
