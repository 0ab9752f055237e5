"""Read interaction logs (CSV/TSV/``::``/Parquet/DataFrame) into `Interactions`, validating as we go.

Every problem is reported as a `DataError` whose message names the file, the line (the
header is line 1) or DataFrame row, the column and the value, and says how to fix it.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import pandas as pd

from contrec.data.interactions import IdMap, Interactions
from contrec.errors import ConfigError, DataError

__all__ = ["read_interactions", "read_item_attributes", "DuplicateRowsWarning", "DroppedRowsWarning",
           "DUPLICATE_POLICIES"]

DuplicatePolicy = Literal["last", "first", "sum", "error"]
DUPLICATE_POLICIES: tuple[str, ...] = ("last", "first", "sum", "error")
_SNIFF_DELIMITERS = [",", "\t", ";", "|"]


class DuplicateRowsWarning(UserWarning):
    """Some (user, item) pairs occurred more than once; the duplicate policy resolved them."""


class DroppedRowsWarning(UserWarning):
    """Rows were dropped on purpose (unknown ids when aligning, zero weights); the count is given."""


def read_interactions(
    source: "str | Path | pd.DataFrame",
    *,
    user: str = "user",
    item: str = "item",
    rating: str | None = None,
    weight: str | None = None,
    timestamp: str | None = None,
    min_rating: float | None = None,
    sep: str | None = None,
    names: Sequence[str] | None = None,
    encoding: str = "utf-8",
    format: Literal["auto", "csv", "parquet"] = "auto",
    duplicates: DuplicatePolicy = "last",
    item_attributes: pd.DataFrame | None = None,
    users: IdMap | None = None,
    items: IdMap | None = None,
    unknown: Literal["error", "drop"] = "error",
    unknown_items: Literal["error", "drop", "extend"] | None = None,
    source_name: str | None = None,
) -> Interactions:
    """Read and validate an interaction log.

    Args:
        source: a path (``.csv``, ``.tsv``, ``.dat``, ``.txt``, ``.parquet``) or a DataFrame.
        user, item: column names of the user and item ids. Ids are read as text and kept
            verbatim (surrounding spaces stripped): "007" stays "007".
        rating: column of explicit ratings; with ``min_rating`` only rows rated ≥ it are positives.
        weight: column of non-negative weights (e.g. play counts); rows of weight 0 are dropped.
            Without it every positive has weight 1.
        timestamp: column of times: numbers (seconds) or date strings.
        sep: delimiter; detected from the header when None (``,``, tab, ``;``, ``|``, ``::``).
        names: column names for a file without a header line.
        duplicates: what to do when a (user, item) pair repeats: ``"last"`` keeps the latest row
            (by timestamp when given, else the later line), ``"first"`` the earliest, ``"sum"``
            sums the weights (keeping the latest rating and timestamp), ``"error"`` refuses.
            The number of duplicates is reported in a `DuplicateRowsWarning`.
        item_attributes: optional DataFrame indexed by raw item id (title, genres, …).
        users, items: existing id maps to read into (e.g. a test file for a trained model);
            ids outside them are an error, or dropped with a warning when ``unknown="drop"``.
        unknown_items: the same for item ids (default: as ``unknown``); ``"extend"`` keeps
            rows of unknown items and appends those ids to the item map after ``items``
            (a test file: items the model cannot know are relevant and count as misses).
        source_name: what messages call the source (default: the file name, or "DataFrame").

    Returns:
        `Interactions` of the positives.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"userId": ["1", "1", "2"], "movieId": ["10", "20", "10"],
        ...                    "rating": [5.0, 3.0, 4.5]})
        >>> read_interactions(df, user="userId", item="movieId", rating="rating", min_rating=4)
        Interactions(2 users × 1 items, 2 positives)
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise ConfigError(f"unknown duplicates policy {duplicates!r}; choose one of: {', '.join(DUPLICATE_POLICIES)}")
    if unknown not in ("error", "drop"):
        raise ConfigError(f"unknown={unknown!r} is not valid; choose 'error' or 'drop'")
    if unknown_items not in (None, "error", "drop", "extend"):
        raise ConfigError(f"unknown_items={unknown_items!r} is not valid; choose 'error', 'drop' or 'extend'")
    if min_rating is not None and rating is None:
        raise ConfigError("min_rating needs a rating column: pass rating='<column>'",
                          cli="--min-rating needs a rating column: pass --rating <column>")
    columns = {"user": user, "item": item, "rating": rating, "weight": weight, "timestamp": timestamp}
    wanted = [c for c in columns.values() if c is not None]
    if len(set(wanted)) != len(wanted):
        raise ConfigError(f"the same column is named twice in {columns}")

    if isinstance(source, pd.DataFrame):
        frame, where = source, _RowNamer(source_name or "DataFrame", None)
    else:
        frame, where = _read_file(Path(source), wanted, sep, names, encoding, format)
        where.name = source_name or where.name
    return _frame_to_interactions(frame, where, columns, min_rating, duplicates, item_attributes,
                                  users, items, unknown, unknown_items or unknown)


