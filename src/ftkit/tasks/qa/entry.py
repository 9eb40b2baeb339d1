"""The task of this package as the registry lists it (qa): torch-free, read by the recipe schema, the CLI's help and the
workflows, which pass the entry down to models/ and data/ (see ftkit/task_entry.py)."""

from ftkit.task_entry import FINETUNE, RecipeSection, TaskEntry
from ftkit.tasks.qa.section import QaSection

# pipeline_tag: hub metadata only; transformers 5 has no question-answering pipeline (models/card.py writes the code)
ENTRY = TaskEntry("qa", FINETUNE, "ftkit.tasks.qa", "AutoModelForQuestionAnswering", ("ForQuestionAnswering",), "f1",
    "extractive question answering (SQuAD): the answer span in a context", "QUESTION_ANS", ("lora",),
    peft_head=("qa_outputs",), pipeline_tag="question-answering", train_examples=True,
    sections=(RecipeSection("qa", QaSection, "Extractive question answering settings (task qa)."),))
