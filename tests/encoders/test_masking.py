"""Dynamic masking on real text: 15% selected, 80/10/10, specials never masked, whole words together."""

import numpy as np
import pytest

from ftkit.data.token_cache import encode_texts
from ftkit.errors import UserError
from ftkit.tasks.encoders.masking import IGNORE, MaskingVocab, word_starts
from ftkit.tasks.encoders.mlm import MaskedLM
from ftkit.tasks.encoders.section import MaskingSection

from encoder_helpers import WIKI_RAW, imdb_texts, need, train_tokenizer


@pytest.fixture(scope="module")
def wordpiece(tmp_path_factory):
    return train_tokenizer("wordpiece", "mlm", imdb_texts(600), tmp_path_factory.mktemp("wp"), vocab_size=3000)


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    texts = need(WIKI_RAW).read_text().splitlines()[:1500]
    return train_tokenizer("bpe", "mlm", texts, tmp_path_factory.mktemp("bpe"), vocab_size=3000, lowercase=False)


def blocks(tok, n_tokens: int, width: int = 126) -> list[np.ndarray]:
    stream = []
    for ids in encode_texts(tok, imdb_texts(1200), add_eos=True):  # [SEP] between reviews
        stream.extend(ids)
        if len(stream) >= n_tokens:
            break
    arr = np.asarray(stream[: len(stream) // width * width]).reshape(-1, width)
    return list(arr)


def padded(batch_ids: np.ndarray, pad_id: int, rng) -> np.ndarray:
    """Pad a random tail of each row, as a collate of unequal sequences would."""
    ids = batch_ids.copy()
    for row in ids:
        row[rng.integers(ids.shape[1] // 2, ids.shape[1]):] = pad_id
    return ids


@pytest.mark.parametrize("probability, shares", [(0.15, (0.8, 0.1, 0.1)), (0.3, (0.8, 0.1, 0.1)), (0.3, (1.0, 0.0, 0.0)),
                                                 (0.4, (0.5, 0.25, 0.25))])
def test_masking_statistics_on_100k_tokens(wordpiece, probability, shares):
    """masking.probability and masking.mask_random_keep do what they say, measured on >= 100k candidate tokens."""
    task = MaskedLM(wordpiece, MaskingSection(probability=probability, mask_random_keep=shares))
    rng = np.random.default_rng(0)
    data = blocks(wordpiece, 150_000)  # a quarter becomes padding below
    ids = task.collate(data, np.random.default_rng(1))  # [CLS] block [SEP]
    original = np.concatenate([np.full((len(data), 1), wordpiece.cls_token_id), np.stack(data),
                               np.full((len(data), 1), wordpiece.sep_token_id)], axis=1)
    original = padded(original, wordpiece.pad_token_id, rng)
    inputs, labels = task.mask(original, np.random.default_rng(2), probability)
    inputs, labels = inputs.numpy(), labels.numpy()
    special = np.isin(original, wordpiece.all_special_ids)
    assert special.sum() > 2 * len(data) + 100  # [CLS], [SEP] between reviews, padding
    candidates = ~special
    assert candidates.sum() >= 100_000
    selected = labels != IGNORE
    assert not (selected & special).any()  # no special token (nor padding) is ever masked
    assert (inputs[special] == original[special]).all()
    share = selected.sum() / candidates.sum()
    assert abs(share - probability) < 0.01, share
    n = selected.sum()
    as_mask = (inputs[selected] == wordpiece.mask_token_id).sum() / n
    as_random = ((inputs[selected] != original[selected]) & (inputs[selected] != wordpiece.mask_token_id)).sum() / n
    as_is = (inputs[selected] == original[selected]).sum() / n
    # a random draw may pick the original token (1 in ~3,000 here): counted as kept
    assert all(abs(got - want) < 0.02 for got, want in zip((as_mask, as_random, as_is), shares)), (as_mask, as_random, as_is)
    assert not np.isin(inputs[selected & (inputs != original)], [t for t in wordpiece.all_special_ids
                                                                 if t != wordpiece.mask_token_id]).any()
    assert (labels[selected] == original[selected]).all()
    assert (inputs[~selected] == original[~selected]).all()
    # the collate does the same: [CLS]/[SEP] are never selected
    assert not (ids["labels"][:, [0, -1]] != IGNORE).any()


def test_masks_come_from_the_rng_only(wordpiece):
    task = MaskedLM(wordpiece, MaskingSection())
    data = blocks(wordpiece, 5_000)
    a = task.collate(data, np.random.default_rng([3, 0]))
    b = task.collate(data, np.random.default_rng([3, 0]))
    c = task.collate(data, np.random.default_rng([3, 1]))
    assert (a["input_ids"] == b["input_ids"]).all() and (a["labels"] == b["labels"]).all()
    assert (a["labels"] != c["labels"]).any()


def words_of(starts_row: np.ndarray) -> np.ndarray:
    return np.cumsum(starts_row)


def check_whole_words(tok, text_blocks, probability=0.15):
    task = MaskedLM(tok, MaskingSection(whole_word=True, probability=probability))
    batch = task.collate(text_blocks, np.random.default_rng(5))
    ids = np.concatenate([np.full((len(text_blocks), 1), tok.cls_token_id), np.stack(text_blocks),
                          np.full((len(text_blocks), 1), tok.sep_token_id)], axis=1)
    selected = batch["labels"].numpy() != IGNORE
    special = np.isin(ids, tok.all_special_ids)
    starts = word_starts(tok)[ids] & ~special
    starts[:, 1:] |= special[:, :-1] & ~special[:, 1:]
    multi_piece_selected = 0
    for row in range(len(ids)):
        word = np.cumsum(starts[row])
        for w in np.unique(word[selected[row]]):
            members = (word == w) & ~special[row]
            assert selected[row][members].all(), tok.convert_ids_to_tokens(ids[row][members].tolist())
            multi_piece_selected += members.sum() > 1
    share = selected.sum() / (~special).sum()
    return share, multi_piece_selected


def test_whole_word_masking_wordpiece(wordpiece):
    share, multi = check_whole_words(wordpiece, blocks(wordpiece, 110_000))
    assert abs(share - 0.15) < 0.01, share  # words are drawn with p, so the token share stays p
    assert multi > 300  # words of several ## pieces were selected (and fully)


def test_whole_word_masking_byte_level_bpe(bpe):
    text = need(WIKI_RAW).read_text()[200_000:260_000]
    ids = encode_texts(bpe, [text], add_eos=False)[0]
    arr = np.asarray(ids[: len(ids) // 62 * 62]).reshape(-1, 62)
    share, multi = check_whole_words(bpe, list(arr), probability=0.3)
    assert abs(share - 0.3) < 0.03 and multi > 50


def test_word_starts_follow_the_tokenizer(wordpiece, bpe):
    ws = word_starts(wordpiece)
    assert ws[wordpiece.convert_tokens_to_ids("the")] and not ws[wordpiece.convert_tokens_to_ids("##s")]
    ids = bpe(" unbelievable story", add_special_tokens=False)["input_ids"]
    pieces = bpe.convert_ids_to_tokens(ids)
    assert word_starts(bpe)[ids].tolist() == [p.startswith("Ġ") for p in pieces] and sum(word_starts(bpe)[ids]) == 2


def test_tokenizer_without_mask_token(tmp_path):
    tok = train_tokenizer("bpe", "clm", imdb_texts(50), tmp_path / "gpt", vocab_size=500)
    with pytest.raises(UserError, match="tokenizer.path: the tokenizer has no mask token"):
        MaskedLM(tok, MaskingSection(), "tokenizer.path")
    with pytest.raises(UserError, match="no mask token"):
        MaskingVocab.from_tokenizer(tok, False)
    char = train_tokenizer("char", "mlm", imdb_texts(20), tmp_path / "char", vocab_size=200)
    with pytest.raises(UserError, match="masking.whole_word: cannot tell where words start"):
        word_starts(char)


def test_evaluation_can_mask_at_its_own_rate(wordpiece):
    task = MaskedLM(wordpiece, MaskingSection(probability=0.3, eval_probability=0.15))
    data = blocks(wordpiece, 40_000)
    rng = lambda: np.random.default_rng(9)  # noqa: E731
    train_share = (task.collate(data, rng())["labels"] != IGNORE).float().mean().item()
    eval_share = (task.eval_collate(data, rng())["labels"] != IGNORE).float().mean().item()
    assert abs(train_share - 0.3 * 126 / 128) < 0.01 and abs(eval_share - 0.15 * 126 / 128) < 0.01


def test_byte_level_mask_token_takes_the_space_before_it(bpe):
    """As roberta-base: "in <mask>" is [Ġin, <mask>], so the mask stands for a whole 'Ġword' as in training."""
    for special in ("<mask>", "<unk>"):
        pieces = bpe.convert_ids_to_tokens(bpe(f"It was released in {special} .", add_special_tokens=False)["input_ids"])
        assert pieces[pieces.index(special) - 1] == "Ġin", pieces
