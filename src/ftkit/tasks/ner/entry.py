"""The task of this package as the registry lists it (ner): torch-free, read by the recipe schema, the CLI's help and the
workflows, which pass the entry down to models/ and data/ (see ftkit/task_entry.py)."""

from ftkit.task_entry import FINETUNE, RecipeSection, TaskEntry
from ftkit.tasks.ner.section import LEGACY_DATA_KEYS, NerSection

ENTRY = TaskEntry("ner", FINETUNE, "ftkit.tasks.ner", "AutoModelForTokenClassification", ("ForTokenClassification",), "f1",
    "token classification (named entities)", "TOKEN_CLS", ("lora",), pipeline_tag="token-classification",
    sections=(RecipeSection("ner", NerSection, "Token classification settings (task ner).", LEGACY_DATA_KEYS),))
