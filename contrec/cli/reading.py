"""How a model's training log was read, remembered in the model file for the logs read for it later.

``contrec fit ratings.csv --user userId --item movieId --rating rating --min-rating 4`` records
those flags in the model; ``contrec evaluate``, ``score`` and ``fit --from`` then read a file of the
same shape without them. Flags given on the later command win (none of the remembered ones is
used then, so nothing is half-merged), and a file that lacks the remembered columns — such as
``contrec split``'s own output, which names them ``user`` and ``item`` — is read with the defaults.
A headerless log (``--names``) is not read by position from memory: a file with a header whose
columns come in another order would be read silently wrong, so there the remembered flags only
appear in the error that asks for them.
"""

from __future__ import annotations

import argparse
import logging
import shlex
from typing import Any

from contrec.cli.options import READ_DEFAULTS, read_data
from contrec.errors import MissingColumnsError

__all__ = ["reading_of", "reading_given", "flags_text", "read_for_model", "columns_for_model"]

log = logging.getLogger("contrec")

def reading_of(args: argparse.Namespace) -> dict[str, Any]:
    """The reading flags of a command, as a model file stores them."""
    return {key: getattr(args, key, default) for key, default in READ_DEFAULTS.items()}


def reading_given(args: argparse.Namespace) -> bool:
    """Whether the command sets any reading flag itself."""
    return any(getattr(args, key, default) != default for key, default in READ_DEFAULTS.items())


def flags_text(reading: dict[str, Any]) -> str:
    """``--user userId --item movieId …``: the flags that differ from the defaults, as a shell would take them."""
    return " ".join(f"--{key.replace('_', '-')} {shlex.quote(_shown(value))}" for key, value in reading.items()
                    if key in READ_DEFAULTS and value != READ_DEFAULTS[key])


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _remembered(model: Any) -> dict[str, Any] | None:
    """The model's reading flags where they differ from the defaults (None: nothing to remember)."""
    reading = getattr(model, "reading_", None)
    if not reading or all(reading.get(key, default) == default for key, default in READ_DEFAULTS.items()):
        return None
    return {key: reading.get(key, default) for key, default in READ_DEFAULTS.items()}


def read_for_model(args: argparse.Namespace, path: str, model: Any, model_path: str, **extra: Any) -> Any:
    """Read the log at ``path`` for the model loaded from ``model_path``: with the command's own flags when it
    gives any, else as the model's training log was read (see the module notes)."""
    remembered = _remembered(model)
    if remembered is None or reading_given(args):
        return read_data(args, path, **extra)
    if remembered["names"] is not None:  # by position: only when asked again (the module notes say why)
        try:
            return read_data(args, path, **extra)
        except MissingColumnsError as err:
            raise _with_hint(err, model_path, remembered) from None
    try:
        data = read_data(argparse.Namespace(**{**vars(args), **remembered}), path, **extra)
    except MissingColumnsError as err:
        try:  # not the training log's shape: contrec's own files (split) name the columns user, item, …
            return read_data(args, path, **extra)
        except MissingColumnsError:
            raise _with_hint(err, model_path, remembered) from None
    log.info("read %s as %s's training log was read (%s)", path, model_path, flags_text(remembered))
    return data


def columns_for_model(args: argparse.Namespace, columns: list[str], model: Any) -> tuple[str, str]:
    """The user and item columns of a pairs file (``contrec score``): the flags', else the model's training log's
    where this file has them."""
    remembered = _remembered(model)
    if remembered is None or args.user != READ_DEFAULTS["user"] or args.item != READ_DEFAULTS["item"]:
        return args.user, args.item
    if remembered["user"] in columns and remembered["item"] in columns:
        return remembered["user"], remembered["item"]
    return args.user, args.item


def _with_hint(err: MissingColumnsError, model_path: str, remembered: dict[str, Any]) -> MissingColumnsError:
    hint = f" ({model_path} was fitted on a log read with {flags_text(remembered)})"
    return MissingColumnsError(str(err) + hint, cli=err.cli_message + hint)
