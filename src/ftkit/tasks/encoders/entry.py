"""The tasks of this package as the registry lists them (mlm, electra, mlm+nsp): torch-free, read by the recipe schema, the CLI's help and the
workflows, which pass the entry down to models/ and data/ (see ftkit/task_entry.py)."""

from ftkit.task_entry import PRETRAIN, RecipeSection, TaskEntry
from ftkit.tasks.encoders.section import ElectraSection, MaskingSection

MASKING = RecipeSection("masking", MaskingSection, "Masked-LM settings (mlm, mlm+nsp, electra; mim's mask ratio).")

MLM = TaskEntry("mlm", PRETRAIN, "ftkit.tasks.encoders.mlm", "AutoModelForMaskedLM", ("ForMaskedLM",), "masked_accuracy",
    "masked LM (BERT / RoBERTa)", pipeline_tag="fill-mask", sections=(MASKING,))

# ElectraForPreTraining and ViTMAEForPreTraining also end in mlm+nsp's ForPreTraining: the longer suffix wins (infer)
ELECTRA = TaskEntry("electra", PRETRAIN, "ftkit.tasks.encoders.electra", "AutoModelForPreTraining", ("ElectraForPreTraining",), "replaced_f1",
    "ELECTRA pre-training: a small generator replaces masked tokens, the discriminator finds them in every position",
    sections=(MASKING, RecipeSection("electra", ElectraSection, "ELECTRA settings (task electra).")))

MLM_NSP = TaskEntry("mlm+nsp", PRETRAIN, "ftkit.tasks.encoders.nsp", "AutoModelForPreTraining", ("ForPreTraining",), "masked_accuracy",
    "BERT pre-training: masked LM + next-sentence prediction", pipeline_tag="fill-mask", sections=(MASKING,))
