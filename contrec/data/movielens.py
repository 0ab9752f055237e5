"""MovieLens loaders: local copy first, else a verified, cached download from GroupLens.

Where the files are looked for, in order:

1. ``data_dir`` (argument) or the ``CONTREC_DATA`` environment variable: a folder holding
   ``ml-100k/``, ``ml-latest-small/`` … exactly as GroupLens ships them (unzipped);
2. the cache, ``CONTREC_CACHE`` or ``~/.cache/contrec``, filled by earlier downloads;
3. a download of the archive from GroupLens (``download=True``), which is verified against
   the registry's checksums before anything is extracted.

The registry (URLs, checksums, formats) is ``datasets/movielens.json`` in the repository,
installed as ``contrec.datasets``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable

import numpy as np
import pandas as pd

from contrec.data.interactions import Interactions, read_interactions
from contrec.errors import ConfigError, DatasetError
from contrec.runtime.artifact import atomic_write

__all__ = ["load_movielens", "fetch_movielens", "dataset_names", "DatasetInfo", "dataset_info",
           "locate_movielens", "cache_dir"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class DatasetInfo:
    """One registry entry."""

    name: str
    title: str
    url: str
    archive_md5: str | None
    archive_mb: int
    folder: str
    format: str
    files: dict[str, str | None]  # file name -> SHA-256 (None: not pinned)


def _registry() -> dict[str, DatasetInfo]:
    text = resources.files("contrec.datasets").joinpath("movielens.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    return {name: DatasetInfo(name=name, **entry) for name, entry in raw.items() if not name.startswith("_")}


def dataset_names() -> list[str]:
    """Names of the known datasets, e.g. ``['ml-100k', 'ml-1m', …]``."""
    return list(_registry())


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of ``name``; a wrong name lists the choices."""
    registry = _registry()
    if name not in registry:
        raise ConfigError(f"unknown dataset {name!r}; choose one of: {', '.join(registry)}")
    return registry[name]


def cache_dir() -> Path:
    """Where downloads are kept: ``$CONTREC_CACHE`` or ``~/.cache/contrec``."""
    return Path(os.environ.get("CONTREC_CACHE") or Path.home() / ".cache" / "contrec")


def _data_dirs(data_dir: str | os.PathLike | None) -> list[tuple[Path, str]]:
    dirs: list[tuple[Path, str]] = []
    if data_dir is not None:
        dirs.append((Path(data_dir), "data_dir"))
    elif os.environ.get("CONTREC_DATA"):
        dirs.append((Path(os.environ["CONTREC_DATA"]), "CONTREC_DATA"))
    dirs.append((cache_dir(), "cache"))
    return dirs


