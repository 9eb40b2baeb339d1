"""The tasks of this package as the registry lists them (mim, image-cls): torch-free, read by the recipe schema, the CLI's help and the
workflows, which pass the entry down to models/ and data/ (see ftkit/task_entry.py)."""

from ftkit.task_entry import FINETUNE, PRETRAIN, RecipeSection, TaskEntry
from ftkit.tasks.encoders.entry import MASKING
from ftkit.tasks.vision.section import ImageSection

IMAGE = RecipeSection("image", ImageSection, "Image settings (tasks image-cls, mim).")

MIM = TaskEntry("mim", PRETRAIN, "ftkit.tasks.vision.mim", "AutoModelForPreTraining", ("MAEForPreTraining", "ForMaskedImageModeling"),
    "loss", "masked-image modelling (MAE: model_type vit_mae; SimMIM: vit): reconstruct masked patches",
    preprocessor="image_processor", more_auto_classes=("AutoModelForMaskedImageModeling",), train_examples=True,
    sections=(IMAGE, MASKING))

IMAGE_CLS = TaskEntry("image-cls", FINETUNE, "ftkit.tasks.vision.classify", "AutoModelForImageClassification", ("ForImageClassification",),
    "accuracy", "image classification (ViT and the other image models of transformers)", None, ("lora",),
    preprocessor="image_processor", peft_head=("classifier",), pipeline_tag="image-classification",
    train_examples=True, sections=(IMAGE,))
