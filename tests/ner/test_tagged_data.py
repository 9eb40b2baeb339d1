"""Reading tagged sentences (CoNLL, JSONL), tag schemes, and sub-token alignment with windows."""

import json
from collections import Counter

import pytest

from ftkit.errors import UserError
from ftkit.recipe.schema import DataSection
from ftkit.tasks.ner import data as tagged
from ftkit.tasks.ner.items import WORDS_PER_SENTENCE, encode, windows
from ftkit.tasks.ner.section import NerSection

from conftest import DATA, need
from tiny_models import minilm_tokenizer

WNUT = DATA / "wnut17"


def data(**kw) -> DataSection:
    return DataSection(train="-", **kw)


def ner(**kw) -> NerSection:
    return NerSection(**kw)


def test_wnut_train_has_3394_sentences_despite_its_tab_only_separator_lines():
    t = tagged.load(str(need(WNUT / "wnut17train.conll")), data(), ner(), "data.train")
    assert len(t) == 3394 and sum(map(len, t.tokens)) == 62730
    assert t.where[1].endswith("wnut17train.conll:" + str(len(t.tokens[0]) + 2))  # line numbers are real


def test_conll_columns_docstart_and_whitespace_separators(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n \t \n"
                 "German JJ B-NP B-MISC\ncall NN I-NP O\n")
    t = tagged.load(str(p), data(), ner(), "data.train")  # defaults: token column 0, tag column -1 (CoNLL-2003)
    assert t.tokens == [["EU", "rejects"], ["German", "call"]] and t.tags == [["B-ORG", "O"], ["B-MISC", "O"]]
    chunk = tagged.load(str(p), data(), ner(tag_field=2), "data.train")
    assert chunk.tags[0] == ["B-NP", "B-VP"]
    with pytest.raises(UserError, match=r"c.txt:3: ner.tag_field 7 does not exist: lines have 4 columns"):
        tagged.load(str(p), data(), ner(tag_field=7), "data.train")
    p.write_text("EU B-ORG\nrejects\tVBZ\tO\n")
    with pytest.raises(UserError, match=r"c.txt:2: 3 columns, but the file's lines have 2"):
        tagged.load(str(p), data(), ner(), "data.train")


def test_jsonl_with_int_tags_and_names(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in [{"tokens": ["Ann", "runs"], "ner_tags": [1, 0]},
                                                   {"tokens": ["in", "Rome"], "ner_tags": [0, 3]}]))
    t = tagged.load(str(p), data(), ner(tag_names=["O", "B-PER", "I-PER", "B-LOC"]), "data.train")
    assert t.tags == [["B-PER", "O"], ["O", "B-LOC"]]
    with pytest.raises(UserError, match="tags are numbers; name them with ner.tag_names"):
        tagged.load(str(p), data(), ner(), "data.train")
    named = tagged.load(str(p), data(), ner(tag_names=["O", "B-PER", "I-PER", "B-LOC"]), "data.train")
    named.tags[1][1] = "X-LOC"  # a bad tag in a JSON row is named by row and token, not by a made-up line
    with pytest.raises(UserError, match=r"d.jsonl row 2 token 2: tag 'X-LOC'"):
        tagged.normalise(named, "iob2")
    p.write_text(json.dumps({"tokens": [], "ner_tags": []}))
    with pytest.raises(UserError, match=r"d.jsonl row 1: an empty sentence"):
        tagged.load(str(p), data(), ner(), "data.train")


def sentences(*tags):
    return tagged.Tagged([["w"] * len(t) for t in tags], [list(t) for t in tags], [f"f.conll:{i * 10 + 1}" for i in range(len(tags))])


def test_iob1_becomes_iob2_and_iob2_repairs_are_counted():
    t = tagged.normalise(sentences(["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"]), "iob1")
    assert t.tags[0] == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG"] and t.repaired == 0
    t = tagged.normalise(sentences(["O", "I-PER", "I-PER"], ["B-LOC", "I-PER"]), "iob2")
    assert t.tags == [["O", "B-PER", "I-PER"], ["B-LOC", "B-PER"]] and t.repaired == 2
    t = tagged.normalise(sentences(["U-PER", "B-LOC", "L-LOC"]), "bilou")
    assert t.tags[0] == ["S-PER", "B-LOC", "E-LOC"]