# ---------------------------------------------------------------------------- files
class _RowNamer:
    """Turns a frame index label into 'file: line N' (files) or 'DataFrame: row L'."""

    def __init__(self, name: str, header_lines: int | None) -> None:
        self.name = name
        self.header_lines = header_lines  # None for DataFrames: name rows by index label

    def at(self, label: Any) -> str:
        if self.header_lines is None:
            return f"{self.name}: row {label}"
        return f"{self.name}: line {int(label) + 1 + self.header_lines}"


def _read_file(path: Path, wanted: list[str], sep: str | None, names: Sequence[str] | None,
               encoding: str, format: str) -> tuple[pd.DataFrame, _RowNamer]:
    name = path.name
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file")
    if format == "parquet" or (format == "auto" and path.suffix.lower() in (".parquet", ".pq")):
        return _read_parquet(path), _RowNamer(name, None)
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{name}: the file is empty")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise DataError(_decode_error_message(name, raw, err, sep, names, encoding)) from None
    except LookupError:
        raise ConfigError(f"unknown encoding {encoding!r}") from None
    if text.startswith("\ufeff"):  # a UTF-8 byte-order mark would otherwise glue itself to the first column name
        text = text[1:]
    first_line = text.split("\n", 1)[0]
    if sep is None:
        sep = _detect_separator(first_line, path.suffix.lower())
    if sep == "::":  # MovieLens 1M/10M; the C parser takes only single-character separators
        text, sep = text.replace("::", "\x1f"), "\x1f"
    header = None if names is not None else 0
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, header=header, names=list(names) if names else None,
                            dtype=str, keep_default_na=False, na_values=[""], skip_blank_lines=False,
                            engine="c", quoting=csv.QUOTE_MINIMAL)
    except pd.errors.ParserError as err:
        raise DataError(f"{name}: cannot parse as a '{_show_sep(sep)}'-separated file ({_first_line(err)}); "
                        "pass the right delimiter (sep=… / --sep)") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: the file is empty") from None
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas turns the extra leading fields of rows longer than the header into an index,
        # shifting every column: refuse rather than read the wrong columns
        raise DataError(f"{name}: line {1 if names is None else 0} has {len(frame.columns)} column names but the "
                        f"rows have more fields; quote fields that contain '{_show_sep(sep)}' or pass the right "
                        "delimiter (sep=… / --sep)")
    frame = frame.dropna(how="all")  # blank lines, keeping the original line numbers in the index
    if frame.empty:
        raise DataError(f"{name}: has a header but no data rows")
    _check_one_column_holds_the_line(frame, name, sep)
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise _missing_columns(name, missing, list(frame.columns), sep, headerless=names is None)
    return frame, _RowNamer(name, 0 if names is not None else 1)


