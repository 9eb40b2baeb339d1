"""The mlm+nsp collate: [CLS] A [SEP] B [SEP], token_type_ids, 50/50 labels (a fair coin per example), the length
cap, BERT's loss."""

import numpy as np
import pytest
import torch

from ftkit.errors import UserError
from ftkit.tasks.encoders.documents import SentenceCorpus
from ftkit.tasks.encoders.masking import IGNORE
from ftkit.tasks.encoders.nsp import IS_NEXT, RANDOM_NEXT, MaskedLMWithNSP
from ftkit.tasks.encoders.pairs import PairItems
from ftkit.tasks.encoders.section import MaskingSection

CLS, SEP, PAD = 2, 3, 0


class FakeTokenizer:
    pad_token_id, unk_token_id, cls_token_id, sep_token_id, mask_token_id = 0, 1, 2, 3, 4
    all_special_ids = [0, 1, 2, 3, 4]

    def __init__(self, size: int = 100_000):
        self.size = size

    def __len__(self):
        return self.size

    def convert_ids_to_tokens(self, i):
        return f"t{i}"


def corpus(doc_sizes, seed=0) -> SentenceCorpus:
    """Token ids = 5 + position in the corpus: each token tells its sentence and document."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(2, 30, size=sum(doc_sizes))
    offsets = np.concatenate([[0], np.cumsum(lens)])
    return SentenceCorpus(np.arange(5, 5 + offsets[-1]), offsets, np.concatenate([[0], np.cumsum(doc_sizes)]))


def doc_of(c: SentenceCorpus, token: int) -> int:
    sent = np.searchsorted(c.sent_offsets, token - 5, side="right") - 1
    return int(np.searchsorted(c.doc_offsets, sent, side="right") - 1)


@pytest.fixture
def setup():
    c = corpus([int(n) for n in np.random.default_rng(3).integers(2, 25, size=80)] + [1] * 40)
    items = PairItems(c, max_tokens=64 - 3)
    task = MaskedLMWithNSP(FakeTokenizer(), MaskingSection(probability=1e-9))  # no masking: the tokens stay readable
    return c, items, task


def test_layout_types_labels_and_cap(setup):
    c, items, task = setup
    labels, seen_single = [], 0
    for b in range(150):
        rng = np.random.default_rng([0, b])
        batch = task.collate([items[int(i)] for i in rng.choice(len(items), 16, replace=False)], rng)
        ids, tt, att = batch["input_ids"].numpy(), batch["token_type_ids"].numpy(), batch["attention_mask"].numpy()
        nsp = batch["next_sentence_label"].numpy()
        assert ids.shape[1] <= 64
        for row, t, a, label in zip(ids, tt, att, nsp):
            n = int(a.sum())
            assert (a[:n] == 1).all() and (row[n:] == PAD).all() and (t[n:] == 0).all()
            assert row[0] == CLS and row[n - 1] == SEP
            seps = np.flatnonzero(row[:n] == SEP)
            if label == IGNORE:  # packed one-sentence documents: one segment
                seen_single += 1
                assert (t[:n] == 0).all()
                continue
            assert len(seps) == 2
            first = seps[0]
            assert (t[:first + 1] == 0).all() and (t[first + 1:n] == 1).all()
            a_ids, b_ids = row[1:first], row[first + 1:n - 1]
            assert len(a_ids) >= 1 and len(b_ids) >= 1
            if label == IS_NEXT:
                assert b_ids[0] == a_ids[-1] + 1  # B continues A in the same document
            else:
                assert doc_of(c, b_ids[0]) != doc_of(c, a_ids[-1])  # B comes from another document
            labels.append(label)
    assert seen_single > 0
    # a fair coin per pair: the share of negatives is one half within 4 standard deviations (0.5 / sqrt(n) each)
    assert len(labels) > 2000 and abs(np.mean(np.asarray(labels) == RANDOM_NEXT) - 0.5) < 4 * 0.5 / np.sqrt(len(labels))


def test_loss_is_mean_mlm_plus_mean_nsp_as_bert():
    from transformers import BertConfig, BertForPreTraining

    torch.manual_seed(0)
    c = corpus([6, 8, 5, 9, 7, 4])
    items = PairItems(c, max_tokens=61)
    task = MaskedLMWithNSP(FakeTokenizer(400), MaskingSection())
    model = BertForPreTraining(BertConfig(vocab_size=400, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=64, max_position_embeddings=64)).eval()
    small = SentenceCorpus(c.tokens % 390 + 5, c.sent_offsets, c.doc_offsets)  # ids inside the tiny vocabulary
    items.corpus = small
    batch = task.collate([items[i] for i in range(min(8, len(items)))], np.random.default_rng(4))
    with torch.no_grad():
        ours = task.loss(model, batch) / task.count_targets(batch)
        theirs = model(**{k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids", "labels",
                                                "next_sentence_label")}).loss
        weighted = MaskedLMWithNSP(FakeTokenizer(400), MaskingSection(nsp_weight=3.0))
        heavier = weighted.loss(model, batch) / task.count_targets(batch)
        metrics = task.compute_metrics(task.eval_step(model, batch))
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    # masking.nsp_weight scales the NSP term only: mlm + 3 * nsp
    torch.testing.assert_close(heavier, ours + 2 * torch.tensor(metrics["nsp_loss"]), rtol=1e-4, atol=1e-5)


def test_nsp_needs_a_next_sentence_head():
    from transformers import RobertaConfig, RobertaForMaskedLM

    model = RobertaForMaskedLM(RobertaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                             intermediate_size=32))
    with pytest.raises(UserError, match="mlm\\+nsp needs a model with a next-sentence head"):
        MaskedLMWithNSP(FakeTokenizer(), MaskingSection()).check_model(model)


def test_random_next_pairs_are_spread_over_the_batch(setup):
    from ftkit.tasks.encoders.pairs import PAIR

    _, items, task = setup
    pairs = [items[i] for i in range(len(items)) if items[i].kind == PAIR]
    negatives, per_batch = np.zeros(16), []
    for b in range(200):
        rng = np.random.default_rng([5, b])
        chosen = [pairs[int(i)] for i in rng.choice(len(pairs), 16, replace=False)]
        labels = task.collate(chosen, rng)["next_sentence_label"].numpy()
        per_batch.append((labels == RANDOM_NEXT).sum())
        negatives += labels == RANDOM_NEXT
    # a fair coin per pair: a batch's count of negatives is Binomial(16, 1/2) (mean 8, sd 2), not always 8
    assert abs(np.mean(per_batch) - 8) < 4 * 2 / np.sqrt(200) and 1 < np.std(per_batch) < 3
    share = negatives / 200
    assert share.min() > 0.35 and share.max() < 0.65  # every position is a negative about half the time
