"""Labeled data for classification: label inference and order, label_map, the checks on real files
(with file:line locations), empty-text skipping, the validation split, and the length-grouped order."""

from pathlib import Path

import numpy as np
import pytest

from ftkit import registry
from ftkit.engine.batches import length_grouped_order
from ftkit.errors import UserError
from ftkit.recipe.schema import DataSection
from ftkit.tasks.cls import data as labeled

from conftest import DATA, need

MRPC_DEV = DATA / "mrpc" / "dev.tsv"
AG_TEST = DATA / "ag_news" / "test.csv"


def rows_of(tmp_path: Path, name: str, text: str, log=None, **data) -> labeled.Rows:
    f = tmp_path / name
    f.write_text(text)
    return labeled.load_rows(str(f), DataSection(train=str(f), **data), "data.train", log=log or (lambda *_: None))


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(UserError) as e:
        fn(*args, **kwargs)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_int_labels_keep_numeric_order_and_map_to_names(tmp_path):
    rows = rows_of(tmp_path, "d.tsv", "text\tlabel\na\t10\nb\t2\nc\t10\nd\t1\n")
    assert labeled.infer_labels(rows) == ["1", "2", "10"]  # numerically, not "1", "10", "2"
    named = rows_of(tmp_path, "d.tsv", "text\tlabel\na\t1\nb\t0\n", label_map={0: "negative", 1: "positive"})
    labels = labeled.infer_labels(named)
    assert labels == ["negative", "positive"] and named.labels == ["positive", "negative"]


def test_string_labels_sorted_and_id_mapping_round_trips(tmp_path):
    from transformers import BertConfig

    from ftkit.models.classifier import checkpoint_labels, head_config

    rows = rows_of(tmp_path, "d.jsonl", '{"text": "x", "label": "World"}\n{"text": "y", "label": " Sports "}\n'
                                        '{"text": "z", "label": "Business"}\n')
    labels = labeled.infer_labels(rows)
    assert labels == ["Business", "Sports", "World"]  # stripped, alphabetical
    cfg = BertConfig(**head_config(labels), architectures=["BertForSequenceClassification"])
    cfg.save_pretrained(tmp_path / "m")
    again = BertConfig.from_pretrained(tmp_path / "m")
    assert again.num_labels == 3 and checkpoint_labels(again, registry.entry("cls")) == labels
    assert {again.label2id[n] for n in labels} == {0, 1, 2}
    assert [again.id2label[again.label2id[n]] for n in rows.labels] == rows.labels


def test_label_map_numbers_to_names_like_ag_news_test():
    data = DataSection(train=str(need(AG_TEST)), column_names=["label", "title", "text"],
                       label_map={1: "World", 2: "Sports", 3: "Business", 4: "Sci/Tech"})
    rows = labeled.load_rows(data.train, data, "--data", log=lambda *_: None)
    assert len(rows) == 7600 and set(rows.labels) == {"World", "Sports", "Business", "Sci/Tech"}
    assert rows.labels[0] == "Business" and rows.texts[0].startswith("Unions representing workers")  # row 1: class 3


def test_pairs_with_bom_header(tmp_path):
    data = DataSection(train=str(need(MRPC_DEV)), text_column="#1 String", text_pair_column="#2 String",
                       label_column="Quality")
    rows = labeled.load_rows(data.train, data, "data.validation", log=lambda *_: None)
    assert len(rows) == 408 and rows.pairs is not None and labeled.infer_labels(rows) == ["0", "1"]
    assert rows.labels.count("1") == 279  # SOURCE.md: 279 paraphrases of 408


def test_missing_label_column_lists_columns(tmp_path):
    msg = error_of(rows_of, tmp_path, "d.csv", "text,stars\ngood,5\n")
    assert msg == f"data.train ({tmp_path / 'd.csv'}): data.label_column 'label' not found; columns are: text, stars"


