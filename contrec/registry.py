"""Named choices (samplers, similarities, baselines, encoder presets): one lookup, one error wording.

Example:
    >>> colours = Registry("colour", {"red": dict, "blue": dict})
    >>> colours.create("green")
    Traceback (most recent call last):
    ...
    contrec.errors.ConfigError: unknown colour 'green'; choose one of: red, blue
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

from contrec.errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Mapping[str, Callable[..., T]], Generic[T]):
    """A read-only mapping name → factory whose `create` turns a wrong name or parameter into one clear line.

    ``normalize`` maps what a user typed onto a registered name (e.g. ``"ALS"`` → ``"als"``).
    """

    def __init__(self, kind: str, entries: Mapping[str, Callable[..., T]],
                 normalize: Callable[[str], str] | None = None) -> None:
        self.kind = kind
        self._entries = dict(entries)
        self._normalize = normalize or (lambda name: name)

    def __getitem__(self, name: str) -> Callable[..., T]:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def register(self, name: str, factory: Callable[..., T]) -> Callable[..., T]:
        """Add an entry (a plug-in of your own, or a part that depends on the registry itself); returns it."""
        if name in self._entries and self._entries[name] is not factory:
            raise ConfigError(f"a {self.kind} named {name!r} is registered already")
        self._entries[name] = factory
        return factory

    def names(self) -> list[str]:
        """The registered names, in registration order (what ``--help`` and errors list)."""
        return list(self._entries)

    def knows(self, name: str) -> bool:
        """Whether ``name`` stands for a registered entry (after ``normalize``)."""
        return isinstance(name, str) and self._normalize(name) in self._entries

    def key(self, name: str) -> str:
        """The registered name ``name`` stands for; a one-line `ConfigError` listing the choices if none."""
        key = self._normalize(name) if isinstance(name, str) else name
        if key not in self._entries:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self._entries)}")
        return key

    def create(self, name: str, **params: Any) -> T:
        """The entry ``name`` built with ``params``; a wrong name or parameter is a one-line `ConfigError`."""
        factory = self._entries[self.key(name)]
        try:
            return factory(**params)
        except TypeError as err:
            raise ConfigError(f"{self.kind} {name!r}: {err}") from None
