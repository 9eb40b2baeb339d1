"""Words and numbers ftkit prints: articles chosen by sound, slow rates never shown as 0/s, one metric precision."""

import pytest

from ftkit.wording import article, metric, per_second, rate, round_rate, with_article


@pytest.mark.parametrize("word, expected", [
    ("image-cls", "an"), ("electra", "an"), ("unknown", "an"), ("instruction / chat", "an"), ("int8", "an"),
    ("mlm", "an"), ("mlm+nsp", "an"), ("sft", "an"), ("ner", "an"), ("'mlm'", "an"), ("hour", "an"), ("8-bit", "an"),
    ("cls", "a"), ("clm", "a"), ("bpe", "a"), ("wordpiece", "a"), ("unigram", "a"), ("char", "a"), ("lora", "a"),
    ("prefix_tuning", "a"), ("causal LM (GPT)", "a"), ("text / text-pair classification", "a"), ("pre-training", "a"),
    ("user", "a"), ("one-off", "a"), ("16-bit", "a"), ("", "a"),
])
def test_the_article_follows_the_sound_of_the_word(word, expected):
    assert article(word) == expected
    assert with_article(word) == f"{expected} {word}"


def test_a_slow_rate_is_never_zero():
    assert per_second(160, 379.8) == 0.42 and rate(per_second(160, 379.8), "examples") == "0.42 examples/s"
    assert rate(0.004, "examples") == "250 s/example" and rate(0.004, "ex") == "250 s/ex"
    assert rate(1234.4, "examples") == "1,234 examples/s" and rate(3.45, "ex", ",.1f") == "3.5 ex/s"
    assert rate(0, "examples") == "0 examples/s"  # nothing trained at all
    assert round_rate(0.0042, 2) == 0.0042 and round_rate(12.345, 2) == 12.35 and per_second(10, 4) == 2.5


def test_metric_values_share_one_precision():
    assert (metric(1), metric(1.0), metric(0.41)) == ("1.0000", "1.0000", "0.4100")
    assert metric(23456.78) == "23,456.8" and metric(None) == "—" and metric(True) == "True"
