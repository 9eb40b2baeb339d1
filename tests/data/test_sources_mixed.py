"""data.train as a list of files of different formats (jsonl + TSV, with their own text column)."""

import pytest

from ftkit.data import sources
from ftkit.errors import UserError
from ftkit.recipe import validate

from encoder_helpers import write_imdb_slice, write_sst2_slice


def data_section(train):
    return validate({"output_dir": "x", "tokenizer": {"path": "t"}, "model": {"model_type": "bert"},
                     "data": {"train": train}}).data


@pytest.fixture
def files(tmp_path):
    imdb = write_imdb_slice(tmp_path / "imdb.jsonl", 20)
    sst = write_sst2_slice(tmp_path / "sst.tsv", 30)
    txt = tmp_path / "notes.txt"
    txt.write_text("a plain line\nanother line\n")
    return imdb, sst, txt


@pytest.mark.parametrize("streaming", [False, True])
def test_jsonl_and_tsv_with_own_text_column(files, streaming):
    imdb, sst, _ = files
    d = data_section([str(imdb), {"path": str(sst), "text_column": "sentence"}])
    ds = sources.load_split(d.train, d, "data.train", streaming=streaming)
    rows = list(ds)
    assert len(rows) == 50
    assert set(rows[0]) == {"text", "label"}  # columns both have; jsonl's id/rating and tsv's nothing else dropped
    assert rows[0]["text"].startswith("Story of a man")  # order kept: the jsonl first
    assert rows[20]["text"] == "hide new secretions from the parental units "  # SST-2's `sentence`, now `text`
    assert all(isinstance(r["label"], int) for r in rows)


def test_plain_list_of_mixed_formats_is_concatenated(files):
    imdb, _, txt = files
    d = data_section([str(txt), str(imdb)])
    ds = sources.load_split(d.train, d, "data.train")
    assert ds.column_names == ["text"] and len(ds) == 22
    assert ds[0]["text"].strip() == "a plain line"


def test_parts_group_consecutive_files_of_one_kind(files):
    imdb, sst, txt = files
    d = data_section([str(imdb), str(imdb), {"path": str(sst), "text_column": "sentence"}, str(txt)])
    parts = sources.source_parts(d.train, d, "data.train")
    assert [(len(p.files), p.format, p.text_column) for p in parts] == [(2, "json", None), (1, "tsv", "sentence"), (1, "text", None)]


def test_missing_text_column_in_one_entry(files):
    imdb, sst, _ = files
    d = data_section([str(imdb), str(sst)])  # the TSV has `sentence`, not `text`
    with pytest.raises(UserError, match=r"column 'text' is not in every file.*text_column"):
        sources.load_split(d.train, d, "data.train")
    d = data_section([str(imdb), {"path": str(sst), "text_column": "review"}])
    with pytest.raises(UserError, match=r"text_column 'review' not found; columns are: sentence, label"):
        sources.load_split(d.train, d, "data.train")


def test_entry_with_missing_file_is_reported(tmp_path, files):
    d = data_section([str(files[0]), {"path": str(tmp_path / "nope.tsv"), "text_column": "sentence"}])
    with pytest.raises(UserError, match="data.train: file not found"):
        sources.load_split(d.train, d, "data.train")


@pytest.mark.parametrize("streaming", [False, True])
def test_rows_takes_the_first_records_of_its_entry_only(files, streaming):
    imdb, sst, txt = files
    d = data_section([{"path": str(imdb), "rows": 5}, str(imdb), {"path": str(sst), "text_column": "sentence", "rows": 100}])
    parts = sources.source_parts(d.train, d, "data.train")
    assert [(len(p.files), p.rows) for p in parts] == [(1, 5), (1, None), (1, 100)]  # a limited entry is a part of its own
    texts = [r["text"] for r in sources.load_split(d.train, d, "data.train", streaming=streaming)]
    whole = [r["text"] for r in sources.load_split(str(imdb), d, "data.train")]
    assert len(texts) == 5 + 20 + 30  # 100 rows asked of a 30-row file: all 30
    assert texts[:5] == whole[:5] and texts[5:25] == whole  # the first 5, in file order, then the unlimited entry


def test_rows_over_files_of_two_formats_is_refused(tmp_path, files):
    imdb, _, txt = files
    folder = tmp_path / "mix"
    folder.mkdir()
    for f in (imdb, txt):
        (folder / f.name).write_bytes(f.read_bytes())
    d = data_section([str(imdb), {"path": str(folder), "rows": 3}])
    with pytest.raises(UserError, match=r"data.train\[1\]: rows 3 counts the records of one format, but .* json and text"):
        sources.source_parts(d.train, d, "data.train")
    d = data_section([{"path": str(folder / "*.jsonl"), "rows": 3}])  # one format: fine
    assert len(sources.load_split(d.train, d, "data.train")) == 3

