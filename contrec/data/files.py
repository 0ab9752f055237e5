"""Reading a table file (CSV/TSV/``::``/Parquet, plain or compressed) for the readers: separator sniffing,
encodings, one-line errors.

Every message names the file and, where it can, the line (the header is line 1), the column
and the value, and says how to fix it.
"""

from __future__ import annotations

import codecs
import csv
import io
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from contrec.data.compression import read_file_bytes, text_encoding
from contrec.errors import ConfigError, DataError, MissingColumnsError, error_line

__all__ = ["RowNamer", "read_table_file", "detect_separator", "show_sep", "missing_columns", "error_line"]

_SNIFF_DELIMITERS = [",", "\t", ";", "|"]


class RowNamer:
    """Turns a frame index label into 'file: line N' (files) or 'DataFrame: row L'."""

    def __init__(self, name: str, header_lines: int | None) -> None:
        self.name = name
        self.header_lines = header_lines  # None for DataFrames: name rows by index label

    def at(self, label: Any) -> str:
        if self.header_lines is None:
            return f"{self.name}: row {label}"
        return f"{self.name}: line {int(label) + 1 + self.header_lines}"


def read_table_file(path: Path, wanted: list[str], sep: str | None, names: Sequence[str] | None,
                    encoding: str, format: str, numeric: Sequence[str] = ()) -> tuple[pd.DataFrame, RowNamer]:
    """The file as a frame of text columns, except the ``numeric`` ones (ratings, weights, times), which the
    CSV parser reads as numbers where every value is one (else as text, for the readers to name the bad value)."""
    name = path.name
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file")
    if format == "parquet" or (format == "auto" and path.suffix.lower() in (".parquet", ".pq")):
        return read_parquet(path), RowNamer(name, None)
    raw, suffix = read_file_bytes(path)  # gzip, bzip2, xz, zip and zstd files read as the plain table
    if not raw.strip():
        raise DataError(f"{name}: the file is empty")
    try:
        encoding = text_encoding(raw, encoding)
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise DataError(decode_error_message(name, raw, err, sep, names, encoding)) from None
    except LookupError:
        raise ConfigError(f"unknown encoding {encoding!r}") from None
    if text.startswith("\ufeff"):  # a UTF-8 byte-order mark would otherwise glue itself to the first column name
        text = text[1:]
    first_line = text.split("\n", 1)[0]
    if sep is None:
        sep = detect_separator(first_line, suffix)
    source: "str | bytes" = text
    if sep == "::":  # MovieLens 1M/10M; the C parser takes only single-character separators
        source, sep = text.replace("::", "\x1f"), "\x1f"
    elif codecs.lookup(encoding).name == "utf-8":
        # the checked bytes, not the text: a StringIO of it costs 4 × the file's size, half the reader's peak memory
        source = raw[len(codecs.BOM_UTF8):] if raw.startswith(codecs.BOM_UTF8) else raw
    head = text[: text.find("\n", 0, 1 << 20) + 1 or 1 << 20]
    del text
    header = None if names is not None else 0
    options: dict[str, Any] = dict(sep=sep, header=header, names=list(names) if names else None,
                                   keep_default_na=False, na_values=[""], engine="c", quoting=csv.QUOTE_MINIMAL)
    try:
        frame = _read_csv(source, head, options, numeric)
    except pd.errors.ParserError as err:
        raise DataError(f"{name}: cannot parse as a '{show_sep(sep)}'-separated file ({error_line(err)}); "
                        "pass the right delimiter (sep=… / --sep)") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: the file is empty") from None
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas turns the extra leading fields of rows longer than the header into an index,
        # shifting every column: refuse rather than read the wrong columns
        raise DataError(f"{name}: line {1 if names is None else 0} has {len(frame.columns)} column names but the "
                        f"rows have more fields; quote fields that contain '{show_sep(sep)}' or pass the right "
                        "delimiter (sep=… / --sep)")
    # blank lines, keeping the original line numbers in the index (only a row whose first field is empty can be one)
    first_empty = frame.iloc[:, 0].isna().to_numpy()
    if first_empty.any():
        blank = np.zeros(len(frame), dtype=bool)
        blank[first_empty] = frame[first_empty].isna().all(axis=1).to_numpy()
        frame = frame[~blank]
    if frame.empty:
        raise DataError(f"{name}: has a header but no data rows")
    check_one_column_holds_the_line(frame, name, sep)
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise missing_columns(name, missing, list(frame.columns), sep, headerless=names is None)
    return frame, RowNamer(name, 0 if names is not None else 1)


def _stream(source: "str | bytes") -> "io.StringIO | io.BytesIO":
    return io.BytesIO(source) if isinstance(source, bytes) else io.StringIO(source)


def _read_csv(source: "str | bytes", head: str, options: dict[str, Any], numeric: Sequence[str]) -> pd.DataFrame:
    """Ids stay text ("007"); the ``numeric`` columns are parsed by the C parser, exactly as ``float()`` would
    (checked on 400,000 decimals), where converting their text afterwards took 60 × as long as reading.
    ``source``: the text, or its UTF-8 bytes; ``head``: its first line(s), for the column names."""
    columns = list(options["names"]) if options["names"] else _header(head, source, options)
    dtype = {c: object for c in columns if c not in numeric}  # Python strings, under every pandas version
    with warnings.catch_warnings():  # a column of numbers and text in different chunks: read as text below
        warnings.simplefilter("ignore", pd.errors.DtypeWarning)
        frame = pd.read_csv(_stream(source), dtype=dtype or None, skip_blank_lines=False,
                            encoding="utf-8" if isinstance(source, bytes) else None, **options)
    for column in numeric:  # the parser reads True/False as booleans: they are not numbers, say so as text
        if column in frame.columns and pd.api.types.is_bool_dtype(frame[column].dtype):
            frame[column] = frame[column].astype(str)
    return frame