def _check_one_column_holds_the_line(frame: pd.DataFrame, name: str, sep: str) -> None:
    """With the wrong delimiter (and names given) the first column swallows each line and the others are empty:
    name the delimiter instead of reporting an empty column."""
    if len(frame.columns) < 2 or not frame.iloc[:, 1:].isna().all().all():
        return
    first = frame.iloc[:, 0].dropna().astype(str)
    others = [d for d in _SNIFF_DELIMITERS + ["::"] if d != sep and len(first) and first.str.contains(d, regex=False).all()]
    if others:
        what = (f"{name}: every line is one field ({first.iloc[0]!r}): the file seems to be "
                f"'{_show_sep(others[0])}'-separated, not '{_show_sep(sep)}'; pass")
        raise DataError(f"{what} sep='{_show_sep(others[0])}'", cli=f"{what} --sep '{_show_sep(others[0])}'")


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ConfigError("reading Parquet needs pyarrow: pip install pyarrow (or contrec[parquet])") from None
    try:
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow raises many types for corrupt files
        raise DataError(f"{path.name}: not a readable Parquet file ({_first_line(err)})") from None


def _detect_separator(first_line: str, suffix: str) -> str:
    if "::" in first_line:
        return "::"
    if suffix == ".tsv":
        return "\t"
    counts = {d: first_line.count(d) for d in _SNIFF_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _show_sep(sep: str) -> str:
    return {"\t": "\\t", "\x1f": "::"}.get(sep, sep)


def _missing_columns(name: str, missing: list[str], found: list[Any], sep: str, headerless: bool = True
                     ) -> DataError:
    """The error for columns that are not there, with the likely reason: a wrong delimiter, a file without a
    header line, or a wrong column name (in Python's and the command line's words)."""
    found_s = [str(c) for c in found]
    if len(found_s) == 1:
        others = [d for d in _SNIFF_DELIMITERS + ["::"] if d != sep and d in found_s[0]]
        if others:
            what = (f"{name}: found a single column {found_s[0]!r}: the file seems to be "
                    f"'{_show_sep(others[0])}'-separated, not '{_show_sep(sep)}'; pass")
            return DataError(f"{what} sep='{_show_sep(others[0])}'", cli=f"{what} --sep '{_show_sep(others[0])}'")
    if headerless and found_s and all(_looks_like_a_value(c) for c in found_s):
        example = ",".join((["user", "item", "weight", "timestamp"] + [f"col{i}" for i in range(5, 99)])
                           [:len(found_s)])
        what = (f"{name}: the first line looks like data, not a header (found: {', '.join(found_s)}); "
                "name the columns of a file without a header with")
        return DataError(f"{what} names=[...], e.g. names={example.split(',')}",
                         cli=f"{what} --names, e.g. --names {example}")
    col = "column" if len(missing) == 1 else "columns"
    what = f"{name}: missing {col} {', '.join(repr(m) for m in missing)} (found: {', '.join(found_s)}); name the right ones with"
    return DataError(f"{what} user=/item=/rating=…", cli=f"{what} --user/--item/--rating")


def _looks_like_a_value(text: str) -> bool:
    """A header field that is a number (an id, a count, a time) was probably the first data row."""
    try:
        float(text.strip())
    except ValueError:
        return False
    return True


def _decode_error_message(name: str, raw: bytes, err: UnicodeDecodeError, sep: str | None,
                          names: Sequence[str] | None, encoding: str) -> str:
    line_no = raw.count(b"\n", 0, err.start) + 1
    line_start = raw.rfind(b"\n", 0, err.start) + 1
    line_end = raw.find(b"\n", err.start)
    line = raw[line_start: line_end if line_end >= 0 else len(raw)]
    header = raw.split(b"\n", 1)[0].decode(encoding, errors="replace").strip("\r\ufeff")
    where = ""
    try:
        delim = sep or _detect_separator(header, "")
        fields = line.split(delim.encode())
        offset = err.start - line_start
        pos = 0
        columns = list(names) if names else header.split(delim)
        for j, f in enumerate(fields):
            if pos <= offset < pos + len(f) + len(delim):
                where = f" column {columns[j]!r}" if j < len(columns) else f" field {j + 1}"
                break
            pos += len(f) + len(delim)
    except Exception:  # the location is a courtesy; the line number is what matters
        where = ""
    return (f"{name}: line {line_no}:{where} has bytes that are not valid {encoding} "
            f"({raw[err.start:err.end]!r}); re-save the file as {encoding} or pass the file's encoding "
            f"(encoding='latin-1' / --encoding latin-1)")


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


# ---------------------------------------------------------------------------- validation
def _frame_to_interactions(frame: pd.DataFrame, where: _RowNamer, columns: dict[str, str | None],
                           min_rating: float | None, duplicates: str, item_attributes: pd.DataFrame | None,
                           users: IdMap | None, items: IdMap | None, unknown: str,
                           unknown_items: str = "error") -> Interactions:
    name = where.name
    missing = [c for c in columns.values() if c is not None and c not in frame.columns]
    if missing:
        raise _missing_columns(name, missing, list(frame.columns), ",", headerless=False)
    if len(frame) == 0:
        raise DataError(f"{name}: has no rows")
    user_ids = _id_column(frame[columns["user"]], columns["user"], where)
    item_ids = _id_column(frame[columns["item"]], columns["item"], where)
    data = pd.DataFrame({"user": user_ids, "item": item_ids}, index=frame.index)
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

    data = _resolve_duplicates(data, duplicates, where, columns)

    if "weight" in data:
        zero = data["weight"].to_numpy() == 0
        if zero.any():
            warnings.warn(f"{name}: dropped {int(zero.sum())} rows with weight 0 (not positives)",
                          DroppedRowsWarning, stacklevel=3)
            data = data[~zero]
    if min_rating is not None:
        ratings = data["rating"]
        data = data[ratings >= min_rating]
        if data.empty:
            what = f"{name}: no row has {columns['rating']!r} ≥ {min_rating:g} (largest is {ratings.max():g}); lower"
            raise DataError(f"{what} min_rating", cli=f"{what} --min-rating")

    user_map = users if users is not None else IdMap(pd.unique(data["user"].to_numpy()))
    item_map = items if items is not None else IdMap(pd.unique(data["item"].to_numpy()))
    u = user_map.index(data["user"].to_numpy())
    i = item_map.index(data["item"].to_numpy())
    if items is not None and unknown_items == "extend" and (i < 0).any():
        # items the model never saw stay in the data, after its catalogue: relevant, never retrievable
        new = pd.unique(data["item"].to_numpy()[i < 0])
        item_map = IdMap(np.concatenate([items.ids, new.astype(object)]))
        i = item_map.index(data["item"].to_numpy())
    if users is not None or items is not None:
        bad_user, bad_item = u < 0, i < 0
        for kind, bad, policy, raw_col, known in (("user", bad_user, unknown, "user", len(user_map)),
                                                  ("item", bad_item, unknown_items, "item", len(item_map))):
            if bad.any() and policy == "error":
                k = int(np.argmax(bad))
                what = (f"{where.at(data.index[k])}: {kind} id {data[raw_col].iloc[k]!r} is not in the training "
                        f"data ({known} known {kind}s); drop such rows with")
                raise DataError(f"{what} {'unknown' if kind == 'user' else 'unknown_items'}='drop'",
                                cli=f"{what} --drop-unknown")
        bad = bad_user | bad_item
        if bad.any():
            warnings.warn(f"{name}: dropped {int(bad.sum())} rows whose user or item is not in the training data "
                          f"({int(bad_user.sum())} unknown-user rows, {int((bad_item & ~bad_user).sum())} "
                          "unknown-item rows)", DroppedRowsWarning, stacklevel=3)
            data, u, i = data[~bad], u[~bad], i[~bad]
    if data.empty:
        raise DataError(f"{name}: no interactions left after validation")
    weights = data["weight"].to_numpy(np.float32) if "weight" in data else None
    times = data["timestamp"].to_numpy(np.int64) if "timestamp" in data else None
    return Interactions.from_codes(u, i, user_map, item_map, weights, times, item_attributes)


def _id_column(col: pd.Series, name: str, where: _RowNamer) -> pd.Series:
    if pd.api.types.is_float_dtype(col.dtype):
        # A DataFrame's integer ids become floats when pandas meets a NaN; write 7.0 as "7".
        values = col.to_numpy()
        if np.isfinite(values).all() and np.all(values == np.round(values)):
            col = pd.Series(values.astype(np.int64), index=col.index)
    missing = col.isna().to_numpy()
    text = col.astype("string").str.strip()
    empty = missing | (text.fillna("") == "").to_numpy()
    if empty.any():
        label = col.index[np.argmax(empty)]
        raise DataError(f"{where.at(label)}: column {name!r} is empty; every row needs a {name}")
    return text.astype(object)


def _number_column(col: pd.Series, name: str, where: _RowNamer) -> pd.Series:
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna().to_numpy() | ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        label = col.index[np.argmax(bad)]
        raw = col.loc[label]
        if raw is None or (isinstance(raw, float) and np.isnan(raw)) or str(raw).strip() in ("", "nan", "NaN"):
            raise DataError(f"{where.at(label)}: column {name!r} is empty (NaN); every row needs a number")
        raise DataError(f"{where.at(label)}: column {name!r} value {str(raw)!r} is not a finite number")
    return values.astype(np.float64)


def _time_column(col: pd.Series, name: str, where: _RowNamer) -> pd.Series:
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


def _resolve_duplicates(data: pd.DataFrame, policy: str, where: _RowNamer,
                        columns: dict[str, str | None]) -> pd.DataFrame:
    dup = data.duplicated(["user", "item"], keep=False)
    n_dup = int(dup.sum() - (~data[dup].duplicated(["user", "item"])).sum()) if dup.any() else 0
    if n_dup == 0:
        return data
    if policy == "error":
        first = data.index[np.argmax(data.duplicated(["user", "item"]).to_numpy())]
        row = data.loc[first]
        raise DataError(f"{where.at(first)}: (user {row['user']!r}, item {row['item']!r}) appears more than once; "
                        "choose a duplicates policy: last, first or sum (--duplicates)")
    order_cols = ["timestamp"] if "timestamp" in data else []
    data = data.assign(_line=np.arange(len(data))).sort_values(order_cols + ["_line"], kind="stable")
    if policy == "sum":
        agg: dict[str, Any] = {c: "last" for c in data.columns if c not in ("user", "item", "_line")}
        if "weight" in data:
            agg["weight"] = "sum"
        agg["_line"] = "first"
        data = data.groupby(["user", "item"], sort=False, as_index=False).agg(agg)
        kept = "summed the weights of each"
    else:
        data = data.drop_duplicates(["user", "item"], keep=policy)
        kept = "kept the " + ("latest" if policy == "last" else "earliest") + " of each"
    warnings.warn(f"{where.name}: {n_dup} duplicate (user, item) rows; {kept} (duplicates={policy!r})",
                  DuplicateRowsWarning, stacklevel=4)
    return data.sort_values("_line").drop(columns="_line")


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
    try:
        text = file.read_bytes().decode(encoding)
    except UnicodeDecodeError as err:
        raise DataError(f"{file.name}: item attributes have bytes that are not valid {encoding} at byte "
                        f"{err.start}; re-save the file as {encoding}") from None
    text = text[1:] if text.startswith("\ufeff") else text
    if not text.strip():
        raise DataError(f"{file.name}: the item attributes file is empty")
    sep = {"\\t": "\t", "tab": "\t"}.get(sep or "", sep) or _detect_separator(text.split("\n", 1)[0],
                                                                          file.suffix.lower())
    if sep == "::":
        text, sep = text.replace("::", "\x1f"), "\x1f"
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"{file.name}: cannot read item attributes as a '{_show_sep(sep)}'-separated file "
                        f"({str(err).strip().splitlines()[0]}); pass sep=…",
                        cli=f"{file.name}: cannot read item attributes as a '{_show_sep(sep)}'-separated file "
                            f"({str(err).strip().splitlines()[0]}); pass --attributes-sep") from None
    if id_column not in frame.columns:
        raise DataError(f"{file.name}: missing item id column {id_column!r} (found: {', '.join(map(str, frame.columns))})"
                        + (f"; {hint}" if hint else ""))
    return frame.set_index(id_column)