def test_float_labels_refused_with_location(tmp_path):
    msg = error_of(rows_of, tmp_path, "d.tsv", "text\tlabel\na\t1\nb\t0.73\n")
    assert msg.startswith(f"{tmp_path / 'd.tsv'}:3: data.label_column 'label' holds floats (e.g. 0.73)")
    whole = rows_of(tmp_path, "w.tsv", "text\tlabel\na\t1.0\nb\t0.0\n")  # whole numbers written as floats: classes
    assert labeled.infer_labels(whole) == ["0", "1"]


def test_missing_label_value_names_line(tmp_path):
    msg = error_of(rows_of, tmp_path, "d.jsonl", '{"text": "a", "label": "x"}\n\n{"text": "b", "label": null}\n')
    assert msg.startswith(f"{tmp_path / 'd.jsonl'}:3: empty label")


def test_empty_texts_are_skipped_and_counted(tmp_path):
    said = []
    rows = rows_of(tmp_path, "d.tsv", "text\tlabel\ngood\t1\n   \t0\nbad\t0\n\t1\n", log=said.append)
    assert rows.texts == ["good", "bad"] and rows.skipped == [1, 3]
    assert said == [f"data.train: skipped 2 of 4 rows with empty or whitespace-only text "
                    f"({tmp_path / 'd.tsv'}:3, {tmp_path / 'd.tsv'}:5)"]
    msg = error_of(rows_of, tmp_path, "e.jsonl", '{"text": " ", "label": 1}\n{"text": "", "label": 0}\n')
    assert "no row has text in column 'text' (2 rows, all empty)" in msg


def test_text_column_of_numbers_is_refused(tmp_path):
    msg = error_of(rows_of, tmp_path, "d.csv", "text,label\n1,a\n2,b\n", text_column="text")
    assert "data.text_column 'text' holds int64 values; expected text" in msg


def test_non_utf8_names_file_and_line(tmp_path):
    f = tmp_path / "d.tsv"
    f.write_bytes("text\tlabel\nfine\t1\ncaf\xe9\t0\n".encode("latin-1"))
    msg = error_of(labeled.load_rows, str(f), DataSection(train=str(f)), "data.train")
    assert msg.startswith(f"{f}:3: not valid UTF-8")


def test_locations_count_lines_as_the_file_has_them(tmp_path):
    # a quoted CSV field spanning lines, and blank lines (pandas skips them): row 2 starts on line 5
    f = tmp_path / "d.csv"
    f.write_text('text,label\n"two\nlines",1\n\nthird,0\nlast,\n')
    msg = error_of(labeled.load_rows, str(f), DataSection(train=str(f)), "data.train")
    assert msg.startswith(f"{f}:6: empty label")
    loc = labeled.Locator(str(f), DataSection(train=str(f)), "data.train")
    assert [loc(i) for i in range(3)] == [f"{f}:2", f"{f}:5", f"{f}:6"]


def test_unseen_validation_labels(tmp_path):
    train = rows_of(tmp_path, "t.tsv", "text\tlabel\na\tpos\nb\tneg\n")
    val = rows_of(tmp_path, "v.tsv", "text\tlabel\nc\tpos\nd\tneutral\n")
    msg = error_of(labeled.check_known, val, labeled.infer_labels(train), "data.train")
    assert f"1 label(s) that data.train never saw: 'neutral' ({tmp_path / 'v.tsv'}:3)" in msg
    assert "known labels: 'neg', 'pos'" in msg


def test_single_class_is_refused(tmp_path):
    rows = rows_of(tmp_path, "t.tsv", "text\tlabel\na\tpos\nb\tpos\n")
    assert "single label ('pos')" in error_of(labeled.infer_labels, rows)


