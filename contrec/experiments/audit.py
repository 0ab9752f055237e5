"""Leak audit: checks run on every split before anything is fitted.

A comparison is only as honest as its split. Each check has a status: ``ok``; ``note``
(worth knowing, not a leak: e.g. test items no model can recommend because they never
occur in train); ``fail`` (a leak: the comparison refuses to run).

Checks:
- train ∩ test: a (user, item) pair in both (fail);
- duplicate (user, item) rows in the source file, and the policy that resolved them (note);
- tuning's validation carve ∩ test, and fit part ∩ validation (fail);
- test users with no training positives, test items never seen in train (note);
- temporal splits: training positives newer than the same user's oldest test positive
  (fail), and the share of training positives newer than the earliest test positive of
  any user (note: per-user temporal splits leak global time by design).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from contrec.data.interactions import Interactions
from contrec.errors import DataError

__all__ = ["Check", "audit_split", "raise_on_failures"]


@dataclass(frozen=True)
class Check:
    """One audit line."""

    split: str
    check: str
    value: float
    status: str  # ok | note | fail
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"split": self.split, "check": self.check, "value": self.value, "status": self.status,
                "detail": self.detail}


def _overlap(a: Interactions, b: Interactions) -> int:
    both = a.matrix.astype(bool).multiply(b.matrix.astype(bool))
    return int(both.nnz)


def audit_split(train: Interactions, test: Interactions, split: str, temporal: bool = False,
                duplicates: int = 0) -> list[Check]:
    """The checks above for one (train, test) pair; ``duplicates`` = rows merged while reading."""
    checks = []
    overlap = _overlap(train, test)
    checks.append(Check(split, "train ∩ test pairs", overlap, "fail" if overlap else "ok",
                        f"{overlap} (user, item) pairs in both train and test"))
    checks.append(Check(split, "duplicate rows in the source", duplicates, "note" if duplicates else "ok",
                        f"{duplicates} repeated (user, item) rows merged before splitting" if duplicates
                        else "no repeated (user, item) rows"))
    test_users = test.user_counts() > 0
    cold_users = int((test_users & (train.user_counts() == 0)).sum())
    checks.append(Check(split, "test users without train positives", cold_users, "note" if cold_users else "ok",
                        f"{cold_users} of {int(test_users.sum())} test users"))
    cold_items = train.item_counts()[test.matrix.indices] == 0
    share = float(cold_items.mean()) if len(cold_items) else 0.0
    checks.append(Check(split, "test positives on items unseen in train", int(cold_items.sum()),
                        "note" if cold_items.any() else "ok",
                        f"{int(cold_items.sum())} test positives ({share:.2%}) no model can retrieve"))
    if temporal:
        if train.timestamps is None or test.timestamps is None:
            raise DataError("a temporal split needs timestamps")
        oldest_test = np.full(test.n_users, np.inf)
        np.minimum.at(oldest_test, test.row_codes(), test.timestamps.astype(np.float64))
        future = train.timestamps.astype(np.float64) > oldest_test[train.row_codes()]
        n_future = int(future.sum())
        checks.append(Check(split, "train positives newer than the user's test", n_future,
                            "fail" if n_future else "ok", f"{n_future} training positives after the same user's "
                            "oldest test positive"))
        if len(test):
            later = float((train.timestamps > test.timestamps.min()).mean())
            checks.append(Check(split, "train positives newer than the first test positive", later, "note",
                                f"{later:.1%} of training positives are later than some user's test positive "
                                "(global time leaks in any per-user temporal split)"))
    return checks


def audit_carve(fit: Interactions, validation: Interactions, test: Interactions, split: str) -> list[Check]:
    """Tuning's validation carve must not touch test, and must be disjoint from what tuning fits on."""
    checks = []
    for name, a, b in (("validation ∩ test pairs", validation, test), ("fit ∩ validation pairs", fit, validation)):
        n = _overlap(a, b)
        checks.append(Check(split, name, n, "fail" if n else "ok", f"{n} shared (user, item) pairs"))
    return checks


def raise_on_failures(checks: list[Check]) -> None:
    """Refuse to compare on a leaking split."""
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        c = failed[0]
        raise DataError(f"leak audit failed on {c.split}: {c.check}: {c.detail}")