def _header(head: str, source: "str | bytes", options: dict[str, Any]) -> list[str]:
    """The column names, parsed from the first line only (a copy of a 100 MB text costs a second)."""
    for part in (head, source):  # a quoted newline in the header: the whole file
        try:
            return list(pd.read_csv(_stream(part), nrows=0, encoding="utf-8" if isinstance(part, bytes) else None,
                                    **options).columns)
        except (pd.errors.ParserError, pd.errors.EmptyDataError):
            continue
    return []


def check_one_column_holds_the_line(frame: pd.DataFrame, name: str, sep: str) -> None:
    """With the wrong delimiter (and names given) the first column swallows each line and the others are empty:
    name the delimiter instead of reporting an empty column."""
    if len(frame.columns) < 2 or not frame.iloc[:, 1:].isna().all().all():
        return
    first = frame.iloc[:, 0].dropna().astype(str)
    others = [d for d in _SNIFF_DELIMITERS + ["::"] if d != sep and len(first) and first.str.contains(d, regex=False).all()]
    if others:
        what = (f"{name}: every line is one field ({first.iloc[0]!r}): the file seems to be "
                f"'{show_sep(others[0])}'-separated, not '{show_sep(sep)}'; pass")
        raise DataError(f"{what} sep='{show_sep(others[0])}'", cli=f"{what} --sep '{show_sep(others[0])}'")


def read_parquet(path: Path) -> pd.DataFrame:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ConfigError("reading Parquet needs pyarrow: pip install pyarrow (or contrec[parquet])") from None
    try:
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow raises many types for corrupt files
        raise DataError(f"{path.name}: not a readable Parquet file ({error_line(err)})") from None


def detect_separator(first_line: str, suffix: str) -> str:
    if "::" in first_line:
        return "::"
    if suffix == ".tsv":
        return "\t"
    counts = {d: first_line.count(d) for d in _SNIFF_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def show_sep(sep: str) -> str:
    return {"\t": "\\t", "\x1f": "::"}.get(sep, sep)


def missing_columns(name: str, missing: list[str], found: list[Any], sep: str, headerless: bool = True
                     ) -> MissingColumnsError:
    """The error for columns that are not there, with the likely reason: a wrong delimiter, a file without a
    header line, or a wrong column name (in Python's and the command line's words)."""
    found_s = [str(c) for c in found]
    if len(found_s) == 1:
        others = [d for d in _SNIFF_DELIMITERS + ["::"] if d != sep and d in found_s[0]]
        if others:
            what = (f"{name}: found a single column {found_s[0]!r}: the file seems to be "
                    f"'{show_sep(others[0])}'-separated, not '{show_sep(sep)}'; pass")
            return MissingColumnsError(f"{what} sep='{show_sep(others[0])}'",
                                       cli=f"{what} --sep '{show_sep(others[0])}'")
    if headerless and found_s and all(looks_like_a_value(c) for c in found_s):
        example = ",".join((["user", "item", "weight", "timestamp"] + [f"col{i}" for i in range(5, 99)])
                           [:len(found_s)])
        what = (f"{name}: the first line looks like data, not a header (found: {', '.join(found_s)}); "
                "name the columns of a file without a header with")
        return MissingColumnsError(f"{what} names=[...], e.g. names={example.split(',')}",
                                   cli=f"{what} --names, e.g. --names {example}")
    col = "column" if len(missing) == 1 else "columns"
    what = f"{name}: missing {col} {', '.join(repr(m) for m in missing)} (found: {', '.join(found_s)})"
    close = {m: _same_name(m, found_s) for m in missing}
    if all(close.values()):  # only the spelling differs (UserID for userid, "item " for item)
        fixes = ", ".join(f"{close[m]!r} for {m!r}" for m in missing)
        return MissingColumnsError(f"{what}; did you mean {fixes}? Column names are matched exactly")
    what += "; name the right ones with"
    return MissingColumnsError(f"{what} user=/item=/rating=…", cli=f"{what} --user/--item/--rating")


def _same_name(wanted: str, found: list[str]) -> str | None:
    """The one found column whose name differs from ``wanted`` only in case, spaces, '_' or '-'."""
    def key(text: str) -> str:
        return "".join(c for c in text.casefold() if c not in " _-")

    matches = [f for f in found if key(f) == key(wanted)]
    return matches[0] if len(matches) == 1 else None


def looks_like_a_value(text: str) -> bool:
    """A header field that is a number (an id, a count, a time) was probably the first data row."""
    try:
        float(text.strip())
    except ValueError:
        return False
    return True


def decode_error_message(name: str, raw: bytes, err: UnicodeDecodeError, sep: str | None,
                          names: Sequence[str] | None, encoding: str) -> str:
    line_no = raw.count(b"\n", 0, err.start) + 1
    line_start = raw.rfind(b"\n", 0, err.start) + 1
    line_end = raw.find(b"\n", err.start)
    line = raw[line_start: line_end if line_end >= 0 else len(raw)]
    header = raw.split(b"\n", 1)[0].decode(encoding, errors="replace").strip("\r\ufeff")
    where = ""
    try:
        delim = sep or detect_separator(header, "")
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


# ---------------------------------------------------------------------------- validation
