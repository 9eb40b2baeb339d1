"""What a task is, as the rest of ftkit may read it without loading the task's code: its `TaskEntry`.

Each family package declares its entries (and its recipe sections) in a torch-free `tasks/<family>/entry.py`; the registry lists those modules
(the one list of tasks), the workflows resolve a recipe's `task:` (or a saved model's architecture) to an entry once
and pass the entry down: models/, data/ and the families read its fields and never look a task up by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

PRETRAIN, FINETUNE = "pretrain", "finetune"


@dataclass(frozen=True)
class RecipeSection:
    """A family's own recipe section: the `key:` of a recipe, read into `model` (a torch-free pydantic model the
    package declares). recipe/schema.py adds one field per section the entries name, so a new family edits no schema."""
    key: str
    model: type  # a pydantic model (recipe/fields.Section)
    help: str
    moved_data_keys: tuple[str, ...] = ()  # keys that lived in `data:` before the section (still read there, with a note)


@dataclass(frozen=True)
class TaskEntry:
    name: str
    family: str  # PRETRAIN (`ftkit pretrain`, pre-training defaults) or FINETUNE (`ftkit finetune`, HF fine-tuning defaults)
    module: str  # exports SPEC (tasks/spec.TaskSpec)
    auto_class: str  # transformers Auto class of its models
    architectures: tuple[str, ...]  # class-name suffixes of saved models of this task (the longest match wins: infer)
    headline: str  # the metric that stands for the model (compress reports, `ftkit runs`)
    help: str
    peft_task_type: Optional[str] = None  # peft TaskType; None: no adapters
    adapters: tuple[str, ...] = ()  # finetune.strategy values beyond full / freeze
    preprocessor: Optional[str] = "tokenizer"  # what is saved next to the model: tokenizer, image_processor or None
    compress: bool = False  # `ftkit compress` quantize / prune / distill apply (its Task gives logits_and_targets)
    example_formats: tuple[str, ...] = ()  # data.format values naming a layout of examples (files then go by extension)
    more_auto_classes: tuple[str, ...] = ()  # other Auto classes of its models, picked by model type (mim: SimMIM)
    peft_head: tuple[str, ...] = ()  # modules an adapter trains in full (a new head peft does not know as one)
    pipeline_tag: Optional[str] = None  # transformers pipeline of its models (model card metadata, the usage snippet)
    train_examples: bool = False  # its data builder takes data.train_examples (a seeded sample of the training set)
    # What its models are, each asked where it matters (one `causal` flag meant all three before):
    decoder_only: bool = False  # a decoder-only LM (GPT-style special tokens; a GGUF file can start it; LoRA base in bf16)
    encoder_decoder: bool = False  # an encoder-decoder (seq2seq) model
    generates: bool = False  # its models write text: `ftkit generate`, `chat`, `eval --generate`
    sections: tuple[RecipeSection, ...] = ()  # the recipe sections of its family (every recipe has them all, defaulted)

    @property
    def images(self) -> bool:
        """Its inputs are images (data read by tasks/vision/images.py, an image processor saved with the model)."""
        return self.preprocessor == "image_processor"

    def fits(self, architectures) -> bool:
        """Whether a config's `architectures` name a model of this task (a suffix of any of them is one of ours)."""
        return any(arch.endswith(s) for arch in architectures or [] for s in self.architectures)
