"""Readers: formats, delimiter detection, duplicate policy, and one test per bad input."""


import numpy as np
import pandas as pd
import pytest

from contrec import DroppedRowsWarning, DuplicateRowsWarning, Interactions, read_interactions
from contrec.errors import ConfigError, DataError


def write(tmp_path, text, name="ratings.csv", mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("sep", [",", "\t", ";", "|"])
def test_delimiter_is_detected(tmp_path, sep):
    path = write(tmp_path, f"u{sep}i{sep}r\n1{sep}a{sep}5\n2{sep}b{sep}3\n")
    data = read_interactions(path, user="u", item="i", rating="r", min_rating=4)
    assert len(data) == 1 and data.users.ids.tolist() == ["1"]


def test_movielens_double_colon_format(tmp_path):
    path = write(tmp_path, "1::10::5::978300760\n1::20::3::978302109\n2::10::4::978301968\n", "ratings.dat")
    data = read_interactions(path, names=["user", "item", "rating", "ts"], rating="rating", timestamp="ts",
                             min_rating=4)
    assert len(data) == 2 and data.timestamps.tolist() == [978300760, 978301968]


def test_ids_are_not_retyped(tmp_path):
    path = write(tmp_path, "user,item\n007,0042\n7,42\n")
    data = read_interactions(path)
    assert data.users.ids.tolist() == ["007", "7"]
    assert data.items.ids.tolist() == ["0042", "42"]


def test_parquet_round_trip(tmp_path):
    df = pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"], "t": [1, 2]})
    path = tmp_path / "log.parquet"
    df.to_parquet(path)
    data = Interactions.from_parquet(path, timestamp="t")
    assert len(data) == 2 and data.timestamps.tolist() == [1, 2]


def test_dates_as_timestamps(tmp_path):
    path = write(tmp_path, "user,item,when\na,x,2020-01-01\na,y,2020-01-02T00:00:01\n")
    data = read_interactions(path, timestamp="when")
    assert sorted(data.timestamps.tolist()) == [1577836800, 1577923201]


@pytest.mark.parametrize("policy,expected_weight", [("last", 3.0), ("first", 1.0), ("sum", 6.0)])
def test_duplicate_policies_and_warning(tmp_path, policy, expected_weight):
    path = write(tmp_path, "user,item,w,t\na,x,1,10\na,x,3,30\na,x,2,20\nb,x,1,5\n")
    with pytest.warns(DuplicateRowsWarning, match="2 duplicate"):
        data = read_interactions(path, weight="w", timestamp="t", duplicates=policy)
    frame = data.to_frame().set_index("user")
    assert frame.loc["a", "weight"] == expected_weight
    assert len(data) == 2


def test_duplicates_error_names_the_line(tmp_path):
    path = write(tmp_path, "user,item\na,x\nb,y\na,x\n")
    with pytest.raises(DataError, match=r"ratings.csv: line 4: \(user 'a', item 'x'\) appears more than once"):
        read_interactions(path, duplicates="error")


def test_zero_weight_rows_are_dropped_with_a_warning(tmp_path):
    path = write(tmp_path, "user,item,w\na,x,0\na,y,2\n")
    with pytest.warns(UserWarning, match="dropped 1 row with weight 0"):
        data = read_interactions(path, weight="w")
    assert len(data) == 1


def test_a_true_false_column_reads_as_a_dataframe_bool_column_does(tmp_path):
    path = write(tmp_path, "user,item,liked\na,x,True\na,y,false\nb,x, TRUE\n")
    with pytest.warns(UserWarning, match="dropped 1 row with weight 0"):
        data = read_interactions(path, weight="liked")
    frame = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"], "liked": [True, False, True]})
    with pytest.warns(UserWarning, match="dropped 1 row with weight 0"):
        same = Interactions.from_frame(frame, weight="liked")
    assert (data.matrix != same.matrix).nnz == 0 and data.matrix.sum() == 2


def test_aligning_to_known_ids(tmp_path):
    train = read_interactions(write(tmp_path, "user,item\na,x\nb,y\n", "train.csv"))
    path = write(tmp_path, "user,item\na,y\nzz,x\n", "test.csv")
    with pytest.raises(DataError, match=r"test.csv: line 3: user id 'zz' is not in the training data \(2 known users\)"):
        read_interactions(path, users=train.users, items=train.items)
    with pytest.warns(UserWarning, match="dropped 1 row "):
        test = read_interactions(path, users=train.users, items=train.items, unknown="drop")
    assert test.same_space(train) and len(test) == 1


# ---------------------------------------------------------------- bad input, one message each
BAD_FILES = [
    ("missing column", b"userId,movieId\n1,2\n", dict(user="userId", item="item"),
     r"ratings.csv: missing column 'item' \(found: userId, movieId\)"),
    ("column named in another case", b"UserID,Item ID,rating\n1,2,5\n", dict(user="userid", item="item_id"),
     r"ratings.csv: missing columns 'userid', 'item_id' \(found: UserID, Item ID, rating\); did you mean 'UserID' "
     r"for 'userid', 'Item ID' for 'item_id'\? Column names are matched exactly$"),
    ("empty file", b"", {}, r"ratings.csv: the file is empty"),
    ("header only", b"user,item,rating\n", {}, r"ratings.csv: has a header but no data rows"),
    ("empty user", b"user,item\n1,a\n,b\n", {}, r"ratings.csv: line 3: column 'user' is empty"),
    ("NaN item", b"user,item\n1,a\n2,\n", {}, r"ratings.csv: line 3: column 'item' is empty"),
    ("non-numeric rating", b"user,item,rating\n1,a,4\n2,b,five\n", dict(rating="rating"),
     r"ratings.csv: line 3: column 'rating' value 'five' is not a finite number"),
    ("NaN rating", b"user,item,rating\n1,a,NaN\n", dict(rating="rating"),
     r"ratings.csv: line 2: column 'rating' is empty \(NaN\)"),
    ("negative weight", b"user,item,w\n1,a,1\n1,b,-2\n", dict(weight="w"),
     r"ratings.csv: line 3: column 'w' has negative weight -2"),
    ("NaN weight", b"user,item,w\n1,a,nan\n", dict(weight="w"), r"ratings.csv: line 2: column 'w' is empty"),
    ("non-UTF-8 id", b"user,item\n1,a\n2,caf\xe9\n", {},
     r"ratings.csv: line 3: column 'item' has bytes that are not valid utf-8"),
    ("wrong delimiter", b"user;item;rating\n1;a;5\n", dict(sep=",", rating="rating"),
     r"ratings.csv: found a single column 'user;item;rating': the file seems to be ';'-separated"),
    ("nothing left", b"user,item,rating\n1,a,2\n", dict(rating="rating", min_rating=4),
     r"ratings.csv: no row has 'rating' ≥ 4 \(largest is 2\)"),
    ("flags mixed with numbers", b"user,item,w\n1,a,3\n2,b,True\n", dict(weight="w"),
     r"ratings.csv: line 3: column 'w' value 'True' is not a finite number"),
    ("infinite rating", b"user,item,rating\n1,a,4\n2,b,inf\n", dict(rating="rating"),
     r"ratings.csv: line 3: column 'rating' value 'inf' is not a finite number"),
    ("decimal comma", b"user;item;rating\n1;a;4,5\n2;b;3,0\n", dict(rating="rating"),
     r"ratings.csv: line 2: column 'rating' value '4,5' is not a finite number \(a decimal comma\? write it "
     r"with a point: 4.5\)$"),
]


@pytest.mark.parametrize("case,content,options,message", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_input_gives_one_clear_line(tmp_path, case, content, options, message):
    path = write(tmp_path, content, mode="wb")
    with pytest.raises(DataError, match=message) as info:
        read_interactions(path, **options)
    assert "\n" not in str(info.value)


def test_missing_file_and_config_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_interactions(tmp_path / "nope.csv")
    with pytest.raises(ConfigError, match="min_rating needs a rating column"):
        read_interactions(write(tmp_path, "user,item\na,b\n"), min_rating=4)
    with pytest.raises(ConfigError, match="choose one of: last, first, sum, error"):
        read_interactions(write(tmp_path, "user,item\na,b\n"), duplicates="max")


def test_dataframe_errors_name_the_row():
    df = pd.DataFrame({"user": ["a", None], "item": ["x", "y"]}, index=[10, 11])
    with pytest.raises(DataError, match="DataFrame: row 11: column 'user' is empty"):
        read_interactions(df)
    df = pd.DataFrame({"user": ["a"], "item": ["x"], "rating": [np.nan]})
    with pytest.raises(DataError, match="DataFrame: row 0: column 'rating' is empty"):
        read_interactions(df, rating="rating")
    df = pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"], "w": pd.array([1, None], dtype="Int64")})
    with pytest.raises(DataError, match=r"DataFrame: row 1: column 'w' is empty \(NaN\); every row needs a number"):
        read_interactions(df, weight="w")  # a nullable integer column's missing value (pd.NA)


def test_header_lines_of_joined_logs_are_dropped_not_read_as_a_user(tmp_path):
    # `cat a.csv b.csv c.csv`: each log's header comes along; a real user named "user" stays
    text = "user,item,rating\nu1,i1,5\nuser,item,rating\nu2,i1,4\n user , item , rating \nuser,i9,5\n"
    with pytest.warns(DroppedRowsWarning, match=r"^ratings.csv: line 3 \(and 1 more\): a header line among the rows"):
        data = read_interactions(write(tmp_path, text), rating="rating")
    assert data.users.ids.tolist() == ["u1", "u2", "user"] and data.items.ids.tolist() == ["i1", "i9"]
    assert data.matrix.sum() == 3
    frame = pd.read_csv(write(tmp_path, "user,item\nu1,i1\nuser,item\nu2,i2\n", "b.csv"), dtype=str)
    with pytest.warns(DroppedRowsWarning, match=r"^DataFrame: row 1: a header line among the rows"):
        assert read_interactions(frame).users.ids.tolist() == ["u1", "u2"]
    headed = write(tmp_path, "user,artist,plays\nu1,a1,3\n", "plays.csv")  # --names for a file with a header
    with pytest.warns(DroppedRowsWarning, match=r"^plays.csv: line 1: a header line among the rows"):
        data = read_interactions(headed, names=["user", "artist", "plays"], item="artist", weight="plays")
    assert data.users.ids.tolist() == ["u1"] and data.matrix.sum() == 3


def test_datetime_columns_of_a_dataframe_are_seconds_like_dates_in_a_file(tmp_path):
    dates = ["2024-01-05 10:00:00", "2024-01-06 11:30:00", "2024-02-01 00:00:00"]
    from_file = read_interactions(write(tmp_path, "user,item,t\n" + "".join(f"u{k},i{k},{d}\n"
                                                                              for k, d in enumerate(dates))),
                                  timestamp="t")
    frame = pd.DataFrame({"user": ["u0", "u1", "u2"], "item": ["i0", "i1", "i2"], "t": pd.to_datetime(dates)})
    for column in (frame["t"], frame["t"].dt.tz_localize("UTC"), frame["t"].astype("datetime64[s]")):
        data = read_interactions(frame.assign(t=column), timestamp="t")
        np.testing.assert_array_equal(data.timestamps, from_file.timestamps)
    assert from_file.timestamps[0] == 1704448800  # seconds, not the datetime64's micro- or nanoseconds
    berlin = read_interactions(frame.assign(t=frame["t"].dt.tz_localize("Europe/Berlin")), timestamp="t")
    np.testing.assert_array_equal(berlin.timestamps, from_file.timestamps - 3600)  # UTC+1 in winter


def test_rows_longer_than_the_header_are_refused_not_shifted(tmp_path):
    # pandas would read 'a,b,c,d' under 'user,item,r' as index 'a', user 'b', item 'c' — silently wrong
    with pytest.raises(DataError, match=r"x.csv: line 1 has 3 column names but the rows have more fields"):
        read_interactions(write(tmp_path, "user,item,r\na,b,c,d\nx,y,z,w\n", "x.csv"))


def test_a_headerless_file_is_named_as_such_with_a_names_suggestion(tmp_path):
    """Issue 15.9: a first row of numbers is data, not a header: say so and suggest names= / --names."""
    path = tmp_path / "user_artists.dat"
    path.write_bytes(b"2\t51\t13883\r\n2\t52\t11690\r\n3\t51\t200\r\n")
    with pytest.raises(DataError) as info:
        read_interactions(path, user="userID", item="artistID")
    assert str(info.value) == ("user_artists.dat: the first line looks like data, not a header (found: 2, 51, 13883); "
                               "name the columns of a file without a header with names=[...], e.g. "
                               "names=['user', 'item', 'weight']")
    assert info.value.cli_message.endswith("with --names, e.g. --names user,item,weight")
    data = read_interactions(path, names=["user", "item", "weight"], weight="weight")
    assert len(data) == 3 and data.matrix.data.max() == 13883


def test_a_wrong_delimiter_that_leaves_one_field_per_line_is_named(tmp_path):
    """Issue 15.11: --sep ',' on a tab file with --names: the delimiter, not "column 'artistID' is empty"."""
    path = tmp_path / "plays.tsv"
    path.write_text("2\t51\t13883\n2\t52\t11690\n")
    with pytest.raises(DataError, match=r"every line is one field .*'\\t'-separated, not ','; pass sep='\\t'"):
        read_interactions(path, user="userID", item="artistID", names=["userID", "artistID", "weight"], sep=",")


@pytest.mark.parametrize("sep, suffix", [("\t", ".tsv"), ("::", ".dat"), ("|", ".txt"), (";", ".csv")])
def test_item_attributes_detect_their_delimiter(tmp_path, sep, suffix):
    """Issue 15.10: attribute files are read like interaction files, not with commas only."""
    from contrec.data.readers import read_item_attributes

    path = tmp_path / f"items{suffix}"
    genres = "Action/Comedy" if sep == "|" else "Action|Comedy"
    path.write_text(sep.join(["artistID", "name", "genres"]) + "\n" + sep.join(["51", "A, B", genres]) + "\n")
    frame = read_item_attributes(path, "artistID")
    assert list(frame.columns) == ["name", "genres"] and frame.loc["51", "genres"] == genres
    assert read_item_attributes(path, "artistID", sep=sep).equals(frame)


def test_pipes_inside_a_comma_attribute_file_do_not_fool_detection(tmp_path):
    from contrec.data.readers import read_item_attributes

    path = tmp_path / "movies.csv"
    path.write_text('movieId,title,genres\n1,"Toy Story (1995)",Adventure|Animation|Children\n')
    assert read_item_attributes(path, "movieId").loc["1", "genres"] == "Adventure|Animation|Children"


@pytest.mark.parametrize("suffix,compress", [
    (".csv.gz", "gzip"), (".tsv.bz2", "bz2"), (".csv.xz", "lzma"), (".csv", "gzip"), (".zip", "zip")])
def test_compressed_files_read_as_the_plain_file(tmp_path, suffix, compress):
    import bz2
    import gzip
    import io
    import lzma
    import zipfile

    sep = "\t" if ".tsv" in suffix else ","
    plain = f"user{sep}item{sep}plays\n007{sep}a{sep}3\n7{sep}b{sep}1\n007{sep}b{sep}2\n".encode()
    if compress == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("plays.csv", plain)
        raw = buffer.getvalue()
    else:
        raw = {"gzip": gzip, "bz2": bz2, "lzma": lzma}[compress].compress(plain)
    expected = read_interactions(write(tmp_path, plain, "plain" + (".tsv" if sep == "\t" else ".csv"), "wb"),
                                 weight="plays")
    data = read_interactions(write(tmp_path, raw, "log" + suffix, "wb"), weight="plays")
    assert data.users.ids.tolist() == expected.users.ids.tolist() == ["007", "7"]
    assert (data.matrix != expected.matrix).nnz == 0 and data.matrix.sum() == 6


def test_a_zip_made_by_macos_reads_its_one_table_in_the_format_its_name_says(tmp_path):
    import io
    import zipfile

    # band names with commas: the first line has more commas than tabs, so only the name says "tab"
    plain = b"u1\tCrosby, Stills, Nash & Young\t3\nu2\tEarth, Wind & Fire\t5\nu1\tEarth, Wind & Fire\t1\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # what Finder's "Compress" writes
        archive.writestr("plays.tsv", plain)
        archive.writestr("__MACOSX/._plays.tsv", b"\x00\x05\x16\x07resource fork")
        archive.writestr(".DS_Store", b"\x00\x00\x00\x01Bud1")
    data = read_interactions(write(tmp_path, buffer.getvalue(), "data.zip", "wb"), names=["user", "artist", "plays"],
                             user="user", item="artist", weight="plays")
    assert data.items.ids.tolist() == ["Crosby, Stills, Nash & Young", "Earth, Wind & Fire"]
    assert data.matrix.sum() == 9


def test_excel_unicode_text_reads_without_an_encoding(tmp_path):
    """Excel's "Unicode Text" export: UTF-16 with a byte-order mark, tab-separated, CRLF line ends."""
    from contrec.data.readers import read_item_attributes

    text = "user\titem\tplays\r\nZoë\tCafé Tacvba\t3\r\nuser2\tCafé Tacvba\t1\r\n"
    for codec in ("utf-16", "utf-16-be"):
        raw = text.encode(codec) if codec == "utf-16" else b"\xfe\xff" + text.encode(codec)
        data = read_interactions(write(tmp_path, raw, f"export-{codec}.txt", "wb"), weight="plays")
        assert data.users.ids.tolist() == ["Zoë", "user2"] and data.items.ids.tolist() == ["Café Tacvba"]
        assert data.matrix.sum() == 4
    attrs = write(tmp_path, "item\tgenre\r\nCafé Tacvba\trock\r\n".encode("utf-16"), "items.txt", "wb")
    assert read_item_attributes(attrs, "item").loc["Café Tacvba", "genre"] == "rock"
    # a file said to be latin-1 is read as latin-1, whatever its first bytes
    latin = write(tmp_path, "user,item\nu1,caf\xe9\n".encode("latin-1"), "latin.csv", "wb")
    assert read_interactions(latin, encoding="latin-1").items.ids.tolist() == ["café"]


def test_a_damaged_or_ambiguous_archive_is_one_line_naming_the_file(tmp_path):
    import gzip
    import io
    import zipfile

    cut = gzip.compress(b"user,item\n" + b"u,i\n" * 1000)[:30]
    with pytest.raises(DataError, match=r"^log.csv.gz: a damaged gzip file \(") as err:
        read_interactions(write(tmp_path, cut, "log.csv.gz", "wb"))
    assert "\n" not in str(err.value)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", "user,item\nu,i\n")
        archive.writestr("b.csv", "user,item\nu,i\n")
    with pytest.raises(DataError, match=r"^two.zip: a zip archive must hold exactly one file .* 2 \(a.csv, b.csv\)"):
        read_interactions(write(tmp_path, buffer.getvalue(), "two.zip", "wb"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # the shape of an .xlsx
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(DataError, match=r"^ratings.xlsx: an Office document .*save the sheet as CSV$"):
        read_interactions(write(tmp_path, buffer.getvalue(), "ratings.xlsx", "wb"))


def test_compressed_item_attributes_read_too(tmp_path):
    import gzip

    from contrec.data.readers import read_item_attributes

    path = write(tmp_path, gzip.compress(b"movieId\ttitle\n1\tToy Story\n"), "movies.tsv.gz", "wb")
    assert read_item_attributes(path, "movieId")["title"].tolist() == ["Toy Story"]


def test_a_bad_number_far_down_a_large_file_is_named_by_its_line(tmp_path):
    # the parser reads numbers in chunks: a text value in a late chunk must still be found and named
    lines = [f"u{n % 997},i{n % 101},{1 + n % 5}" for n in range(300_000)]
    lines[250_000] = "u1,i1,five"
    path = write(tmp_path, "user,item,rating\n" + "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"^ratings.csv: line 250002: column 'rating' value 'five' is not a finite"):
        read_interactions(path, rating="rating")


def test_summed_duplicates_keep_their_line_numbers_for_later_messages(tmp_path):
    train = read_interactions(write(tmp_path, "user,item\na,x\nb,y\n", "train.csv"))
    path = write(tmp_path, "user,item,w\na,x,1\nb,y,2\na,x,3\nzz,y,1\n", "test.csv")
    with pytest.warns(DuplicateRowsWarning), pytest.raises(DataError, match=r"^test.csv: line 5: user id 'zz'"):
        read_interactions(path, weight="w", duplicates="sum", users=train.users, items=train.items)


def test_ids_that_differ_only_by_spaces_or_type_are_one_id():
    frame = pd.DataFrame({"user": [7, " 7", "7 ", 8], "item": ["a", "a ", "b", "a"], "w": [1, 2, 3, 4]})
    with pytest.warns(DuplicateRowsWarning, match="1 duplicate"):
        data = read_interactions(frame, weight="w", duplicates="sum")
    assert data.users.ids.tolist() == ["7", "8"] and data.items.ids.tolist() == ["a", "b"]
    assert data.to_frame().sort_values(["user", "item"])["weight"].tolist() == [3.0, 3.0, 4.0]
