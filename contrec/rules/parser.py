"""Rules from text (``"disjoint(genres) and not same(decade)"``) or dicts; parsed, never evaluated as code."""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from contrec.errors import ConfigError
from contrec.rules.syntax import RULE_OPS, AllOf, AnyOf, Has, Not, Predicate, Rule

__all__ = ["parse_rule"]

_TOKEN = re.compile(r"""\s*(?:(\()|(\))|(,)|([A-Za-z_][A-Za-z0-9_.\-]*)|"([^"]*)"|'([^']*)')""")
_QUOTED = (5, 6)  # groups of a quoted value: kept as a value, never read as a word


def parse_rule(spec: "str | Mapping[str, Any] | Rule") -> Rule:
    """A rule from a string (``"disjoint(genres) and same(decade)"``), a dict or a `Rule`.

    Example:
        >>> str(parse_rule("disjoint(genres) and (same(decade) or not share(language))"))
        'disjoint(genres) and (same(decade) or not share(language))'
        >>> str(parse_rule({"or": [{"disjoint": "genres"}, {"differ": "language"}]}))
        'disjoint(genres) or differ(language)'
    """
    if isinstance(spec, Rule):
        return spec
    if isinstance(spec, str):
        return _Parser(spec).parse()
    if isinstance(spec, Mapping):
        return _from_dict(spec)
    raise ConfigError(f"a rule must be a string, a dict or a Rule (got {type(spec).__name__})")


def _from_dict(spec: Mapping[str, Any]) -> Rule:
    if len(spec) != 1:
        raise ConfigError(f"a rule dict has exactly one key (got {list(spec)})")
    (key, value), = spec.items()
    if key in ("and", "or"):
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"'{key}' takes a non-empty list of rules (got {value!r})")
        parts = tuple(parse_rule(v) for v in value)
        return parts[0] if len(parts) == 1 else (AllOf(parts) if key == "and" else AnyOf(parts))
    if key == "not":
        return Not(parse_rule(value))
    if key == "rule":
        return parse_rule(value)
    if key == "has":  # {"has": {"genres": "Horror"}} or {"has": ["genres", "Horror"]}
        if isinstance(value, Mapping):
            pairs = list(value.items())
        else:
            pairs = [tuple(value)] if isinstance(value, (list, tuple)) else []
        if len(pairs) != 1 or len(pairs[0]) != 2 or not all(isinstance(v, str) and v for v in pairs[0]):
            raise ConfigError(f"rule 'has' takes one attribute and one value, e.g. {{'has': {{'genres': 'Horror'}}}} "
                              f"(got {value!r})")
        return Has(*pairs[0])
    if key not in RULE_OPS:
        raise ConfigError(f"unknown rule {key!r}; choose one of: {', '.join(RULE_OPS)}, has, and, or, not")
    if not isinstance(value, str) or not value:
        raise ConfigError(f"rule {key!r} takes an attribute name (got {value!r})")
    return Predicate(key, value)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, int]] = []
        self.quoted: list[bool] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m:
                raise ConfigError(f"cannot parse rule {text!r} at position {pos}: {text[pos:pos + 10]!r}")
            self.tokens.append((m.group(m.lastindex), m.start(m.lastindex)))
            self.quoted.append(m.lastindex in _QUOTED)
            pos = m.end()
        self.i = 0

    def _peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> str:
        if self.i >= len(self.tokens):
            raise ConfigError(f"rule {self.text!r} ends early" + (f"; expected {expected!r}" if expected else ""))
        tok, at = self.tokens[self.i]
        if expected is not None and tok != expected:
            raise ConfigError(f"rule {self.text!r}: expected {expected!r} at position {at}, found {tok!r}")
        self.i += 1
        return tok

    def parse(self) -> Rule:
        if not self.tokens:
            raise ConfigError("the rule is empty; e.g. 'disjoint(genres)'")
        rule = self._or()
        if self.i != len(self.tokens):
            tok, at = self.tokens[self.i]
            raise ConfigError(f"rule {self.text!r}: unexpected {tok!r} at position {at}")
        return rule

    def _or(self) -> Rule:  # "or" binds loosest
        return self._chain("or", self._and, AnyOf)

    def _and(self) -> Rule:
        return self._chain("and", self._not, AllOf)

    def _chain(self, word: str, operand: Callable[[], Rule], combine: Callable[[tuple[Rule, ...]], Rule]) -> Rule:
        """``operand (word operand)*``: one operand as it is, several combined."""
        parts = [operand()]
        while self._peek() == word:
            self._take()
            parts.append(operand())
        return parts[0] if len(parts) == 1 else combine(tuple(parts))

    def _not(self) -> Rule:
        if self.i < len(self.tokens) and self.quoted[self.i]:
            raise ConfigError(f"rule {self.text!r}: a quoted value stands only inside has(attribute, value)")
        if self._peek() == "not":
            self._take()
            return Not(self._not())
        if self._peek() == "(":
            self._take()
            rule = self._or()
            self._take(")")
            return rule
        op = self._take()
        if op == "has":
            return self._has()
        if op not in RULE_OPS:
            raise ConfigError(f"rule {self.text!r}: unknown rule {op!r}; choose one of: {', '.join(RULE_OPS)}, has")
        self._take("(")
        attribute = self._take()
        if attribute in ("(", ")"):
            raise ConfigError(f"rule {self.text!r}: {op}( needs an attribute name")
        self._take(")")
        return Predicate(op, attribute)

    def _has(self) -> Rule:
        self._take("(")
        attribute = self._take()
        self._take(",")
        if self._peek() in (None, ")", ",", "(") and not (self.i < len(self.tokens) and self.quoted[self.i]):
            raise ConfigError(f"rule {self.text!r}: has(attribute, value) needs a value, e.g. has(genres, Horror)")
        value = self._take()
        self._take(")")
        return Has(attribute, value)
