"""csv files separated by something else than the comma (issue 36): data.delimiter, the one unambiguous sniff (a header
that reads as one column holding ';', '|' or TAB), no reader-internal columns in messages, and a first row wider
than its header refused instead of shifting every column."""

from pathlib import Path

import pytest

from ftkit.data import sources
from ftkit.errors import UserError
from ftkit.recipe import load_recipe
from ftkit.recipe.schema import DataFile, DataSection
from ftkit.tasks.cls import data as labeled

from conftest import write_recipe

# The user's file of the issue: ';' between fields, commas inside the reviews (so the comma splits rows, not header).
REVIEWS = ("id;sentiment;review;author\n"
           "1;pos;Great movie, really good;bob\n"
           "2;neg;Bad, bad film;al\n"
           "3;pos;\"A quoted; review\";cy\n")
TEXTS = ["Great movie, really good", "Bad, bad film", "A quoted; review"]


def load(tmp_path: Path, name: str, text: str, **data):
    f = tmp_path / name
    f.write_text(text)
    logged: list[str] = []
    d = DataSection(train=str(f), text_column="review", label_column="sentiment", **data)
    return labeled.load_rows(str(f), d, "data.train", log=logged.append), logged


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(UserError) as e:
        fn(*args, **kwargs)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_semicolon_csv_with_delimiter_key(tmp_path):
    rows, logged = load(tmp_path, "reviews.csv", REVIEWS, delimiter=";")
    assert rows.texts == TEXTS and rows.labels == ["pos", "neg", "pos"]
    assert logged == []  # given, not sniffed
    # locations count records with the same delimiter (a quoted field spans lines 2-3): the empty label is on line 4
    msg = error_of(load, tmp_path, "gap.csv", "id;sentiment;review\n1;pos;\"two\nlines, here\"\n2;;empty label, x\n",
                   delimiter=";")
    assert msg.startswith(f"{tmp_path / 'gap.csv'}:4: empty label in column 'sentiment'")


def test_semicolon_csv_is_sniffed_from_its_header(tmp_path):
    rows, logged = load(tmp_path, "reviews.csv", REVIEWS)
    assert rows.texts == TEXTS and rows.labels == ["pos", "neg", "pos"]
    assert len(logged) == 1 and "reviews.csv read with the delimiter ';'" in logged[0] and "data.delimiter" in logged[0]


def test_pipe_separated_csv(tmp_path):
    pipes = REVIEWS.replace(";", "|")
    rows, logged = load(tmp_path, "reviews.csv", pipes)
    assert rows.texts == ["Great movie, really good", "Bad, bad film", "A quoted| review"]
    assert "delimiter '|'" in logged[0]
    given, logged = load(tmp_path, "reviews.csv", pipes, delimiter="|")
    assert given.texts == rows.texts and logged == []


def test_tab_in_a_csv_and_the_escaped_spelling(tmp_path):
    tabbed = "sentiment\treview\npos\tgood, very\nneg\tbad\n"
    rows, logged = load(tmp_path, "t.csv", tabbed)
    assert rows.texts == ["good, very", "bad"] and "delimiter TAB" in logged[0]
    assert DataSection(train="x", delimiter="\\t").delimiter == "\t"  # `delimiter: \t` unquoted in YAML, or a shell


def test_no_guess_unless_unambiguous(tmp_path):
    # a plain comma csv whose texts hold ';' is read with the comma, silently
    rows, logged = load(tmp_path, "c.csv", "sentiment,review\npos,\"one; two\"\nneg,three\n")
    assert rows.texts == ["one; two", "three"] and logged == []
    # a header holding both ';' and '|': no guess; the message lists the one column and says what to set
    msg = error_of(load, tmp_path, "both.csv", "sentiment;review|x\npos;good|y\n")
    assert "columns are: sentiment;review|x (the file was read as one column" in msg and "data.delimiter" in msg
    # a .tsv is TAB-separated: never sniffed
    msg = error_of(load, tmp_path, "s.tsv", "sentiment;review\npos;good\n")
    assert "columns are: sentiment;review (the file was read as one column" in msg


