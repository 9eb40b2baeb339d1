"""Sequence-to-sequence (task seq2seq): an encoder-decoder (T5, BART, Marian, a warm-started EncoderDecoderModel)
trained on source -> target pairs (translation, summarization), evaluated by generating (greedy / beam search) and
scoring the texts with sacreBLEU (BLEU, chrF) or rouge-score (ROUGE-1/2/L/Lsum); and T5's span-corruption
pre-training (task span-corruption: span_corruption.py, span_section.py, its own SPEC).

`SPEC` (what the registry reads) is imported lazily: the recipe schema imports `section` without torch."""


def __getattr__(name: str):
    if name == "SPEC":
        from ftkit.tasks.seq2seq.task import SPEC  # on first use: importing the package stays torch-free

        return SPEC
    raise AttributeError(name)
