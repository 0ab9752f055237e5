"""Rule objects: predicates over one attribute, combined with and / or / not (see `contrec.rules`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from contrec.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from contrec.rules.table import AttributeTable

__all__ = ["Rule", "Predicate", "Has", "AllOf", "AnyOf", "Not", "RULE_OPS"]

RULE_OPS = ("disjoint", "share", "same", "differ", "never_same")


class Rule:
    """A predicate allowed(i, j) over item attributes; combine with ``&``, ``|`` and ``~``."""

    def attributes(self) -> set[str]:
        raise NotImplementedError

    def allowed(self, table: "AttributeTable", reps: np.ndarray) -> np.ndarray:
        """``[len(reps), n_items]`` bool: which items j each representative positive i allows."""
        raise NotImplementedError

    def __and__(self, other: "Rule") -> "Rule":
        return AllOf((self, other))

    def __or__(self, other: "Rule") -> "Rule":
        return AnyOf((self, other))

    def __invert__(self) -> "Rule":
        return Not(self)


@dataclass(frozen=True)
class Predicate(Rule):
    op: str
    attribute: str

    def __post_init__(self) -> None:
        if self.op not in RULE_OPS:
            raise ConfigError(f"unknown rule {self.op!r}; choose one of: {', '.join(RULE_OPS)}")

    def attributes(self) -> set[str]:
        return {self.attribute}

    def allowed(self, table: "AttributeTable", reps: np.ndarray) -> np.ndarray:
        if self.op in ("share", "disjoint", "never_same"):
            tokens = table.tokens[self.attribute]  # [n_items, V] sparse
            share = (tokens[reps] @ tokens.T).toarray() > 0  # [R, n]: a common value
            return share if self.op == "share" else ~share
        nonempty, ids = table.nonempty[self.attribute], table.set_id[self.attribute]
        same = (ids[reps][:, None] == ids[None, :]) & nonempty[reps][:, None] & nonempty[None, :]
        return same if self.op == "same" else ~same

    def __str__(self) -> str:
        return f"{self.op}({self.attribute})"


@dataclass(frozen=True)
class Has(Rule):
    """``has(a, v)``: j is allowed when its attribute a holds the value v; i plays no part.

    The plain attribute filter: ``not has(genres, Horror)`` keeps horror out whatever the
    row's items are. A value no item holds is an error (a typo would filter nothing).
    """

    attribute: str
    value: str

    def attributes(self) -> set[str]:
        return {self.attribute}

    def allowed(self, table: "AttributeTable", reps: np.ndarray) -> np.ndarray:
        holds = table.holds(self.attribute, self.value)  # [n_items]
        return np.broadcast_to(holds[None, :], (len(reps), len(holds))).copy()

    def __str__(self) -> str:
        plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", self.value) and self.value not in ("and", "or", "not")
        return f"has({self.attribute}, {self.value if plain else repr(self.value)})"


@dataclass(frozen=True)
class _Combination(Rule):
    rules: tuple[Rule, ...]
    _word: ClassVar[str] = ""

    def attributes(self) -> set[str]:
        return set().union(*(r.attributes() for r in self.rules))

    def _combine(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def allowed(self, table: "AttributeTable", reps: np.ndarray) -> np.ndarray:
        out = self.rules[0].allowed(table, reps)
        for rule in self.rules[1:]:
            out = self._combine(out, rule.allowed(table, reps))
        return out

    def __str__(self) -> str:
        # "and" binds tighter than "or": only an or-group inside an and-group needs parentheses
        parts = [f"({r})" if isinstance(self, AllOf) and isinstance(r, AnyOf) else str(r) for r in self.rules]
        return f" {self._word} ".join(parts)


@dataclass(frozen=True)
class AllOf(_Combination):
    _word: ClassVar[str] = "and"

    def _combine(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a & b


@dataclass(frozen=True)
class AnyOf(_Combination):
    _word: ClassVar[str] = "or"

    def _combine(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a | b


@dataclass(frozen=True)
class Not(Rule):
    rule: Rule

    def attributes(self) -> set[str]:
        return self.rule.attributes()

    def allowed(self, table: "AttributeTable", reps: np.ndarray) -> np.ndarray:
        return ~self.rule.allowed(table, reps)

    def __str__(self) -> str:
        inner = str(self.rule)
        return f"not {inner}" if isinstance(self.rule, (Predicate, Has)) else f"not ({inner})"
