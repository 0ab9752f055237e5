"""Constructor parameters read from the signature, scikit-learn style: one list, never kept by hand.

Example:
    >>> from contrec.models.baselines import EASE
    >>> EASE(l2=250.0).get_params()
    {'l2': 250.0}
    >>> EASE().set_params(l2=50.0)
    EASE(l2=50.0)
"""

from __future__ import annotations

import inspect
from typing import Any

from contrec.errors import ConfigError

__all__ = ["Params", "jsonable"]


class Params:
    """`get_params` / `set_params` / ``repr`` from ``__init__``'s signature; ``__init__`` only stores arguments.

    ``repr`` shows every parameter, or with ``_repr_changed_only`` those that differ from their defaults.
    """

    _repr_changed_only: bool = False

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        """Every constructor parameter with its default (``inspect.Parameter.empty`` for none)."""
        params = inspect.signature(cls.__init__).parameters.values()
        return {p.name: p.default for p in params
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, by name, as stored on the object."""
        return {name: getattr(self, name) for name in self.param_defaults()}

    def set_params(self, **params: Any) -> Any:
        """Change constructor arguments in place (nothing is checked until ``check`` or ``fit``); returns self."""
        known = self.param_defaults()
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ConfigError(f"{type(self).__name__} has no parameter {unknown[0]!r}; its parameters are: "
                              f"{', '.join(known)}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def check(self) -> None:
        """Refuse settings the model cannot fit with, in one line, before any fit (`contrec compare`'s preflight
        asks every contestant); a model with settings to check overrides it."""

    def __repr__(self) -> str:
        defaults = self.param_defaults()
        shown = {k: v for k, v in self.get_params().items()
                 if not self._repr_changed_only or not _same(v, defaults[k])}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


def _same(value: Any, default: Any) -> bool:
    try:
        return bool(value == default)
    except (TypeError, ValueError):  # e.g. a DataFrame compared element-wise
        return False


def jsonable(value: Any) -> Any:
    """Settings as JSON: objects (a sampler or similarity instance) by their repr."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