@pytest.mark.parametrize("scheme", ["bioes", "bilou"])
def test_iob2_data_read_as_bioes_is_refused(scheme):
    """IOB2 tags are valid BIOES letters: without this check `ner.tag_scheme: bioes` on IOB2 data trained silently."""
    iob2 = sentences(["O", "B-PER", "I-PER", "O"], ["B-LOC", "O", "B-ORG"])
    with pytest.raises(UserError, match=rf"f.conll:3: ner.tag_scheme is {scheme} but no entity in the data ends with "
                                        r".* \('I-PER' ends one here\): the tags are IOB2; set ner.tag_scheme: iob2"):
        tagged.normalise(iob2, scheme)
    closed = sentences(["O", "B-PER", "E-PER", "O"], ["S-LOC", "O"]) if scheme == "bioes" else \
        sentences(["O", "B-PER", "L-PER", "O"], ["U-LOC", "O"])
    assert tagged.normalise(closed, scheme).tags == [["O", "B-PER", "E-PER", "O"], ["S-LOC", "O"]]
    assert tagged.normalise(sentences(["O", "O"]), scheme).tags == [["O", "O"]]  # no entity: nothing to tell


@pytest.mark.parametrize("bad", ["B_PER", "X-LOC", "S-PER", "b-per", "B-"])
def test_malformed_tags_name_file_and_line(bad):
    with pytest.raises(UserError, match=rf"f.conll:2: tag '{bad}' is not IOB2"):
        tagged.normalise(sentences(["O", bad]), "iob2")


def test_validation_tag_unseen_in_training_is_an_error():
    with pytest.raises(UserError, match=r"f.conll:2: tag 'B-GPE' never occurs in data.train"):
        tagged.check_known(sentences(["O", "B-GPE"]), ["O", "B-PER", "I-PER"], "data.train")


def test_label_order_is_o_then_types():
    assert tagged.label_list([["B-b", "O", "I-a", "B-a"]]) == ["O", "B-a", "I-a", "B-b"]


@pytest.fixture(scope="module")
def tok():
    return minilm_tokenizer()


def test_first_piece_carries_the_tag_and_label_all_tokens_turns_b_into_i(tok):
    t = sentences(["B-PER", "O", "B-LOC", "I-LOC"])
    t.tokens = [["Kristiansand", "visits", "Unbelievableville", "City"]]
    label2id = {n: i for i, n in enumerate(["O", "B-LOC", "I-LOC", "B-PER", "I-PER"])}
    (item,), cut = encode(t, tok, 64, label2id, ["input_ids", "attention_mask"])
    enc = tok(t.tokens[0], is_split_into_words=True)
    words = enc.word_ids()
    assert cut == 0 and item["input_ids"] == enc["input_ids"] and len(words) > 6  # several words have several pieces
    for pos, w in enumerate(words):
        first = w is not None and (pos == 0 or words[pos - 1] != w)
        want = label2id[t.tags[0][w]] if first else -100
        assert item["labels"][pos] == want and (item["word_key"][pos] == w if first else item["word_key"][pos] == -1)
    (item,), _ = encode(t, tok, 64, label2id, ["input_ids", "attention_mask"], label_all_tokens=True)
    names = {i: n for n, i in label2id.items()}
    got = [names.get(l) for l in item["labels"]]
    assert got[1] == "B-PER" and set(got[2:words.index(1)]) == {"I-PER"}  # Kristiansand's later pieces: I-PER


def test_long_sentences_are_windowed_and_every_word_scored_once(tok):
    words = [f"word{i}" for i in range(60)]
    t = tagged.Tagged([words, ["short"]], [["O"] * 60, ["O"]], ["a:1", "a:62"])
    items, cut = encode(t, tok, 24, {"O": 0}, ["input_ids", "attention_mask"])
    assert cut == 1 and len(items) > 3 and all(len(it["input_ids"]) <= 24 for it in items)
    keys = Counter(k for it in items for k in it["word_key"] if k >= 0)
    assert set(keys.values()) == {1}
    assert sorted(keys) == [i for i in range(60)] + [WORDS_PER_SENTENCE]
    assert windows([3, 3, 3, 9, 1], 6) == [(0, 2), (2, 3), (3, 4), (4, 5)]


def test_rows_keeps_an_entrys_first_sentences(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("Ann B-PER\n\nRome B-LOC\n\nParis B-LOC\n")
    q = tmp_path / "d.txt"
    q.write_text("Bob B-PER\n\nOslo B-LOC\n")
    spec = [{"path": str(p), "rows": 2}, str(q)]
    t = tagged.load(DataSection(train=spec).train, data(), ner(), "data.train")
    assert t.tokens == [["Ann"], ["Rome"], ["Bob"], ["Oslo"]] and t.where[2] == f"{q}:1"
