"""Sequence-to-sequence (task seq2seq): an encoder-decoder (T5, BART, Marian, a warm-started EncoderDecoderModel)
trained on source -> target pairs (translation, summarization), evaluated by generating (greedy / beam search) and
scoring the texts with sacreBLEU (BLEU, chrF) or rouge-score (ROUGE-1/2/L/Lsum).

`SPEC` (what the registry reads) is imported lazily: the recipe schema imports `section` without torch."""


def __getattr__(name: str):
    if name == "SPEC":
        from ftkit.tasks.seq2seq.task import SPEC

        return SPEC
    raise AttributeError(name)
