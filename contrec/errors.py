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

__all__ = [
    "ContrecError",
    "DataError",
    "ConfigError",
    "NotFittedError",
    "ModelFileError",
    "DatasetError",
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


class ConfigError(ContrecError, ValueError):
    """A parameter or option is invalid (unknown name, out-of-range value)."""


class NotFittedError(ContrecError, RuntimeError):
    """A model was used before `fit` (or `load`)."""


class ModelFileError(ContrecError):
    """A model file is missing, truncated, corrupt, of another format or of a newer version."""


class DatasetError(ContrecError):
    """A known dataset cannot be found, downloaded, verified or extracted."""
