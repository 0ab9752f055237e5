"""The exceptions contrec raises for user mistakes.

Every message names the file, row, column or value at fault and, where possible, how to
fix it, so the CLI can print it as one line and a notebook user can act on it directly.

Example:
    >>> from contrec.errors import DataError
    >>> try:
    ...     raise DataError("ratings.csv: line 17: column 'item' is empty")
    ... except ValueError as err:  # DataError is also a ValueError
    ...     print(err)
    ratings.csv: line 17: column 'item' is empty
"""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = [
    "ContrecError",
    "DataError",
    "MissingColumnsError",
    "ConfigError",
    "NotFittedError",
    "ModelFileError",
    "DatasetError",
    "check_int",
    "check_number",
    "check_choice",
    "error_line",
]


class ContrecError(Exception):
    """Base class of every error contrec raises on purpose.

    ``cli`` is the same message as the command line says it, where the fix is a flag rather
    than a keyword argument (``--skip-unknown`` instead of ``unknown='skip'``): each face
    names its own way out.

    Example:
        >>> err = DataError("user id 'u9' is unknown; pass unknown='skip'", cli="user id 'u9' is unknown; "
        ...                 "add --skip-unknown")
        >>> str(err), err.cli_message
        ("user id 'u9' is unknown; pass unknown='skip'", "user id 'u9' is unknown; add --skip-unknown")
    """

    def __init__(self, *args: object, cli: str | None = None) -> None:
        super().__init__(*args)
        self.cli = cli

    @property
    def cli_message(self) -> str:
        """What the command line prints: its own wording when one was given."""
        return self.cli if self.cli is not None else str(self)


class DataError(ContrecError, ValueError):
    """Input data is malformed: missing columns, empty IDs, bad ratings, unknown IDs."""


class MissingColumnsError(DataError):
    """The columns asked for are not in the file (a wrong name, delimiter or header line)."""


class ConfigError(ContrecError, ValueError):
    """A parameter or option is invalid (unknown name, out-of-range value)."""


class NotFittedError(ContrecError, RuntimeError):
    """A model was used before `fit` (or `load`)."""


class ModelFileError(ContrecError):
    """A model file is missing, truncated, corrupt, of another format or of a newer version."""


class DatasetError(ContrecError):
    """A known dataset cannot be found, downloaded, verified or extracted."""


# Checks of a setting, shared by every config so that their messages read alike.
def check_int(name: str, value: Any, minimum: int = 1) -> None:
    """An integer ≥ ``minimum`` (bools are not integers here)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer ≥ {minimum} (got {value!r})")


def check_number(name: str, value: Any, low: float = 0.0, *, positive: bool = False, below: float | None = None,
                 ) -> None:
    """A finite number ≥ ``low`` (> 0 with ``positive``; < ``below`` when given), with the message users see."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if positive:
        if not number or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{name} must be a positive number (got {value!r})")
    elif below is not None:
        if not number or not low <= value < below:
            raise ConfigError(f"{name} must be in [{low:g}, {below:g}) (got {value!r})")
    elif not number or not math.isfinite(value) or value < low:
        raise ConfigError(f"{name} must be ≥ {low:g} (got {value!r})")


def check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, allowed))} (got {value!r})")


def error_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none: the reason in a
    one-line error ("ratings.csv.gz: a damaged gzip file (Compressed file ended …)").

    Example:
        >>> error_line(ValueError("bad value\\nmore detail")), error_line(EOFError())
        ('bad value', 'EOFError')
    """
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
