"""Token classification (task ner): tagged sentences (CoNLL, JSON / parquet list columns, hub datasets), word-piece
alignment with windows so every word is scored, entity-level P/R/F1 with conlleval's rules, `ftkit predict`.

`SPEC` (what the registry reads) is imported lazily: the recipe schema imports `section` without torch."""


def __getattr__(name: str):
    if name == "SPEC":
        from ftkit.tasks.ner.task import SPEC  # on first use: importing the package stays torch-free

        return SPEC
    raise AttributeError(name)
