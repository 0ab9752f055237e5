"""Domain-rule negatives: candidates chosen or forbidden by rules over item attributes.

A rule relates a row's positive item i to a candidate j through one attribute:

===============  ===============================================  =========================
rule             j is allowed when …                              missing values
===============  ===============================================  =========================
disjoint(a)      i and j share no value of a                     allowed
share(a)         i and j share at least one value of a           not allowed
same(a)          i and j have the same value (set) of a          not allowed
differ(a)        i and j do not have the same value (set) of a   allowed
never_same(a)    as disjoint(a): forbid j when it shares a value  allowed
has(a, v)        j's a holds the value v (i plays no part)        not allowed
===============  ===============================================  =========================

Rules combine with ``and``, ``or``, ``not`` and parentheses, e.g.
``"disjoint(genres) and never_same(franchise)"``; ``has`` is the plain attribute filter
(``"not has(genres, Horror)"``, a value with spaces or quotes in quotes: ``has(genres, "Children's")``). Multi-valued attributes are strings split
on ``|`` (MovieLens genres: ``"Action|Comedy"``) or lists; ``decade`` is derived from
``year`` when the table has no decade column. Rules are data: a string, a dict such as
``{"and": [{"disjoint": "genres"}, {"same": "decade"}]}``, or a JSON/YAML file holding
either (YAML read with ``safe_load``). They are parsed, never evaluated as code.

The sampler that draws by these rules is `contrec.samplers.domain_rule.DomainRuleSampler`.
"""

from contrec.rules.loader import load_rule
from contrec.rules.parser import parse_rule
from contrec.rules.syntax import RULE_OPS, AllOf, AnyOf, Has, Not, Predicate, Rule
from contrec.rules.table import AttributeTable

__all__ = ["Rule", "Predicate", "Has", "AllOf", "AnyOf", "Not", "RULE_OPS", "parse_rule", "load_rule", "AttributeTable"]
