"""What several commands share: reading an interaction file, writing CSVs, checking outputs, parsing values."""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from contrec.data.compression import read_file_bytes, text_encoding
from contrec.data.readers import DUPLICATE_POLICIES, counted
from contrec.errors import ConfigError, error_line

__all__ = ["READ_DEFAULTS", "WEIGHT_HELP", "THREADS_HELP", "add_read_options", "read_data", "int_list",
           "share_or_count", "write_csv", "check_output", "json_object", "signature_default"]

log = logging.getLogger("contrec")

WEIGHT_HELP = ("non-negative weight column (e.g. play counts); contrec's contrastive model treats every positive "
               "alike unless --positive-weights says how they count (it says so when weights are given); compare "
               "searches how implicit's ALS and item-kNN use them (ignored, log1p or raw)")


# the flags that say how a log is read, with their defaults: the parser's options and what a model file remembers
# of them (contrec.cli.reading)
READ_DEFAULTS: dict[str, Any] = {"user": "user", "item": "item", "rating": None, "min_rating": None,
                                 "weight": None, "timestamp": None, "sep": None, "names": None, "encoding": "utf-8"}


THREADS_HELP = ("torch and FAISS threads (default: the CPUs this process may use, less any that other "
                 "processes keep busy; see docs/performance.md)")



def add_read_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reading the interaction file")
    g.add_argument("--user", default=READ_DEFAULTS["user"], help="user id column (default: user)")
    g.add_argument("--item", default=READ_DEFAULTS["item"], help="item id column (default: item)")
    g.add_argument("--rating", help="explicit rating column")
    g.add_argument("--min-rating", type=float, help="ratings ≥ this are positives (needs --rating)")
    g.add_argument("--weight", help=WEIGHT_HELP)
    g.add_argument("--timestamp", help="time column (seconds or dates)")
    g.add_argument("--sep", help="delimiter (default: detected; use '\\t' for tab, '::' for MovieLens .dat)")
    g.add_argument("--names", help="comma-separated column names for a file without a header")
    g.add_argument("--encoding", default=READ_DEFAULTS["encoding"], help="text encoding (default: utf-8)")
    from contrec.data.interactions import read_interactions

    g.add_argument("--duplicates", default=signature_default(read_interactions, "duplicates"),
                   choices=DUPLICATE_POLICIES, help="policy for repeated (user, item) rows")
    g.add_argument("--item-attributes", help="CSV of item attributes (e.g. movies.csv with genres) for domain rules")
    g.add_argument("--item-attributes-id", help="its item id column (default: the --item column name)")
    g.add_argument("--attributes-sep", help="delimiter of the attributes file (default: detected from its header)")


def read_data(args: argparse.Namespace, path: str, **extra: Any) -> Any:
    from contrec.data.interactions import read_interactions

    sep = {"\\t": "\t", "tab": "\t"}.get(args.sep, args.sep) if args.sep else None
    if getattr(args, "item_attributes", None) and "item_attributes" not in extra:
        from contrec.data.readers import read_item_attributes

        extra["item_attributes"] = read_item_attributes(args.item_attributes, args.item_attributes_id or args.item,
                                                        "name it with --item-attributes-id", sep=args.attributes_sep)
    if getattr(args, "attribute_items", False):
        if extra.get("item_attributes") is None:
            raise ConfigError("--attribute-items needs --item-attributes (the file that lists the items)")
        from contrec.data.ids import IdMap

        # the attributes' items first, then any the interactions add: every listed item is in the catalogue
        extra.update(items=IdMap(extra["item_attributes"].index), unknown_items="extend")
    return read_interactions(path, user=args.user, item=args.item, rating=args.rating, weight=args.weight,
                             timestamp=args.timestamp, min_rating=args.min_rating, sep=sep,
                             names=args.names.split(",") if args.names else None, encoding=args.encoding,
                             duplicates=args.duplicates, **extra)


def int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers (got {text!r})") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def share_or_count(text: str) -> "float | int":
    """A held-out size as `split_random` takes it: a fraction in (0, 1), or a whole count per user (``1``:
    leave-one-out) — argparse's ``float`` turned ``1`` into 1.0, which is neither."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1) or a count ≥ 1 (got {text!r})") from None
    if 0 < value < 1:
        return value
    if value >= 1 and value == int(value):
        return int(value)
    raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1) or a whole count ≥ 1 (got {text!r})")


def write_csv(frame: pd.DataFrame, path: str | None) -> None:
    from contrec.runtime.artifact import atomic_write

    if path is None or path == "-":
        frame.to_csv(sys.stdout, index=False)
        return
    # the readers take a .tsv / .tab file as tab-separated: write it so, or `split` → `fit` fails on its own output
    sep = "\t" if Path(path).suffix.lower() in (".tsv", ".tab") else ","
    atomic_write(path, lambda f: f.write(frame.to_csv(index=False, sep=sep).encode("utf-8")))
    log.info("wrote %s (%s)", path, counted(len(frame), "row"))


def read_text_csv(path_text: str, label: str, error: type[Exception] = ConfigError, what: str = "CSV",
                  **options: Any) -> pd.DataFrame:
    """A small CSV read as text (ids stay ids: no NaN, no numbers), with one-line errors that start with ``label``."""
    path = Path(path_text)
    if not path.is_file():
        raise ConfigError(f"{label}: no such file")
    raw = read_file_bytes(path)[0]
    try:
        return pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, encoding=text_encoding(raw, "utf-8"),
                           **options)
    except pd.errors.EmptyDataError:
        raise error(f"{label}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise error(f"{label}: not a {what} ({error_line(err)})") from None


def check_output(path: str | None, *inputs: str | None) -> None:
    """Fail before any work when the output could not be written anyway, or would replace one of the command's
    own ``inputs`` (``contrec split log.csv --train-out log.csv``): the atomic write keeps a file whole, not the
    data it replaces."""
    from contrec.runtime.artifact import check_writable

    if path in (None, "-"):
        return
    target = Path(path).resolve()
    for given in inputs:
        if given not in (None, "-") and Path(given).resolve() == target:
            raise ConfigError(f"{path}: is also an input of this command ({given}); write the output to another file")
    check_writable(path)


def json_object(text: str, flag: str, example: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{flag} is not valid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{flag} must be a JSON object, e.g. '{example}'")
    return value


def signature_default(func: Callable[..., Any], name: str) -> Any:
    """The default of ``func``'s parameter ``name``: the CLI's defaults are the Python API's, never retyped."""
    import inspect

    return inspect.signature(func).parameters[name].default
