"""Sequence classification (task cls): single texts or pairs from tables, label_text files or hub datasets; a head
sized to the training labels; accuracy, macro F1, MCC, per-class scores and the confusion matrix; `ftkit predict`.

`SPEC` (what the registry reads) is imported lazily: importing the package stays torch-free."""


def __getattr__(name: str):
    if name == "SPEC":
        from ftkit.tasks.cls.task import SPEC  # on first use: importing the package stays torch-free

        return SPEC
    raise AttributeError(name)
