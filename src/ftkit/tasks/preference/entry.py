"""The task of this package as the registry lists it (dpo): torch-free, read by the recipe schema, the CLI's help and the
workflows, which pass the entry down to models/ and data/ (see ftkit/task_entry.py)."""

from ftkit.task_entry import FINETUNE, RecipeSection, TaskEntry
from ftkit.tasks.preference.section import DpoSection

ENTRY = TaskEntry("dpo", FINETUNE, "ftkit.tasks.preference", "AutoModelForCausalLM", ("ForCausalLM",), "rewards/accuracies",
    "preference tuning of a chat model on chosen / rejected pairs (DPO, IPO, SimPO, ORPO)", "CAUSAL_LM",
    ("lora", "prefix", "prompt"), pipeline_tag="text-generation", decoder_only=True, generates=True,
    sections=(RecipeSection("dpo", DpoSection, "Preference tuning settings (task dpo)."),))
