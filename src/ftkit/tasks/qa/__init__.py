"""Extractive question answering (task qa): SQuAD-style data, question + context windows, start/end logits,
run_qa's post-processing, the official SQuAD v1.1 / v2 scores.

`SPEC` (what the registry reads) is imported lazily: the recipe schema imports `section` without torch."""


def __getattr__(name: str):
    if name == "SPEC":
        from ftkit.tasks.qa.task import SPEC  # on first use: importing the package stays torch-free

        return SPEC
    raise AttributeError(name)
