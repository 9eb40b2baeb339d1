"""Files read as the user means them: data.encoding, header rows, column_names counts, the format named in errors,
labels like TREC's COARSE:fine."""

import pytest

from ftkit.errors import UserError
from ftkit.recipe.schema import DataSection
from ftkit.tasks.cls import data as labeled

from conftest import DATA, need

TREC = DATA / "trec"


def rows(path, **kw):
    return labeled.load_rows(str(path), DataSection(train=str(path), **kw), "data.train", log=lambda m: None)


def test_latin1_file_with_encoding_and_coarse_labels(tmp_path):
    p = tmp_path / "q.txt"
    p.write_bytes("LOC:city Where is Montr\xe9al ?\nHUM:ind Who wrote Faust ?\nLOC:country Which country ?\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"q.txt:1: not valid UTF-8 .*set data.encoding"):
        rows(p, format="label_text")
    r = rows(p, format="label_text", encoding="latin-1", label_regex="^([^:]+)")
    assert r.texts[0] == "Where is Montréal ?" and r.labels == ["LOC", "HUM", "LOC"]
    with pytest.raises(UserError, match=r"label 'HUM:ind' does not match data.label_regex"):
        rows(p, format="label_text", encoding="latin-1", label_regex="^LOC")


def test_real_trec_file_reads_with_latin1():
    files = sorted(p for p in need(TREC).iterdir() if p.suffix != ".md" and p.is_file())
    f = files[0]
    r = rows(f, format="label_text", encoding="latin-1", label_regex="^([A-Z]+):")
    assert set(r.labels) <= {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"} and len(r.labels) > 100


def test_header_row_is_not_read_as_a_class(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text("label\ttext\nspam\tWIN money\nham\thi mum\n")
    with pytest.raises(UserError, match=r"the first row looks like a header .*set data.header: true"):
        rows(p, column_names=["label", "text"])
    r = rows(p, column_names=["label", "text"], header="true")
    assert r.labels == ["spam", "ham"]
    r = rows(p)  # no column_names: the header names the columns
    assert r.texts == ["WIN money", "hi mum"]


def test_column_names_count_and_extensionless_tsv(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text("spam\tWIN money\textra\nham\thi mum\tx\n")
    with pytest.raises(UserError, match=r"d.tsv:1: 3 fields, but data.column_names has 2 names"):
        rows(p, column_names=["label", "text"])
    q = tmp_path / "SMSSpamCollection"
    q.write_text("spam\tWIN money\nham\thi mum\n")
    with pytest.raises(UserError, match=r"read as plain text .*set data.format: tsv"):
        rows(q, column_names=["label", "text"])
    assert rows(q, column_names=["label", "text"], format="tsv").labels == ["spam", "ham"]


def test_bad_encoding_or_regex_in_the_recipe():
    from ftkit.recipe import validate

    with pytest.raises(UserError, match="data.encoding: unknown encoding 'latin-9000'"):
        validate({"task": "cls", "output_dir": "o", "model": {"from_pretrained": "x"},
                  "data": {"train": "t.tsv", "encoding": "latin-9000"}})
    with pytest.raises(UserError, match="data.label_regex"):
        validate({"task": "cls", "output_dir": "o", "model": {"from_pretrained": "x"},
                  "data": {"train": "t.tsv", "label_regex": "(["}})
