"""MovieLens: local copies, verified downloads (served from a local file:// mirror), safe extraction."""

import zipfile
from pathlib import Path

import pytest

import contrec
from contrec.data import movielens
from contrec.errors import ConfigError, DatasetError


def test_registry_names_and_wrong_name():
    assert contrec.dataset_names() == ["ml-100k", "ml-1m", "ml-latest-small", "ml-25m", "ml-32m"]
    with pytest.raises(ConfigError, match="unknown dataset 'ml-7'; choose one of: ml-100k, ml-1m"):
        contrec.load_movielens("ml-7")


@pytest.mark.integration
def test_load_ml100k_from_data_dir(data_dir):
    data = contrec.load_movielens("ml-100k", data_dir=data_dir)
    assert data.shape == (942, 1447) and len(data) == 55375  # ratings ≥ 4 in the GroupLens release
    assert data.timestamps is not None
    attrs = data.item_attributes
    toy = attrs.loc["1"]
    assert toy["title"] == "Toy Story (1995)" and toy["year"] == 1995
    assert toy["genres"] == "Animation|Children's|Comedy"
    everything = contrec.load_movielens("ml-100k", data_dir=data_dir, min_rating=None)
    assert len(everything) == 100_000


@pytest.mark.integration
def test_load_ml_latest_small(data_dir):
    data = contrec.load_movielens("ml-latest-small", data_dir=data_dir, min_rating=None)
    assert data.shape == (610, 9724) and len(data) == 100_836
    assert data.item_attributes.loc["1", "genres"] == "Adventure|Animation|Children|Comedy|Fantasy"


def _archive(data_dir: Path, dest: Path, extra: dict[str, bytes] | None = None, drop: str | None = None) -> Path:
    """A zip laid out like GroupLens's ml-100k.zip, built from the shared copy."""
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "ml-100k.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted((data_dir / "ml-100k").iterdir()):
            if f.name != drop:
                zf.write(f, f"ml-100k/{f.name}")
        for name, blob in (extra or {}).items():
            zf.writestr(name, blob)
    return path


@pytest.fixture
def mirror(tmp_path, monkeypatch, data_dir):
    """A local mirror + empty cache + no CONTREC_DATA: the loader must download."""
    monkeypatch.delenv("CONTREC_DATA", raising=False)
    monkeypatch.setenv("CONTREC_CACHE", str(tmp_path / "cache"))
    server = tmp_path / "server"
    monkeypatch.setenv("CONTREC_MOVIELENS_URL", server.as_uri())
    # the pinned MD5 is of GroupLens's own zip; our rebuilt zip differs, so pin its MD5 instead
    info = movielens.dataset_info("ml-100k")

    def pin(archive: Path) -> None:
        patched = movielens.DatasetInfo(**{**info.__dict__, "archive_md5": movielens._digest(archive, "md5")})
        monkeypatch.setattr(movielens, "dataset_info", lambda name: patched)

    return server, pin


@pytest.mark.integration
def test_download_verify_extract_and_cache(mirror, data_dir, tmp_path):
    server, pin = mirror
    pin(_archive(data_dir, server))
    data = contrec.load_movielens("ml-100k")
    assert len(data) == 55375
    cache = tmp_path / "cache"
    assert (cache / "ml-100k" / "u.data").is_file() and not list(cache.glob("*.zip*"))
    assert (cache / "ml-100k.sha256").is_file()
    # second load uses the cache even with the mirror gone
    for f in server.iterdir():
        f.unlink()
    assert len(contrec.load_movielens("ml-100k")) == 55375


@pytest.mark.integration
def test_checksum_mismatch_deletes_the_download(mirror, data_dir, tmp_path, monkeypatch):
    server, _ = mirror
    _archive(data_dir, server)  # registry still pins GroupLens's MD5: this archive does not match
    with pytest.raises(DatasetError, match="checksum mismatch for ml-100k.zip"):
        contrec.load_movielens("ml-100k")
    cache = tmp_path / "cache"
    assert not list(cache.glob("ml-100k*")) and not list(cache.glob(".*"))


@pytest.mark.integration
def test_tampered_file_inside_a_matching_archive_is_caught(mirror, data_dir, tmp_path):
    server, pin = mirror
    archive = _archive(data_dir, server, drop="u.data", extra={"ml-100k/u.data": b"1\t1\t5\t0\n"})
    pin(archive)
    with pytest.raises(DatasetError, match="u.data has SHA-256"):
        contrec.load_movielens("ml-100k")


@pytest.mark.integration
@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt", "ml-100k/../../evil.txt"])
def test_zip_slip_is_refused(mirror, data_dir, tmp_path, member):
    server, pin = mirror
    pin(_archive(data_dir, server, extra={member: b"owned"}))
    with pytest.raises(DatasetError, match="unsafe member"):
        contrec.load_movielens("ml-100k")
    assert not list(tmp_path.rglob("evil.txt"))
    assert not (tmp_path / "cache" / "ml-100k").exists()


def test_offline_without_local_copy_says_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.delenv("CONTREC_DATA", raising=False)
    monkeypatch.setenv("CONTREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CONTREC_MOVIELENS_URL", (tmp_path / "nowhere").as_uri())
    with pytest.raises(DatasetError, match=r"ml-100k: no local copy .* put the GroupLens files \(u.data, u.item\) "
                                           r"in <dir>/ml-100k/ and set CONTREC_DATA=<dir>") as info:
        contrec.load_movielens("ml-100k")
    assert "\n" not in str(info.value)
    with pytest.raises(DatasetError, match="no local copy"):
        contrec.load_movielens("ml-100k", download=False)


@pytest.mark.integration
def test_modified_local_copy_is_reported(tmp_path, data_dir):
    local = tmp_path / "ml-100k"
    local.mkdir()
    for name in ("u.data", "u.item"):
        (local / name).write_bytes((data_dir / "ml-100k" / name).read_bytes())
    with (local / "u.data").open("ab") as f:
        f.write(b"1\t1\t5\t0\n")
    with pytest.raises(DatasetError, match="differs from the GroupLens release"):
        contrec.load_movielens("ml-100k", data_dir=tmp_path)
    with pytest.warns(contrec.DuplicateRowsWarning, match="ml-100k ratings: 1 duplicate"):
        data = contrec.load_movielens("ml-100k", data_dir=tmp_path, verify=False)
    assert len(data) == 55375


def test_ml1m_format_parser(tmp_path):
    """ml-1m's '::'-separated latin-1 files, written here in the GroupLens layout."""
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_bytes(b"1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    (folder / "movies.dat").write_bytes("1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
                                        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
                                        "5::Am\xe9lie (2001)::Comedy|Romance\n".encode("latin-1"))
    data = contrec.load_movielens("ml-1m", data_dir=tmp_path)
    assert data.shape == (2, 1) and len(data) == 2
    assert data.item_attributes.loc["1193", "year"] == 1975
    everything = contrec.load_movielens("ml-1m", data_dir=tmp_path, min_rating=None)
    assert everything.item_attributes.loc["661", "genres"] == "Animation|Children's|Musical"
