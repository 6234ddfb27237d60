"""`MovieLensReader` on generated ML-100K and ML-1M folders, and on the shared samples."""

from __future__ import annotations

import pytest

from keras_dimsel.data.movielens import FIELDS, ML_100K_GENRES, MovieLensReader
from keras_dimsel.data.reader import DataError, FieldDef
from tests.data.test_readers import parse_files, write


def genre_flags(*genres: str) -> str:
    """The 19 ML-100K genre flags, "1" for the named genres."""
    return "|".join("1" if g in genres else "0" for g in ML_100K_GENRES)


@pytest.fixture
def ml100k(tmp_path):
    """A made-up ML-100K folder: 2 users, 3 items (latin-1 titles), 7 ratings."""
    folder = tmp_path / "ml-100k"
    write(folder / "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n")
    items = [
        b"10|Caf\xe9 Cr\xe8me (1995)|01-Jan-1995||http://example.invalid/10|"
        + genre_flags("Animation", "Children's", "Comedy").encode(),
        b"20|Untitled (no date)|||http://example.invalid/20|" + genre_flags("Western").encode(),
        b"30|Na\xefve Box (1997)|14-Mar-1997||http://example.invalid/30|"
        + genre_flags("unknown").encode(),
    ]
    write(folder / "u.item", b"\n".join(items) + b"\n")
    write(
        folder / "u.data",
        "1\t10\t5\t881250949\n"
        "2\t20\t3\t881250950\n"
        "1\t30\t4\t881250951\n"
        "2\t10\t1\t881250952\n"
        "1\t99\t4\t881250953\n"  # unknown item
        "2\t10\t6\t881250954\n"  # bad rating
        "3\t10\t4\t881250955\n",  # unknown user
    )
    return folder


@pytest.fixture
def ml1m(tmp_path):
    """A made-up ML-1M folder ('::' separated, latin-1 titles), 6 ratings."""
    folder = tmp_path / "ml-1m"
    write(folder / "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    write(
        folder / "movies.dat",
        b"10::Caf\xe9: A Story, Part 2 (1995)::Animation|Children's|Comedy\n20::Untitled::Drama\n",
    )
    write(
        folder / "ratings.dat",
        "1::10::5::978300760\n"
        "2::20::3::978300761\n"
        "1::20::4::978300762\n"
        "2::10::2::978300763\n"
        "1::99::4::978300764\n"  # unknown item
        "2::10::0::978300765\n",  # bad rating
    )
    return folder


def test_fields_are_eight_categorical_fields(ml100k):
    reader = MovieLensReader([str(ml100k)], "movielens-100k")
    assert reader.name == "movielens-100k"
    assert reader.label == "label"
    assert FIELDS == ("user", "item", "genres", "year", "gender", "age", "occupation", "zip")
    assert reader.fields == tuple(FieldDef(n, "categorical") for n in FIELDS)
    assert reader.data_files() == [(str(ml100k / "u.data"), False)]


def test_ml100k_joins_ratings_with_users_and_items(ml100k):
    table, _, _ = parse_files(MovieLensReader([str(ml100k)], "movielens-100k"))
    assert table.to_pydict() == {
        "label": [1.0, 0.0, 1.0, 0.0],
        "user": ["1", "2", "1", "2"],
        "item": ["10", "20", "30", "10"],
        "genres": [
            "Animation|Children's|Comedy",
            "Western",
            "unknown",
            "Animation|Children's|Comedy",
        ],
        "year": ["1995", "", "1997", "1995"],
        "gender": ["M", "F", "M", "F"],
        "age": ["24", "53", "24", "53"],
        "occupation": ["technician", "other", "technician", "other"],
        "zip": ["85711", "94043", "85711", "94043"],
    }


def test_ml100k_rejects_unknown_ids_and_bad_rating(ml100k):
    table, rejected, _ = parse_files(MovieLensReader([str(ml100k)], "movielens-100k"))
    assert table.num_rows + len(rejected) == 7
    assert [(r.reason, r.text) for r in rejected] == [
        ("unknown item id '99'", "1\t99\t4\t881250953"),
        ("bad rating '6': expected 1-5", "2\t10\t6\t881250954"),
        ("unknown user id '3'", "3\t10\t4\t881250955"),
    ]


