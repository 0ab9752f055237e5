"""Validate interaction logs (CSV/TSV/``::``/Parquet/DataFrame) column by column; `read_interactions` builds on it.

Every problem is reported as a `DataError` whose message names the file, the line (the
header is line 1) or DataFrame row, the column and the value, and says how to fix it.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from contrec.data.compression import decode_text, read_file_bytes
from contrec.data.files import RowNamer, detect_separator, missing_columns, show_sep
from contrec.data.ids import IdMap
from contrec.errors import DataError, error_line

__all__ = ["parse_frame", "ParsedLog", "read_item_attributes", "DuplicateRowsWarning", "DroppedRowsWarning",
           "DUPLICATE_POLICIES", "DuplicatePolicy", "counted"]

DuplicatePolicy = Literal["last", "first", "sum", "error"]
DUPLICATE_POLICIES: tuple[str, ...] = ("last", "first", "sum", "error")


class DuplicateRowsWarning(UserWarning):
    """Some (user, item) pairs occurred more than once; the duplicate policy resolved them."""


class DroppedRowsWarning(UserWarning):
    """Rows were dropped on purpose (unknown ids when aligning, zero weights); the count is given."""


class ParsedLog(NamedTuple):
    """A validated interaction log, as `Interactions.from_codes` takes it."""

    user_codes: np.ndarray
    item_codes: np.ndarray
    users: IdMap
    items: IdMap
    weights: np.ndarray | None
    timestamps: np.ndarray | None
    item_attributes: pd.DataFrame | None


def parse_frame(frame: pd.DataFrame, where: RowNamer, columns: dict[str, str | None],
                min_rating: float | None, duplicates: str, item_attributes: pd.DataFrame | None,
                users: IdMap | None, items: IdMap | None, unknown: str,
                unknown_items: str = "error") -> ParsedLog:
    """Validate ``frame``'s columns into the arguments of `Interactions.from_codes` (one-line errors).

    Ids are factorised once, up front: duplicates, filters and the id maps then work on integer
    codes, not millions of strings (this function on 5 million rows: 23 s → 4 s), with the same result — the maps
    list ids in their order of first appearance among the rows kept."""
    name = where.name
    missing = [c for c in columns.values() if c is not None and c not in frame.columns]
    if missing:
        raise missing_columns(name, missing, list(frame.columns), ",", headerless=False)
    if len(frame) == 0:
        raise DataError(f"{name}: has no rows")
    user_codes, user_ids = _id_codes(frame[columns["user"]], columns["user"], where)
    item_codes, item_ids = _id_codes(frame[columns["item"]], columns["item"], where)
    header = _repeated_header(frame, columns, user_codes, user_ids)
    if header.any():
        first, more = frame.index[np.argmax(header)], int(header.sum()) - 1
        warnings.warn(f"{where.at(first)}{f' (and {more} more)' if more else ''}: a header line among the rows "
                      "(logs joined with their headers, or names given for a file that has one?); dropped",
                      DroppedRowsWarning, stacklevel=3)
        frame, user_codes, item_codes = frame[~header], user_codes[~header], item_codes[~header]
    data = pd.DataFrame({"user": user_codes, "item": item_codes}, index=frame.index)
    if columns["rating"] is not None:
        data["rating"] = _number_column(frame[columns["rating"]], columns["rating"], where)
    if columns["weight"] is not None:
        w = _number_column(frame[columns["weight"]], columns["weight"], where)
        bad = w < 0
        if bad.any():
            label = w.index[np.argmax(bad.to_numpy())]
            raise DataError(f"{where.at(label)}: column {columns['weight']!r} has negative weight "
                            f"{w.loc[label]:g}; weights must be ≥ 0")
        data["weight"] = w
    if columns["timestamp"] is not None:
        data["timestamp"] = _time_column(frame[columns["timestamp"]], columns["timestamp"], where)

    data = _resolve_duplicates(data, duplicates, where, user_ids, item_ids)

    if "weight" in data:
        zero = data["weight"].to_numpy() == 0
        if zero.any():
            warnings.warn(f"{name}: dropped {_rows(zero.sum())} with weight 0 (not positives)",
                          DroppedRowsWarning, stacklevel=3)
            data = data[~zero]
    if min_rating is not None:
        ratings = data["rating"]
        data = data[ratings >= min_rating]
        if data.empty:
            what = f"{name}: no row has {columns['rating']!r} ≥ {min_rating:g} (largest is {ratings.max():g}); lower"
            raise DataError(f"{what} min_rating", cli=f"{what} --min-rating")

    uc, ic = data["user"].to_numpy(np.int64), data["item"].to_numpy(np.int64)
    user_map, u = (users, users.index(user_ids)[uc]) if users is not None else _first_seen(uc, user_ids)
    item_map, i = (items, items.index(item_ids)[ic]) if items is not None else _first_seen(ic, item_ids)
    if items is not None and unknown_items == "extend" and (i < 0).any():
        # items the model never saw stay in the data, after its catalogue: relevant, never retrievable
        new = item_ids[pd.unique(ic[i < 0])]
        item_map = IdMap(np.concatenate([items.ids, new]))
        i = item_map.index(item_ids)[ic]
    if users is not None or items is not None:
        bad_user, bad_item = u < 0, i < 0
        for kind, bad, policy, codes, ids, known in (("user", bad_user, unknown, uc, user_ids, len(user_map)),
                                                     ("item", bad_item, unknown_items, ic, item_ids, len(item_map))):
            if bad.any() and policy == "error":
                k = int(np.argmax(bad))
                what = (f"{where.at(data.index[k])}: {kind} id {ids[codes[k]]!r} is not in the training "
                        f"data ({known} known {kind}s); drop such rows with")
                raise DataError(f"{what} {'unknown' if kind == 'user' else 'unknown_items'}='drop'",
                                cli=f"{what} --drop-unknown")
        bad = bad_user | bad_item
        if bad.any():
            only_item = bad_item & ~bad_user
            warnings.warn(f"{name}: dropped {_rows(bad.sum())} whose user or item is not in the training data "
                          f"({_rows(bad_user.sum(), 'unknown-user')}, {_rows(only_item.sum(), 'unknown-item')})",
                          DroppedRowsWarning, stacklevel=3)
            data, u, i = data[~bad], u[~bad], i[~bad]
    if data.empty:
        raise DataError(f"{name}: no interactions left after validation")
    weights = data["weight"].to_numpy(np.float32) if "weight" in data else None
    times = data["timestamp"].to_numpy(np.int64) if "timestamp" in data else None
    return ParsedLog(u, i, user_map, item_map, weights, times, item_attributes)


def _id_codes(col: pd.Series, name: str, where: RowNamer) -> tuple[np.ndarray, np.ndarray]:
    """Each row's code and the ids (text, surrounding spaces stripped) the codes point to, in order of first
    appearance; one-line error at the first row without an id."""
    if pd.api.types.is_float_dtype(col.dtype):
        # A DataFrame's integer ids become floats when pandas meets a NaN; write 7.0 as "7".
        values = col.to_numpy()
        if np.isfinite(values).all() and np.all(values == np.round(values)):
            col = pd.Series(values.astype(np.int64), index=col.index)
    codes, uniques = pd.factorize(col)  # missing values get code −1
    # the distinct values become text once each: " 7", "7" and 7 are one id, "7"
    ids, merged = pd.factorize(pd.Index(uniques).astype("string").str.strip())
    ids = np.append(ids, -1)[codes]  # code −1 (missing) stays −1
    text = np.asarray(merged, dtype=object)
    empty = ids < 0
    if (text == "").any():
        empty |= np.isin(ids, np.flatnonzero(text == ""))
    if empty.any():
        label = col.index[np.argmax(empty)]
        raise DataError(f"{where.at(label)}: column {name!r} is empty; every row needs {_article(name)} {name}")
    return ids.astype(np.int64), text


def _repeated_header(frame: pd.DataFrame, columns: dict[str, str | None], user_codes: np.ndarray,
                     user_ids: np.ndarray) -> np.ndarray:
    """Rows whose every used field is its column's name: the header of a second log appended with
    ``cat a.csv b.csv``, which would otherwise be a user named "user" who liked an item named "item".
    Found through the user ids (a handful of distinct values), not by comparing millions of strings."""
    named = np.flatnonzero(user_ids == columns["user"])
    rows = np.zeros(len(frame), dtype=bool)
    if len(named) == 0:
        return rows
    rows[user_codes == named[0]] = True
    for column in (c for c in columns.values() if c is not None and c != columns["user"]):
        at = np.flatnonzero(rows)
        rows[at] = frame[column].iloc[at].astype(str).str.strip().to_numpy() == column
    return rows


def _first_seen(codes: np.ndarray, ids: np.ndarray) -> tuple[IdMap, np.ndarray]:
    """The id map of the rows' codes, in order of first appearance, and each row's dense index in it."""
    order = pd.unique(codes)
    dense = np.full(len(ids), -1, dtype=np.int64)
    dense[order] = np.arange(len(order))
    return IdMap(ids[order]), dense[codes]


def _number_column(col: pd.Series, name: str, where: RowNamer) -> pd.Series:
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna().to_numpy() | ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        flags = col.astype(str).str.strip().str.lower()
        if flags.isin(("true", "false")).all():  # a flag column (liked, clicked) as a spreadsheet writes it:
            return (flags == "true").astype(np.float64)  # read as a DataFrame's bool column is, True = 1
        label = col.index[np.argmax(bad)]
        raw = col.loc[label]
        if pd.isna(raw) or str(raw).strip() in ("", "nan", "NaN"):  # None, NaN, pd.NA of a nullable column
            raise DataError(f"{where.at(label)}: column {name!r} is empty (NaN); every row needs a number")
        # a European spreadsheet's export writes 3,5 for 3.5 (and separates fields by ';')
        hint = " (a decimal comma? write it with a point: " + str(raw).strip().replace(",", ".") + ")" \
            if _DECIMAL_COMMA.fullmatch(str(raw).strip()) else ""
        raise DataError(f"{where.at(label)}: column {name!r} value {str(raw)!r} is not a finite number{hint}")
    return values.astype(np.float64)


_DECIMAL_COMMA = re.compile(r"[-+]?\d+,\d+")


def _time_column(col: pd.Series, name: str, where: RowNamer) -> pd.Series:
    """Seconds since 1970 (UTC) as int64: numbers as they are, dates (text or a DataFrame's datetime column,
    whose numbers would be nano- or microseconds) converted."""
    if not pd.api.types.is_datetime64_any_dtype(col.dtype):
        numbers = pd.to_numeric(col, errors="coerce")
        if numbers.notna().all():
            return numbers.astype(np.int64)
    parsed = pd.to_datetime(col, errors="coerce", utc=True, format="mixed")
    bad = parsed.isna().to_numpy()
    if bad.any():
        label = col.index[np.argmax(bad)]
        raise DataError(f"{where.at(label)}: column {name!r} value {str(col.loc[label])!r} is neither a number "
                        "of seconds nor a date")
    seconds = (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return seconds.astype(np.int64)


def _resolve_duplicates(data: pd.DataFrame, policy: str, where: RowNamer, user_ids: np.ndarray,
                        item_ids: np.ndarray) -> pd.DataFrame:
    """Rows of repeated (user, item) codes resolved by ``policy``, in the order of the lines kept."""
    key = pd.Series(data["user"].to_numpy(np.int64) * len(item_ids) + data["item"].to_numpy(np.int64),
                    index=data.index)
    repeated = key.duplicated()
    n_dup = int(repeated.sum())
    if n_dup == 0:
        return data
    if policy == "error":
        k = int(np.argmax(repeated.to_numpy()))
        user, item = user_ids[data["user"].to_numpy()[k]], item_ids[data["item"].to_numpy()[k]]
        raise DataError(f"{where.at(data.index[k])}: (user {user!r}, item {item!r}) "
                        "appears more than once; choose a duplicates policy: last, first or sum (--duplicates)")
    # by time (equal times by line): "last"/"first" keep one row of each pair, "sum" adds the weights into
    # the latest row, named by the pair's earliest line; the rows come back in line order
    order = np.argsort(data["timestamp"].to_numpy(), kind="stable") if "timestamp" in data \
        else np.arange(len(data))
    keys = pd.Series(key.to_numpy()[order])
    if policy != "sum":
        keep = np.zeros(len(data), dtype=bool)
        keep[order[~keys.duplicated(keep=policy).to_numpy()]] = True
        warnings.warn(f"{where.name}: {_rows(n_dup, 'duplicate (user, item)')}; kept the "
                      f"{'latest' if policy == 'last' else 'earliest'} of each (duplicates={policy!r})",
                      DuplicateRowsWarning, stacklevel=4)
        return data[keep]
    group, _ = pd.factorize(keys)  # numbered by first appearance in time order
    first = order[~keys.duplicated(keep="first").to_numpy()]  # original rows, group 0, 1, …
    last_sorted = np.flatnonzero(~keys.duplicated(keep="last").to_numpy())
    last = np.empty(len(first), dtype=np.int64)
    last[group[last_sorted]] = order[last_sorted]
    rows = np.argsort(first)  # groups in the order of their earliest line
    out = data.iloc[last[rows]].copy()
    if "weight" in data:  # pandas' grouped sum (compensated), over each pair's rows in time order
        sums = pd.Series(data["weight"].to_numpy()[order]).groupby(group, sort=False).sum().to_numpy()
        out["weight"] = sums[rows]
    out.index = data.index[first[rows]]
    warnings.warn(f"{where.name}: {_rows(n_dup, 'duplicate (user, item)')}; summed the weights of each "
                  "(duplicates='sum')", DuplicateRowsWarning, stacklevel=4)
    return out


def read_item_attributes(path: "str | Path", id_column: str, hint: str = "", sep: str | None = None,
                         encoding: str = "utf-8") -> pd.DataFrame:
    """A file of item attributes (e.g. MovieLens movies.csv), indexed by its item id column.

    Every value is read as text, so ids keep their spelling ("007" stays "007"). The
    delimiter is detected from the header line like the interaction reader's (``,``, tab,
    ``;``, ``|``, ``::``) unless ``sep`` is given; a ``|`` inside a field of a comma file
    (genres such as ``Action|Comedy``) does not confuse it.

    Example:
        >>> attrs = read_item_attributes("movies.csv", "movieId")  # doctest: +SKIP
    """
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{path}: no such item attributes file")
    raw, suffix = read_file_bytes(file)
    try:
        text = decode_text(raw, encoding)
    except UnicodeDecodeError as err:
        raise DataError(f"{file.name}: item attributes have bytes that are not valid {encoding} at byte "
                        f"{err.start}; re-save the file as {encoding}") from None
    if not text.strip():
        raise DataError(f"{file.name}: the item attributes file is empty")
    sep = {"\\t": "\t", "tab": "\t"}.get(sep or "", sep) or detect_separator(text.split("\n", 1)[0], suffix)
    if sep == "::":
        text, sep = text.replace("::", "\x1f"), "\x1f"
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"{file.name}: cannot read item attributes as a '{show_sep(sep)}'-separated file "
                        f"({error_line(err)}); pass sep=…",
                        cli=f"{file.name}: cannot read item attributes as a '{show_sep(sep)}'-separated file "
                            f"({error_line(err)}); pass --attributes-sep") from None
    if id_column not in frame.columns:
        raise DataError(f"{file.name}: missing item id column {id_column!r} (found: {', '.join(map(str, frame.columns))})"
                        + (f"; {hint}" if hint else ""))
    return frame.set_index(id_column)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _rows(n: "int | np.integer", kind: str = "") -> str:
    return counted(n, f"{kind} row" if kind else "row")


def counted(n: "int | np.integer", noun: str) -> str:
    """``"1 row"``, ``"3 unknown-item rows"``: a count in a message, read as written (``noun`` singular).

    Example:
        >>> counted(1, "user"), counted(2_500, "test row")
        ('1 user', '2,500 test rows')
    """
    n = int(n)
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