def test_wider_first_row_refused_and_no_internal_columns(tmp_path):
    """The issue's file read with the comma: pandas made its first field an index (__index_level_0__) and the
    message listed it; now the row that is wider than the header is named instead."""
    msg = error_of(load, tmp_path, "reviews.csv", REVIEWS, delimiter=",")
    assert msg.startswith(f"{tmp_path / 'reviews.csv'}:2: 2 fields, but the header row has 1 (delimiter ',')")
    assert "__index" not in msg and "data.delimiter" in msg
    # a comma csv with an unquoted comma in every text used to load with each column holding its neighbour's values
    msg = error_of(load, tmp_path, "shift.csv", "id,sentiment,review\n1,pos,good, very\n2,neg,bad, film\n")
    assert msg.startswith(f"{tmp_path / 'shift.csv'}:2: 4 fields, but the header row has 3")


def test_internal_columns_never_listed():
    """pandas' inferred index reaches a dataset as __index_level_0__ (the csv reader made one of the issue's file):
    it is the reader's, not a column of the user's file."""
    import datasets

    ds = datasets.Dataset.from_dict({"body": ["a"], "label": [0], "__index_level_0__": ["1"]})
    msg = error_of(sources.require_column, ds, "text", "data.text_column", "data.train (d.csv)")
    assert msg == "data.train (d.csv): data.text_column 'text' not found; columns are: body, label"


def test_entries_with_their_own_delimiter_mix(tmp_path):
    (tmp_path / "a.csv").write_text(REVIEWS)
    (tmp_path / "b.csv").write_text("id,sentiment,review\n9,neg,\"plain, comma\"\n")
    data = DataSection(train=[DataFile(path=str(tmp_path / "a.csv"), delimiter=";"), str(tmp_path / "b.csv")],
                       text_column="review", label_column="sentiment")
    parts = sources.source_parts(data.train, data, "data.train")
    assert [p.delimiter for p in parts] == [";", ","]
    rows = labeled.load_rows(data.train, data, "data.train", log=lambda *_: None)
    assert rows.texts == TEXTS + ["plain, comma"]
    assert rows.where(3) == f"{tmp_path / 'b.csv'}:2"


def test_delimiter_on_plain_text_refused(tmp_path):
    f = tmp_path / "reviews.txt"
    f.write_text("pos;good\n")
    msg = error_of(sources.load_split, str(f), DataSection(train=str(f), delimiter=";"), "data.train")
    assert msg.startswith(f"{f}: read as plain text") and "data.delimiter cannot apply" in msg


@pytest.mark.parametrize("value, expect", [(";;", "expected one character"), ("", "expected one character"),
                                           ('"', "cannot separate fields")])
def test_bad_delimiter_is_a_one_line_recipe_error(tmp_path, value, expect):
    r = write_recipe(tmp_path / "r.yaml", {"task": "cls", "output_dir": str(tmp_path / "run"),
                                           "model": {"from_pretrained": "m"},
                                           "data": {"train": "x.csv", "delimiter": value}})
    msg = error_of(load_recipe, r)
    assert msg.startswith(f"{r}:") and "'data.delimiter': " in msg and expect in msg


def test_delimiter_override_takes_yaml_indicators_literally(tmp_path):
    r = write_recipe(tmp_path / "r.yaml", {"task": "cls", "output_dir": str(tmp_path / "run"),
                                           "model": {"from_pretrained": "m"}, "data": {"train": "x.csv"}})
    assert load_recipe(r, ["data.delimiter=|"]).data.delimiter == "|"  # YAML would read '' (a block scalar)
    assert load_recipe(r, ["data.delimiter=;"]).data.delimiter == ";"
    assert load_recipe(r, ["data.delimiter=null"]).data.delimiter is None
