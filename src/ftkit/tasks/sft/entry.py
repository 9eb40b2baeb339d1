"""The task of this package as the registry lists it (sft): torch-free, read by the recipe schema, the CLI's help and the
workflows, which pass the entry down to models/ and data/ (see ftkit/task_entry.py)."""

from ftkit.task_entry import FINETUNE, RecipeSection, TaskEntry
from ftkit.tasks.sft.section import MOVED_DATA_KEYS, SftSection

ENTRY = TaskEntry("sft", FINETUNE, "ftkit.tasks.sft", "AutoModelForCausalLM", ("ForCausalLM",), "loss",
    "instruction / chat fine-tuning of a causal LM (loss on the assistant turns)", "CAUSAL_LM", ("lora",),
    example_formats=("messages", "prompt_completion", "alpaca", "template"), pipeline_tag="text-generation",
    decoder_only=True, generates=True,
    sections=(RecipeSection("sft", SftSection, "Instruction / chat fine-tuning settings (task sft).", MOVED_DATA_KEYS),))
