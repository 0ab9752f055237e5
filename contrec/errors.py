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
    """Base class of every error contrec raises on purpose."""


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
