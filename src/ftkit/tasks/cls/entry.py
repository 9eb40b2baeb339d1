"""The task of this package as the registry lists it (cls): torch-free, read by the recipe schema, the CLI's help and the
workflows, which pass the entry down to models/ and data/ (see ftkit/task_entry.py)."""

from ftkit.task_entry import FINETUNE, TaskEntry

ENTRY = TaskEntry("cls", FINETUNE, "ftkit.tasks.cls", "AutoModelForSequenceClassification", ("ForSequenceClassification",),
    "accuracy", "text / text-pair classification", "SEQ_CLS", ("lora", "prefix", "prompt"), compress=True, pipeline_tag="text-classification",
    train_examples=True)
