"""The regex sentence splitter used to build NSP pairs."""

import pytest

from ftkit.tasks.encoders.sentences import split_sentences


@pytest.mark.parametrize("text, expected", [
    ("It was great. I loved it! Did you? Yes.", ["It was great.", "I loved it!", "Did you?", "Yes."]),
    # abbreviations and initials do not end a sentence
    ("Mr. Smith met Dr. Jones at St. Mary's. They talked.", ["Mr. Smith met Dr. Jones at St. Mary's.", "They talked."]),
    ("J. R. R. Tolkien wrote it, e.g. The Hobbit. Then more.", ["J. R. R. Tolkien wrote it, e.g. The Hobbit.", "Then more."]),
    # closing quotes stay with their sentence; an opening quote may start the next one
    ('He said "Go away." "Why?" she asked.', ['He said "Go away."', '"Why?" she asked.']),
    # ellipses end a sentence when a capital follows; lower case after punctuation does not split
    ("Well... Maybe not. or maybe so.", ["Well...", "Maybe not. or maybe so."]),
    # line breaks and IMDB's HTML line breaks always end a sentence
    ("First line\nsecond line<br /><br />third line", ["First line", "second line", "third line"]),
    # lower-cased, PTB-tokenized text (SST-2) stays whole
    ("a stirring , funny and finally transporting re-imagining . ", ["a stirring , funny and finally transporting re-imagining ."]),
    ("", []),
    ("   \n  ", []),
])
def test_split(text, expected):
    assert split_sentences(text) == expected


def test_real_review_splits_into_many_sentences():
    from encoder_helpers import imdb_texts

    reviews = imdb_texts(50)
    counts = [len(split_sentences(r)) for r in reviews]
    assert sum(counts) / len(counts) > 5  # IMDB reviews average ~10 sentences
    for r in reviews:  # nothing is lost but whitespace and HTML line breaks
        joined = "".join(split_sentences(r)).replace(" ", "")
        assert joined == r.replace("<br />", "").replace(" ", "").replace("\n", "")
