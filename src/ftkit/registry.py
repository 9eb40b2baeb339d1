"""The task registry: every task ftkit knows, one entry each. Nothing else lists task names.

An entry holds what the rest of ftkit may read without loading the task's code (the recipe schema,
`ftkit recipes`, the CLI's help all run before torch is imported): the name, the family (`ftkit pretrain`
or `ftkit finetune`), the Auto class and peft task type of its models, the architectures that mark a saved
model as this task's, its headline metric, what preprocessor it saves, which adapters it supports.
Its behaviour (the Task the engine trains, how its data and model are built, how it is evaluated and
reported) lives in `module` (a `tasks/<name>.py` exporting `SPEC`, see tasks/spec.py), loaded on first
use by `spec(name)`.

Adding a task: write tasks/<name>.py (Task + SPEC), its data builder under data/, a recipe and tests, and
add one entry below.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Optional

from ftkit.errors import UserError

PRETRAIN, FINETUNE = "pretrain", "finetune"


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

    @property
    def images(self) -> bool:
        """Its inputs are images (data read by tasks/vision/images.py, an image processor saved with the model)."""
        return self.preprocessor == "image_processor"


TASKS: tuple[TaskEntry, ...] = (
    TaskEntry("clm", PRETRAIN, "ftkit.tasks.lm.clm", "AutoModelForCausalLM", ("ForCausalLM", "LMHeadModel"), "perplexity",
              "causal LM (GPT): next-token prediction", "CAUSAL_LM", ("lora", "prefix", "prompt"), compress=True, pipeline_tag="text-generation",
              decoder_only=True, generates=True),
    TaskEntry("mlm", PRETRAIN, "ftkit.tasks.encoders.mlm", "AutoModelForMaskedLM", ("ForMaskedLM",), "masked_accuracy",
              "masked LM (BERT / RoBERTa)", pipeline_tag="fill-mask"),
    # ElectraForPreTraining and ViTMAEForPreTraining also end in mlm+nsp's ForPreTraining: the longer suffix wins (infer)
    TaskEntry("electra", PRETRAIN, "ftkit.tasks.encoders.electra", "AutoModelForPreTraining", ("ElectraForPreTraining",), "replaced_f1",
              "ELECTRA pre-training: a small generator replaces masked tokens, the discriminator finds them in every position"),
    TaskEntry("mim", PRETRAIN, "ftkit.tasks.vision.mim", "AutoModelForPreTraining", ("MAEForPreTraining", "ForMaskedImageModeling"),
              "loss", "masked-image modelling (MAE: model_type vit_mae; SimMIM: vit): reconstruct masked patches",
              preprocessor="image_processor", more_auto_classes=("AutoModelForMaskedImageModeling",), train_examples=True),
    TaskEntry("mlm+nsp", PRETRAIN, "ftkit.tasks.encoders.nsp", "AutoModelForPreTraining", ("ForPreTraining",), "masked_accuracy",
              "BERT pre-training: masked LM + next-sentence prediction", pipeline_tag="fill-mask"),
    TaskEntry("cls", FINETUNE, "ftkit.tasks.cls", "AutoModelForSequenceClassification", ("ForSequenceClassification",),
              "accuracy", "text / text-pair classification", "SEQ_CLS", ("lora", "prefix", "prompt"), compress=True, pipeline_tag="text-classification",
              train_examples=True),
    TaskEntry("ner", FINETUNE, "ftkit.tasks.ner", "AutoModelForTokenClassification", ("ForTokenClassification",), "f1",
              "token classification (named entities)", "TOKEN_CLS", ("lora",), pipeline_tag="token-classification"),
    TaskEntry("sft", FINETUNE, "ftkit.tasks.sft", "AutoModelForCausalLM", ("ForCausalLM",), "loss",
              "instruction / chat fine-tuning of a causal LM (loss on the assistant turns)", "CAUSAL_LM", ("lora",),
              example_formats=("messages", "prompt_completion", "alpaca", "template"), pipeline_tag="text-generation",
              decoder_only=True, generates=True),
    TaskEntry("image-cls", FINETUNE, "ftkit.tasks.vision.classify", "AutoModelForImageClassification", ("ForImageClassification",),
              "accuracy", "image classification (ViT and the other image models of transformers)", None, ("lora",),
              preprocessor="image_processor", peft_head=("classifier",), pipeline_tag="image-classification",
              train_examples=True),
    # pipeline_tag: hub metadata only; transformers 5 has no question-answering pipeline (models/card.py writes the code)
    TaskEntry("qa", FINETUNE, "ftkit.tasks.qa", "AutoModelForQuestionAnswering", ("ForQuestionAnswering",), "f1",
              "extractive question answering (SQuAD): the answer span in a context", "QUESTION_ANS", ("lora",),
              peft_head=("qa_outputs",), pipeline_tag="question-answering"),
    TaskEntry("dpo", FINETUNE, "ftkit.tasks.preference", "AutoModelForCausalLM", ("ForCausalLM",), "rewards/accuracies",
              "preference tuning of a chat model on chosen / rejected pairs (DPO, IPO, SimPO, ORPO)", "CAUSAL_LM",
              ("lora", "prefix", "prompt"), pipeline_tag="text-generation", decoder_only=True, generates=True),
    # pipeline_tag: hub metadata only; transformers 5 removed the translation / summarization pipelines (card.py writes the code)
    TaskEntry("seq2seq", FINETUNE, "ftkit.tasks.seq2seq", "AutoModelForSeq2SeqLM",
              ("ForConditionalGeneration", "MTModel", "EncoderDecoderModel"), "bleu",
              "sequence-to-sequence (translation, summarization) with an encoder-decoder (T5, BART, Marian, warm-started BERT2BERT)",
              "SEQ_2_SEQ_LM", ("lora",), pipeline_tag="text2text-generation", encoder_decoder=True, generates=True),
    # any encoder-decoder's ...ForConditionalGeneration: seq2seq, placed before this one, wins the tie
    TaskEntry("span-corruption", PRETRAIN, "ftkit.tasks.seq2seq.span_corruption", "AutoModelForSeq2SeqLM",
              ("ForConditionalGeneration",), "loss",
              "T5's span corruption: spans of the text replaced by sentinel tokens, the decoder writes them back",
              encoder_decoder=True),
)
NAMES: tuple[str, ...] = tuple(t.name for t in TASKS)
EXAMPLE_FORMATS: tuple[str, ...] = tuple(dict.fromkeys(f for t in TASKS for f in t.example_formats))
_BY_NAME = {t.name: t for t in TASKS}


def names(family: Optional[str] = None) -> tuple[str, ...]:
    return tuple(t.name for t in TASKS if family is None or t.family == family)


def entry(name: str) -> TaskEntry:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UserError(f"task: '{name}' is not a task of ftkit; expected one of {', '.join(NAMES)}") from None


def spec(name: str):
    """The task's behaviour (tasks/spec.TaskSpec), imported on first use: a plugin table, so that reading a
    recipe never imports torch."""
    return importlib.import_module(entry(name).module).SPEC


def candidates(architectures) -> tuple[str, ...]:
    """Every task whose models have one of these architectures, the most specific suffix first (ElectraForPreTraining
    is electra's before it is mlm+nsp's ForPreTraining), ties in registry order: clm and sft share ForCausalLM."""
    found: dict[str, int] = {}
    for arch in architectures or []:
        for t in TASKS:
            length = max((len(s) for s in t.architectures if arch.endswith(s)), default=0)
            if length:
                found[t.name] = max(found.get(t.name, 0), length)
    order = {n: i for i, n in enumerate(NAMES)}
    return tuple(sorted(found, key=lambda n: (-found[n], order[n])))


def infer(architectures, trained_as: Optional[str] = None) -> Optional[str]:
    """The task of a saved model: `trained_as` (the task of the recipe it was trained with) when its architecture
    fits it (an sft model is sft, though a GPT has the same architecture), else the most specific match of its
    config's `architectures` (e.g. BertForTokenClassification -> ner)."""
    found = candidates(architectures)
    if trained_as is not None and trained_as in found:
        return trained_as
    return found[0] if found else None