def test_ml1m_joins_ratings_with_users_and_movies(ml1m):
    reader = MovieLensReader([str(ml1m)], "movielens-1m")
    assert reader.data_files() == [(str(ml1m / "ratings.dat"), False)]
    table, _, _ = parse_files(reader)
    assert table.to_pydict() == {
        "label": [1.0, 0.0, 1.0, 0.0],
        "user": ["1", "2", "1", "2"],
        "item": ["10", "20", "20", "10"],
        "genres": ["Animation|Children's|Comedy", "Drama", "Drama", "Animation|Children's|Comedy"],
        "year": ["1995", "", "", "1995"],
        "gender": ["F", "M", "F", "M"],
        "age": ["1", "56", "1", "56"],
        "occupation": ["10", "16", "10", "16"],
        "zip": ["48067", "70072", "48067", "70072"],
    }


def test_ml1m_rejects_unknown_item_and_bad_rating(ml1m):
    table, rejected, _ = parse_files(MovieLensReader([str(ml1m)], "movielens-1m"))
    assert table.num_rows == 4
    assert [r.reason for r in rejected] == [
        "unknown item id '99'",
        "bad rating '0': expected 1-5",
    ]


def test_ml1m_rejection_text_is_the_input_line(ml1m):
    _, rejected, _ = parse_files(MovieLensReader([str(ml1m)], "movielens-1m"))
    assert rejected[0].text == "1::99::4::978300764"


def test_ratings_files_after_the_folder_replace_the_default_one(ml1m):
    other = write(ml1m / "ratings_part.dat", "2::20::5::978300770\n")
    reader = MovieLensReader([str(ml1m), other], "movielens-1m")
    assert reader.data_files() == [(other, False)]
    table, rejected, _ = parse_files(reader)
    assert table.column("label").to_pylist() == [1.0]
    assert table.column("gender").to_pylist() == ["M"]
    assert rejected == []


def test_ratings_file_alone_finds_tables_in_its_folder(ml1m):
    reader = MovieLensReader([str(ml1m / "ratings.dat")], "movielens-1m")
    table, _, _ = parse_files(reader)
    assert table.num_rows == 4


def test_missing_folder_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"input path not found: .*ml-100k"):
        MovieLensReader([str(tmp_path / "ml-100k")], "movielens-100k")


def test_folder_without_the_movie_table_is_a_data_error(ml100k):
    (ml100k / "u.item").unlink()
    with pytest.raises(DataError, match=r"movielens-100k: .*u\.item not found"):
        MovieLensReader([str(ml100k)], "movielens-100k")


def test_folder_of_the_other_variant_is_a_data_error(ml100k):
    with pytest.raises(DataError, match=r"movielens-1m: .*ratings\.dat not found"):
        MovieLensReader([str(ml100k)], "movielens-1m")


def test_unknown_variant_is_a_data_error(ml100k):
    with pytest.raises(DataError, match=r"unknown MovieLens variant 'movielens-20m'"):
        MovieLensReader([str(ml100k)], "movielens-20m")


def test_no_input_is_a_data_error():
    with pytest.raises(DataError, match=r"no --input given"):
        MovieLensReader([], "movielens-1m")


def test_item_line_with_wrong_field_count_is_a_data_error(ml100k):
    with open(ml100k / "u.item", "ab") as f:
        f.write(b"40|Short line|01-Jan-1990\n")
    with pytest.raises(DataError, match=r"u\.item:4: expected 24 fields"):
        MovieLensReader([str(ml100k)], "movielens-100k")


# ---------------------------------------------------------------------------
# The shared public samples (never copied into the repository)


def count_high_ratings(path, separator: bytes) -> int:
    lines = path.read_bytes().splitlines()
    return sum(line.split(separator)[2] in (b"4", b"5") for line in lines if line.strip())


def test_shared_ml100k_all_ratings_accepted(shared_data):
    folder = shared_data / "ml-100k"
    table, rejected, _ = parse_files(MovieLensReader([str(folder)], "movielens-100k"))
    assert table.num_rows == 100_000
    assert rejected == []
    assert sum(table.column("label").to_pylist()) == count_high_ratings(folder / "u.data", b"\t")


def test_shared_ml1m_ratings_of_users_1_to_300(shared_data):
    folder = shared_data / "ml-1m"
    ratings = folder / "ratings_users1-300.dat"
    table, rejected, _ = parse_files(MovieLensReader([str(folder), str(ratings)], "movielens-1m"))
    assert table.num_rows == 43_745
    assert rejected == []
    assert sum(table.column("label").to_pylist()) == count_high_ratings(ratings, b"::")
    assert set(table.column("gender").to_pylist()) == {"F", "M"}
