"""Preference tuning (task dpo): pairs of a prompt and a chosen and a rejected reply, trained with DPO's sigmoid loss,
IPO, SimPO or ORPO; the reference is the base model with the adapter disabled (LoRA) or a frozen copy.

`SPEC` (what the registry reads) is imported lazily: the recipe schema imports `section` without torch."""


def __getattr__(name: str):
    if name == "SPEC":
        from ftkit.tasks.preference.task import SPEC  # on first use: importing the package stays torch-free

        return SPEC
    raise AttributeError(name)