def locate_movielens(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The folder holding ``name``'s files, or None when no local copy exists."""
    info = dataset_info(name)
    for base, _ in _data_dirs(data_dir):
        folder = base / info.folder
        if all((folder / f).is_file() for f in info.files):
            return folder
    return None


def fetch_movielens(name: str, data_dir: str | os.PathLike | None = None, *, download: bool = True,
                    verify: bool = True, base_url: str | None = None,
                    progress: Callable[[int, int], None] | None = None) -> Path:
    """Make ``name``'s files available locally and return their folder.

    Uses a local copy when there is one (checking pinned SHA-256 digests), otherwise
    downloads the archive (``base_url`` overrides the GroupLens address, e.g. a mirror, or
    ``$CONTREC_MOVIELENS_URL``), verifies it, extracts it safely into the cache and
    verifies the extracted files. A failed check deletes what was downloaded.

    Example:
        >>> folder = fetch_movielens("ml-100k")  # doctest: +SKIP
    """
    info = dataset_info(name)
    folder = locate_movielens(name, data_dir)
    if folder is not None:
        if verify:
            _verify_files(info, folder)
        return folder
    searched = ", ".join(f"{p} ({why})" for p, why in _data_dirs(data_dir))
    if not download:
        raise DatasetError(f"{name}: no local copy (looked in {searched}); put the GroupLens files "
                           f"({', '.join(info.files)}) in <dir>/{info.folder}/ and set CONTREC_DATA=<dir>, "
                           f"or allow the download")
    url = _archive_url(info, base_url)
    target = cache_dir()
    try:
        target.mkdir(parents=True, exist_ok=True)
        archive = _download(url, target, progress)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise DatasetError(f"{name}: no local copy (looked in {searched}) and the download of {url} failed "
                           f"({getattr(err, 'reason', err)}); put the GroupLens files ({', '.join(info.files)}) "
                           f"in <dir>/{info.folder}/ and set CONTREC_DATA=<dir>") from None
    try:
        if verify:
            _verify_archive(info, archive, url)
        _extract_safely(archive, target, info)
        if verify:
            _verify_files(info, target / info.folder)
    except BaseException:
        archive.unlink(missing_ok=True)
        raise
    archive.unlink(missing_ok=True)
    return target / info.folder


def load_movielens(name: str = "ml-100k", data_dir: str | os.PathLike | None = None, min_rating: float | None = 4.0,
                   *, download: bool = True, verify: bool = True, ratings_as_weights: bool = False) -> Interactions:
    """Load a MovieLens release as positives, with timestamps and item attributes.

    Args:
        name: one of `dataset_names()`: ml-100k, ml-1m, ml-latest-small, ml-25m, ml-32m.
        data_dir: folder holding ``<name>/`` as GroupLens ships it; default ``$CONTREC_DATA``,
            then the download cache.
        min_rating: ratings ≥ this are positives (None keeps every rating as a positive).
        download: fetch from GroupLens when there is no local copy.
        verify: check the SHA-256 digests pinned in the registry.
        ratings_as_weights: each positive's weight is its rating (confidence for ALS, draws for
            ``positive_weights``); otherwise every positive weighs 1.

    Returns:
        `Interactions` with ``timestamps`` and ``item_attributes`` (title, year, genres as
        ``"Action|Comedy"``).

    Example:
        >>> data = load_movielens("ml-100k", min_rating=4.0)  # doctest: +SKIP
        >>> data  # doctest: +SKIP
        Interactions(942 users × 1447 items, 55375 positives, timestamps, item attributes ['title', 'year', 'genres'])
    """
    info = dataset_info(name)
    folder = fetch_movielens(name, data_dir, download=download, verify=verify)
    ratings, movies = _PARSERS[info.format](folder)
    weight = None
    if ratings_as_weights:
        ratings = ratings.assign(weight=ratings["rating"])
        weight = "weight"
    return read_interactions(ratings, user="user", item="item", rating="rating", timestamp="timestamp", weight=weight,
                             min_rating=min_rating, item_attributes=movies, source_name=f"{name} ratings")


# ---------------------------------------------------------------------------- parsers
_YEAR = re.compile(r"\((\d{4})\)\s*$")


def _year_from_title(titles: pd.Series) -> pd.Series:
    return titles.str.extract(_YEAR, expand=False).astype("Int64")


def _parse_ml100k(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    ratings = pd.read_csv(folder / "u.data", sep="\t", names=["user", "item", "rating", "timestamp"],
                          dtype={"user": str, "item": str, "rating": np.float64, "timestamp": np.int64})
    genre_names = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                   "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                   "Thriller", "War", "Western"]
    cols = ["item", "title", "release_date", "video_release_date", "url"] + genre_names
    movies = pd.read_csv(folder / "u.item", sep="|", names=cols, encoding="latin-1", dtype={"item": str})
    flags = movies[genre_names].to_numpy(dtype=bool)
    names = np.array(genre_names, dtype=object)
    genres = ["|".join(names[row]) for row in flags]  # per movie (1.7k), not per interaction
    year = _year_from_title(movies["title"].astype(str))
    released = pd.to_datetime(movies["release_date"], format="%d-%b-%Y", errors="coerce").dt.year.astype("Int64")
    attrs = pd.DataFrame({"title": movies["title"].astype(str).to_numpy(),
                          "year": pd.array(year.fillna(released), dtype="Int64"), "genres": genres},
                         index=movies["item"].to_numpy())
    return ratings, attrs


def _parse_ml1m(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    text = (folder / "ratings.dat").read_text(encoding="latin-1").replace("::", "\t")
    ratings = pd.read_csv(io.StringIO(text), sep="\t", names=["user", "item", "rating", "timestamp"],
                          dtype={"user": str, "item": str, "rating": np.float64, "timestamp": np.int64})
    mtext = (folder / "movies.dat").read_text(encoding="latin-1").replace("::", "\t")
    movies = pd.read_csv(io.StringIO(mtext), sep="\t", names=["item", "title", "genres"], dtype=str, quoting=3)
    return ratings, _movie_attrs(movies)


def _parse_ml_latest(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    ratings = pd.read_csv(folder / "ratings.csv", dtype={"userId": str, "movieId": str, "rating": np.float64,
                                                         "timestamp": np.int64})
    ratings = ratings.rename(columns={"userId": "user", "movieId": "item"})
    movies = pd.read_csv(folder / "movies.csv", dtype=str).rename(columns={"movieId": "item"})
    return ratings, _movie_attrs(movies)


def _movie_attrs(movies: pd.DataFrame) -> pd.DataFrame:
    titles = movies["title"].astype(str).str.strip()
    genres = movies["genres"].fillna("").replace("(no genres listed)", "")
    return pd.DataFrame({"title": titles.to_numpy(), "year": pd.array(_year_from_title(titles), dtype="Int64"),
                         "genres": genres.to_numpy()}, index=movies["item"].to_numpy())


_PARSERS: dict[str, Callable[[Path], tuple[pd.DataFrame, pd.DataFrame]]] = {
    "ml-100k": _parse_ml100k,
    "ml-1m": _parse_ml1m,
    "ml-latest": _parse_ml_latest,
}


# ---------------------------------------------------------------------------- download
def _archive_url(info: DatasetInfo, base_url: str | None) -> str:
    base = base_url or os.environ.get("CONTREC_MOVIELENS_URL")
    if not base:
        return info.url
    return base.rstrip("/") + "/" + info.url.rsplit("/", 1)[1]


def _download(url: str, target: Path, progress: Callable[[int, int], None] | None) -> Path:
    """Stream ``url`` into ``target`` (atomically: the file appears only when complete)."""
    def stream(out: BinaryIO) -> None:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
            if total and done != total:
                raise OSError(f"connection closed after {done} of {total} bytes")

    return atomic_write(target / url.rsplit("/", 1)[1], stream)


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _verify_archive(info: DatasetInfo, archive: Path, url: str) -> None:
    expected = info.archive_md5
    source = "the registry"
    if expected is None:
        # Not pinned: GroupLens publishes <archive>.md5 beside each archive.
        try:
            with urllib.request.urlopen(url + ".md5", timeout=60) as response:  # noqa: S310
                expected = response.read(4096).decode("ascii", "replace").split()[0].strip().lower()
                source = url + ".md5"
        except (urllib.error.URLError, OSError, IndexError) as err:
            if not any(info.files.values()):
                raise DatasetError(f"{info.name}: cannot verify {archive.name}: no pinned checksum and "
                                   f"{url}.md5 could not be read ({err})") from None
            return  # the extracted files are checked against pinned SHA-256 digests instead
    actual = _digest(archive, "md5")
    if actual != expected:
        raise DatasetError(f"{info.name}: checksum mismatch for {archive.name}: MD5 {actual}, expected {expected} "
                           f"(from {source}); the download was deleted, try again")
    (archive.parent / f"{info.name}.sha256").write_text(_digest(archive, "sha256") + "  " + archive.name + "\n")


def _verify_files(info: DatasetInfo, folder: Path) -> None:
    for fname, expected in info.files.items():
        if expected is None:
            continue
        actual = _digest(folder / fname, "sha256")
        if actual != expected:
            raise DatasetError(f"{info.name}: {folder / fname} has SHA-256 {actual[:16]}…, expected {expected[:16]}…; "
                               "the file differs from the GroupLens release (delete it to re-download, or pass "
                               "verify=False / --no-verify to use it anyway)")


def _extract_safely(archive: Path, target: Path, info: DatasetInfo) -> None:
    """Extract into a temporary folder inside ``target``, refusing members that escape it."""
    staging = Path(tempfile.mkdtemp(dir=target, prefix=f".{info.folder}.extract-"))
    try:
        try:
            zf = zipfile.ZipFile(archive)
        except zipfile.BadZipFile:
            raise DatasetError(f"{info.name}: {archive.name} is not a valid zip archive; it was deleted, "
                               "try again") from None
        with zf:
            root = staging.resolve()
            for member in zf.infolist():
                name = member.filename
                pure = PurePosixPath(name.replace("\\", "/"))
                mode = member.external_attr >> 16
                if (pure.is_absolute() or ".." in pure.parts or re.match(r"^[A-Za-z]:", name)
                        or stat.S_ISLNK(mode)):
                    raise DatasetError(f"{info.name}: {archive.name} holds an unsafe member {name!r} "
                                       "(absolute path, '..' or link); refusing to extract it")
                dest = (staging / pure).resolve()
                if root not in dest.parents and dest != root:
                    raise DatasetError(f"{info.name}: {archive.name} member {name!r} would be written outside "
                                       "the cache; refusing to extract it")
                if member.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)
        extracted = staging / info.folder
        if not all((extracted / f).is_file() for f in info.files):
            raise DatasetError(f"{info.name}: {archive.name} does not contain {info.folder}/ with "
                               f"{', '.join(info.files)}")
        final = target / info.folder
        if final.exists():
            shutil.rmtree(final)
        os.replace(extracted, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
