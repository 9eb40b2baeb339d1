"""Seq2seq pieces without training: reading pairs (parallel gzip text, rows), encoding (caps keep the end token,
counted), the joint T5-style tokenizer, special ids per family, label shifting and padding, and the metrics
(sacreBLEU / rouge-score values; the same score whatever order the gathered texts come in)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from ftkit import registry
from ftkit.errors import UserError
from ftkit.recipe.schema import DataSection
from ftkit.tasks.seq2seq import data, metrics
from ftkit.tasks.seq2seq.encode import encode
from ftkit.tasks.seq2seq.section import Seq2SeqSection

S2S = Seq2SeqSection()


def _gz(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("".join(l + "\n" for l in lines))
    return str(path)


def test_parallel_gzip_files_rows_and_the_comma_form(tmp_path):
    src = _gz(tmp_path / "t.de.gz", ["Ein Hund.", "Zwei Katzen."])
    tgt = _gz(tmp_path / "t.en.gz", ["A dog.", "Two cats."])
    d = DataSection(train="x")
    pairs = data.load([src, tgt], d, S2S, "data.train")
    assert pairs.sources == ["Ein Hund.", "Zwei Katzen."] and pairs.targets == ["A dog.", "Two cats."]
    assert data.load(f"{src},{tgt}", d, S2S, "--data").targets == pairs.targets
    rows = tmp_path / "r.jsonl"
    rows.write_text('{"body": "long email", "subject": "short"}\n')
    got = data.load(str(rows), d, S2S.model_copy(update={"source_column": "body", "target_column": "subject"}), "data.train")
    assert (got.sources, got.targets) == (["long email"], ["short"])
    with pytest.raises(UserError, match=r"t.de.gz has 2 lines but .*short.en has 1"):
        (tmp_path / "short.en").write_text("A dog.\n")
        data.load([src, str(tmp_path / "short.en")], d, S2S, "data.train")


class _Tok:
    """Ids of whitespace words (a stand-in tokenizer): [start?] words... </s>=2."""
    all_special_ids = [0, 1, 2]

    def __init__(self, lead=None):
        self.lead = lead

    def __call__(self, texts, add_special_tokens=True):
        ids = [([self.lead] if self.lead is not None else []) + [10 + len(w) for w in t.split()] + [2] for t in texts]
        return {"input_ids": ids}


def test_caps_keep_the_end_token_and_are_counted_or_skipped():
    pairs = data.Pairs(["a b c d e f", "a b"], ["x y z w v", "x"])
    s2s = S2S.model_copy(update={"max_source_length": 4, "max_target_length": 3})
    enc = encode(pairs, _Tok(), s2s, decoder_start=0, train=True)
    assert enc.truncated == 1 and len(enc.items) == 2
    assert enc.items[0]["input_ids"].tolist() == [11, 11, 11, 2] and enc.items[0]["labels"].tolist() == [11, 11, 2]
    skip = encode(pairs, _Tok(), s2s.model_copy(update={"too_long": "skip"}), decoder_start=0, train=True)
    assert skip.skipped == 1 and [it["index"] for it in skip.items] == [1]
    # evaluation never skips (every reference is scored)
    assert len(encode(pairs, _Tok(), s2s.model_copy(update={"too_long": "skip"}), 0, train=False).items) == 2
    # a target the tokenizer opens with the decoder's start token ([CLS] of a warm-started BERT2BERT) loses it
    lead = encode(data.Pairs(["a"], ["x y"]), _Tok(lead=7), S2S, decoder_start=7, train=True)
    assert lead.items[0]["labels"].tolist() == [11, 11, 2] and lead.items[0]["input_ids"].tolist() == [7, 11, 2]


def test_a_new_tokenizer_for_seq2seq_ends_texts_with_eos_and_has_no_bos():
    from ftkit.data.tokenizer import T5, build_tokenizer, specials_for, wrap
    from ftkit.recipe.schema import TokenizerSection

    assert specials_for("unigram", registry.entry("seq2seq")) is T5 and specials_for("bpe", registry.entry("seq2seq")) is T5
    texts = [["ein Hund läuft", "a dog runs", "zwei Hunde laufen", "two dogs run"] * 20]
    for kind in ("unigram", "bpe"):
        tok = wrap(build_tokenizer(kind, TokenizerSection(path="x", kind=kind, vocab_size=60, min_frequency=1), T5, texts),
                   T5, 64, kind)
        ids = tok("a dog runs")["input_ids"]
        assert ids[-1] == tok.eos_token_id and tok.bos_token_id is None and tok.pad_token_id == 0
        assert tok.decode(ids, skip_special_tokens=True).strip() == "a dog runs"


def test_special_ids_follow_each_family():
    from transformers import AutoConfig, BertTokenizerFast, PreTrainedTokenizerFast

    from ftkit.models.encoder_decoder import special_ids

    from tiny_models import minilm_tokenizer

    class T:
        pad_token_id, eos_token_id, sep_token_id, cls_token_id, bos_token_id = 0, 2, None, None, None

        def __len__(self):
            return 100

    assert special_ids(AutoConfig.for_model("t5", vocab_size=100), T())["decoder_start_token_id"] == 0
    assert special_ids(AutoConfig.for_model("bart", vocab_size=100), T())["decoder_start_token_id"] == 2
    bert = minilm_tokenizer()
    cfg = AutoConfig.for_model("encoder-decoder", encoder=AutoConfig.for_model("bert").to_dict(),
                               decoder=AutoConfig.for_model("bert").to_dict())
    ids = special_ids(cfg, bert)
    assert ids == {"pad_token_id": bert.pad_token_id, "eos_token_id": bert.sep_token_id,
                   "decoder_start_token_id": bert.cls_token_id} and cfg.decoder.pad_token_id == bert.pad_token_id
    with pytest.raises(UserError, match="outside the model's vocabulary of 2"):
        special_ids(AutoConfig.for_model("t5", vocab_size=2), T())
    assert isinstance(bert, (BertTokenizerFast, PreTrainedTokenizerFast))


def test_labels_padded_with_minus_100_and_shifted_behind_the_start_token():
    from ftkit.tasks.seq2seq.task import Seq2Seq

    from tiny_models import minilm_tokenizer

    tok = minilm_tokenizer()
    task = Seq2Seq(tok, S2S, decoder_start=tok.cls_token_id, references=["a", "b"])
    batch = task.collate([{"input_ids": np.array([5, 6, 7]), "labels": np.array([8, 9, 102]), "index": 0},
                          {"input_ids": np.array([5]), "labels": np.array([102]), "index": 1}], None)
    assert batch["labels"].tolist() == [[8, 9, 102], [102, -100, -100]]
    assert batch["input_ids"][1].tolist() == [5, tok.pad_token_id, tok.pad_token_id] and batch["attention_mask"][1].tolist() == [1, 0, 0]
    assert task.decoder_inputs(batch["labels"]).tolist() == [[tok.cls_token_id, 8, 9], [tok.cls_token_id, 102, tok.pad_token_id]]
    assert task.count_targets(batch) == 4 and task.count_tokens(batch) == 8


def test_metrics_match_sacrebleu_and_rouge_score_and_do_not_depend_on_order():
    import sacrebleu

    hyps = ["a man rides a bike .", "two dogs play in the snow", "a woman is singing"]
    refs = ["a man is riding a bike .", "two dogs are playing in snow", "a woman sings on stage"]
    got = metrics.bleu_chrf(hyps, refs)
    assert got["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert got["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert metrics.bleu_chrf(refs, refs)["bleu"] == pytest.approx(100.0)
    r = metrics.rouge(["the cat sat"], ["the cat sat on the mat"])
    assert r["rouge1"] == pytest.approx(100 * 2 * 1 * 0.5 / 1.5) and r["rougeL"] == pytest.approx(r["rouge1"])
    assert "nrefs:1|case:mixed|eff:no|tok:13a" in metrics.signature("bleu")

    from ftkit.tasks.seq2seq.task import Seq2Seq

    from tiny_models import minilm_tokenizer

    task = Seq2Seq(minilm_tokenizer(), S2S, 101, refs)
    ordered = task.compute_metrics({"prediction": hyps, "index": np.array([0, 1, 2]), "gen_len": np.array([6, 6, 4]),
                                    "loss_sum": 3.0, "count": 3})
    shuffled = task.compute_metrics({"prediction": [hyps[2], hyps[0], hyps[1]], "index": np.array([2, 0, 1]),
                                     "gen_len": np.array([4, 6, 6]), "loss_sum": 3.0, "count": 3})
    assert ordered == shuffled and ordered["bleu"] == pytest.approx(got["bleu"]) and ordered["loss"] == 1.0
    assert torch.is_tensor(task.decoder_inputs(torch.tensor([[5, -100]])))
