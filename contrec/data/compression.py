"""Compressed table files: read ``ratings.csv.gz`` (gzip, bzip2, xz, zip, zstd) as the plain file.

Interaction logs are often shipped compressed; a reader that took the compressed bytes for
text would report garbage as a bad first column. The format is told by the file's first
bytes, not its name, so a ``.csv`` that is in fact gzipped reads too, and the name of the
file inside (``ratings.tsv.gz`` → ``.tsv``; ``plays.tsv`` inside ``data.zip``) still picks the
separator.

Example:
    >>> import gzip, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.tsv.gz"
    >>> _ = path.write_bytes(gzip.compress(b"user\\titem\\nu1\\ti1\\n"))
    >>> data, suffix = read_file_bytes(path)
    >>> data.decode(), suffix
    ('user\\titem\\nu1\\ti1\\n', '.tsv')
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable

from contrec.errors import DataError, error_line

__all__ = ["read_file_bytes", "compression_of", "text_encoding", "decode_text"]

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_SUFFIXES = {".gz", ".gzip", ".bz2", ".xz", ".zip", ".zst", ".zstd"}


def compression_of(head: bytes) -> str | None:
    """The compression a file's first bytes announce, or None for a plain file."""
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


class _NotOneTable(ValueError):
    """A zip archive of several files: which one is the table is the user's call, not damage."""


def _unzip(raw: bytes) -> tuple[bytes, str]:
    """The one file of a zip archive and its name. What macOS's Finder adds beside it when it compresses a
    file (``__MACOSX/._plays.tsv``, ``.DS_Store``) is not a second table."""
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")
                   and PurePosixPath(m.filename).name != ".DS_Store"]
        if any(m.filename.startswith(("xl/", "word/", "ppt/")) for m in members):  # Office files are zips too
            raise _NotOneTable("an Office document (Excel workbooks are zip archives), not a table file: "
                               "save the sheet as CSV")
        if len(members) != 1:
            names = ", ".join(m.filename for m in members[:5]) or "none"
            raise _NotOneTable(f"a zip archive must hold exactly one file to read as a table; it holds "
                             f"{len(members)} ({names}): extract the one you want")
        return archive.read(members[0]), members[0].filename


def _unzstd(raw: bytes) -> bytes:
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        raise ImportError("reading zstd needs the zstandard package (pip install zstandard), or decompress it "
                          "first: zstd -d FILE") from None
    return zstandard.ZstdDecompressor().decompressobj().decompress(raw)


_DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.decompress, "bzip2": bz2.decompress, "xz": lzma.decompress, "zstd": _unzstd,
}


def _inner_suffix(path: Path) -> str:
    """The suffix that names the table format: ``.tsv`` for ``log.tsv.gz``, ``.csv`` for ``log.csv``."""
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in _SUFFIXES:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def read_file_bytes(path: Path) -> tuple[bytes, str]:
    """The file's bytes, decompressed when its first bytes say it is compressed, and its table suffix.

    Raises DataError (one line, naming the file) for a damaged or truncated archive."""
    raw = path.read_bytes()
    kind = compression_of(raw[:8])
    if kind is None:
        return raw, _inner_suffix(path)
    try:
        if kind == "zip":  # a zip's own name rarely says the format (data.zip); its member's does (plays.tsv)
            data, member = _unzip(raw)
            return data, _inner_suffix(path) or _inner_suffix(Path(member))
        return _DECOMPRESS[kind](raw), _inner_suffix(path)
    except ImportError as err:
        raise DataError(f"{path.name}: is {kind}-compressed; {err}") from None
    except _NotOneTable as err:
        raise DataError(f"{path.name}: {err}") from None
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error, zipfile.BadZipFile) as err:
        raise DataError(f"{path.name}: a damaged {kind} file ({error_line(err)}); check the download or "
                        "decompress it yourself to see where it breaks") from None


def text_encoding(raw: bytes, encoding: str) -> str:
    """The encoding to decode ``raw`` with: ``encoding``, except that a UTF-16 byte-order mark on bytes said to be
    UTF-8 means UTF-16 — Excel's "Unicode Text" export writes it, and no UTF-8 text can start with those bytes.
    Raises LookupError for an unknown encoding.

    Example:
        >>> text_encoding("user\\titem\\n".encode("utf-16"), "utf-8"), text_encoding(b"user,item\\n", "utf-8")
        ('utf-16', 'utf-8')
    """
    if codecs.lookup(encoding).name == "utf-8" and raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return encoding


def decode_text(raw: bytes, encoding: str) -> str:
    """``raw`` decoded as `text_encoding` says, without a leading byte-order mark (it would glue itself to the
    first field). Raises UnicodeDecodeError and LookupError as ``bytes.decode`` does.

    Example:
        >>> decode_text(b"\\xef\\xbb\\xbfuser\\n", "utf-8"), decode_text("u1\\n".encode("utf-16"), "utf-8")
        ('user\\n', 'u1\\n')
    """
    text = raw.decode(text_encoding(raw, encoding))
    return text[1:] if text.startswith("\ufeff") else text
