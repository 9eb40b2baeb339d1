"""Instruction / chat fine-tuning of a causal LM (task sft): example layouts -> messages (data.py), the loss on the
assistant turns over packed or length-grouped rows (task.py), generation evaluation by exact match (generate.py).
The chat template rendering, masks and stop tokens are generic (data/chat_tokens.py: `ftkit chat`, dpo and the GGUF
export use them too).

`SPEC` (what the registry reads) is imported lazily: importing the package stays torch-free."""


def __getattr__(name: str):
    if name == "SPEC":
        from ftkit.tasks.sft.task import SPEC  # on first use: importing the package stays torch-free

        return SPEC
    raise AttributeError(name)