def test_validation_split_is_stratified_and_seeded(tmp_path):
    f = tmp_path / "t.tsv"
    f.write_text("text\tlabel\n" + "".join(f"t{i}\t{'a' if i % 4 else 'b'}\n" for i in range(200)))
    data = DataSection(train=str(f), validation_split=0.2)
    tr, va = labeled.train_and_validation(data, seed=3, log=lambda *_: None)
    again = labeled.train_and_validation(data, seed=3, log=lambda *_: None)[1]
    assert len(tr) == 160 and len(va) == 40 and va.texts == again.texts
    assert va.labels.count("b") == 10 and not set(tr.texts) & set(va.texts)  # 1 in 4 is "b", in both parts


def test_length_grouped_order():
    rng_lengths = np.random.default_rng(0).integers(3, 120, size=1000)
    order = length_grouped_order(rng_lengths, 16, np.random.default_rng([1, 0]))
    assert sorted(order.tolist()) == list(range(1000))
    again = length_grouped_order(rng_lengths, 16, np.random.default_rng([1, 0]))
    other = length_grouped_order(rng_lengths, 16, np.random.default_rng([1, 1]))
    assert (order == again).all() and not (order == other).all()
    full = order[: 1000 - 1000 % 16].reshape(-1, 16)
    grouped_pad = sum(int(rng_lengths[b].max() * 16 - rng_lengths[b].sum()) for b in full)
    random = np.random.default_rng(2).permutation(1000)[: len(full) * 16].reshape(-1, 16)
    random_pad = sum(int(rng_lengths[b].max() * 16 - rng_lengths[b].sum()) for b in random)
    assert grouped_pad < random_pad / 10  # padding nearly vanishes
    starts = [int(rng_lengths[b].max()) for b in full]
    assert starts != sorted(starts, reverse=True)  # batches themselves are shuffled, not longest-first


def test_label_text_lines_like_sst2_sentences(tmp_path):
    f = tmp_path / "stsa.train"
    f.write_text("1 a stirring , funny re-imagining\n\n0 apparently reassembled from the floor .\nDESC:manner How did it go ?\n"
                 "2\n")
    said = []
    rows = labeled.load_rows(str(f), DataSection(train=str(f), format="label_text"), "data.train", log=said.append)
    assert rows.texts == ["a stirring , funny re-imagining", "apparently reassembled from the floor .", "How did it go ?"]
    assert labeled.infer_labels(rows) == ["0", "1", "DESC:manner"]
    assert rows.skipped == [3] and f"{f}:5)" in said[0]  # "2" alone: a label without text, on line 5 (line 2 is blank)
    named = DataSection(train=str(f), format="label_text", column_names=["y", "x"], text_column="x", label_column="y")
    assert labeled.load_rows(str(f), named, "data.train", log=said.append).texts == rows.texts


def test_label_text_reads_the_real_sst2_sentence_file():
    f = need(DATA / "sst2" / "sentences" / "stsa.binary.dev")
    rows = labeled.load_rows(str(f), DataSection(train=str(f), format="label_text"), "data.train", log=lambda *_: None)
    assert len(rows) == 872 and labeled.infer_labels(rows) == ["0", "1"]  # GLUE SST-2 dev has the same 872 sentences
    assert rows.texts[0].startswith("one long string of cliches")


def test_locations_follow_each_entrys_rows_and_format(tmp_path):
    # entry 0 keeps 2 of its 3 rows, entry 1 is a headerless TSV with its own column names: the bad label of the
    # second file's row 2 is dataset row 3, on line 2 of that file
    a = tmp_path / "a.csv"
    a.write_text("text,label\none,x\ntwo,y\nthree,z\n")
    b = tmp_path / "b.tsv"
    b.write_text("four\tx\nfive\t\n")
    data = DataSection(train=[{"path": str(a), "rows": 2}, {"path": str(b), "column_names": ["text", "label"]}])
    msg = error_of(labeled.load_rows, data.train, data, "data.train")
    assert msg.startswith(f"{b}:2: empty label")
    loc = labeled.Locator(data.train, data, "data.train")
    assert [loc(i) for i in range(4)] == [f"{a}:2", f"{a}:3", f"{b}:1", f"{b}:2"]
