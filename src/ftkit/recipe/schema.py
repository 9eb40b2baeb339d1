"""The recipe schema: the single source of YAML keys, CLI overrides, validation and docs.

Every key a recipe may hold is a field below, with its type, default and a one-line
description. `ftkit recipes docs` renders this module into docs/recipes.md, `--print-config`
prints a recipe with every default filled in, and `key=value` overrides are checked
against these same fields. Unknown keys are errors (extra="forbid").
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

Task = Literal["clm", "mlm", "mlm+nsp", "cls"]
PRETRAIN_TASKS = ("clm", "mlm", "mlm+nsp")
FINETUNE_TASKS = ("cls",)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TokenizerSection(Section):
    path: str = Field(
        description="Tokenizer directory to write (`ftkit tokenize`) and read (`pretrain`), "
        "or a local Hugging Face model directory / hub id to reuse as is.")
    kind: Optional[Literal["bpe", "wordpiece", "unigram", "char"]] = Field(
        None, description="Train a new tokenizer of this kind; leave empty to use `path` as it is.")
    vocab_size: int = Field(8000, gt=0, description="Target vocabulary size (char: the upper bound).")
    min_frequency: int = Field(2, ge=1, description="Minimum count of a merge / word piece.")
    lowercase: bool = Field(False, description="Lower-case (and strip accents for wordpiece) before tokenizing.")
    max_length: Optional[int] = Field(
        None, gt=0, description="model_max_length saved with the tokenizer (default: data.block_size).")
    max_train_bytes: Optional[int] = Field(
        None, gt=0, description="Train the tokenizer on at most this many bytes of the corpus "
        "(tokenizer training memory grows with the corpus).")


class ModelSection(Section):
    model_type: Optional[str] = Field(
        None, description="Build a new model from a Transformers config of this type (gpt2, llama, bert, roberta, ...).")
    from_pretrained: Optional[str] = Field(
        None, description="Start from a local model directory or a hub id instead.")
    config: dict[str, Any] = Field(
        default_factory=dict, description="Config overrides, e.g. {n_layer: 4, n_embd: 256}.")
    trust_remote_code: bool = Field(False, description="Allow code from the model repository to run (off by default).")

    @model_validator(mode="after")
    def _one_source(self) -> "ModelSection":
        if (self.model_type is None) == (self.from_pretrained is None):
            raise ValueError("set exactly one of model.model_type (new model) or model.from_pretrained (existing model)")
        return self


DataFiles = Union[str, list[str]]


class DataSection(Section):
    train: DataFiles = Field(description="Training data: a file, a glob, a list of files, or a hub dataset id.")
    validation: Optional[DataFiles] = Field(None, description="Validation data (same forms as train).")
    validation_split: float = Field(
        0.0, ge=0.0, lt=1.0, description="Fraction of train held out for validation when no validation data is given.")
    split_mode: Literal["random", "tail"] = Field(
        "random", description="How validation_split holds data out: a seeded random sample of rows, or the tail (language models: the last fraction of the token stream, as nanoGPT).")
    format: Literal["auto", "text", "csv", "tsv", "json", "parquet"] = Field(
        "auto", description="File format; auto picks it from the file extension (.txt and unknown: text).")
    sample_by: Literal["line", "paragraph", "document"] = Field(
        "line", description="For text files: one example per line, per blank-line-separated paragraph, or per file.")
    text_column: str = Field("text", description="Column holding the text.")
    text_pair_column: Optional[str] = Field(None, description="Column with the second text of a pair (cls).")
    label_column: str = Field("label", description="Column holding the label (cls).")
    column_names: Optional[list[str]] = Field(None, description="Column names for csv/tsv files without a header row.")
    hub_config: Optional[str] = Field(None, description="Configuration name of a hub dataset (e.g. wikitext-2-raw-v1).")
    streaming: bool = Field(False, description="Stream the training data instead of tokenizing it all up front (needs train.max_steps or train.max_tokens).")
    shuffle_buffer: int = Field(10_000, gt=0, description="Shuffle buffer, in examples, when streaming.")
    block_size: int = Field(256, gt=0, description="Tokens per packed training sequence (clm, mlm) or the length cap (mlm+nsp, cls).")
    add_eos: bool = Field(True, description="Append the tokenizer's end-of-text token after each example before packing (clm).")
    cache_dir: str = Field(".ftkit_cache", description="Where tokenized, packed corpora are cached (keyed by tokenizer, data and settings).")


class MaskingSection(Section):
    probability: float = Field(0.15, gt=0.0, lt=1.0, description="Share of tokens selected for masked-LM prediction.")
    whole_word: bool = Field(False, description="Select whole words: all pieces of a word are masked together.")
    eval_seed: int = Field(1234, description="Masking seed for evaluation, so two evaluations of one model agree.")


class TrainSection(Section):
    seed: int = Field(42, description="Seed for initialisation, data order and dropout.")
    max_steps: Optional[int] = Field(None, gt=0, description="Stop after this many optimizer steps.")
    max_tokens: Optional[int] = Field(None, gt=0, description="Stop after this many training tokens (whichever budget ends first).")
    epochs: float = Field(1.0, gt=0, description="Passes over the training data when no step/token budget is set.")
    batch_size: int = Field(8, gt=0, description="Sequences per micro-batch per process.")
    grad_accum: int = Field(1, gt=0, description="Micro-batches accumulated per optimizer step.")
    lr: float = Field(3e-4, gt=0, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay (never applied to biases and norms).")
    betas: tuple[float, float] = Field((0.9, 0.95), description="AdamW betas.")
    schedule: Literal["cosine", "linear", "constant"] = Field("cosine", description="Decay after warmup.")
    warmup_steps: int = Field(0, ge=0, description="Linear warmup steps.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Cosine floor as a fraction of lr.")
    grad_clip: Optional[float] = Field(1.0, gt=0, description="Clip the gradient norm to this value (empty: no clipping).")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="auto: bf16 autocast where the CPU/GPU supports it, else fp32.")
    dropout: Optional[float] = Field(None, ge=0, lt=1, description="Override every dropout probability of the model config.")
    eval_every: int = Field(500, ge=0, description="Evaluate every N optimizer steps (0: only at the end).")
    eval_batches: Optional[int] = Field(None, gt=0, description="Evaluate on at most N batches (default: the whole validation set).")
    eval_batch_size: Optional[int] = Field(None, gt=0, description="Batch size for evaluation (default: batch_size).")
    save_every: int = Field(0, ge=0, description="Write a resumable checkpoint every N steps (0: at each evaluation).")
    keep_checkpoints: int = Field(2, gt=0, description="Resumable checkpoints kept (oldest deleted first).")
    log_every: int = Field(10, gt=0, description="Log loss, learning rate and tokens/s every N steps.")
    metric_for_best: Optional[str] = Field(None, description="Validation metric that picks the best model (default: loss).")
    early_stopping_patience: Optional[int] = Field(None, gt=0, description="Stop after this many evaluations without improvement.")
    threads: Optional[int] = Field(None, gt=0, description="torch threads per process (default: torch's choice).")


class Recipe(Section):
    name: Optional[str] = Field(None, description="A name for the run (default: the recipe file's stem).")
    task: Task = Field("clm", description="clm (GPT), mlm (BERT/RoBERTa masked LM), mlm+nsp (BERT pre-training), cls (classification).")
    output_dir: str = Field(description="Run directory: checkpoints, metrics and the final save_pretrained model.")
    tokenizer: Optional[TokenizerSection] = Field(None, description="Tokenizer to train or reuse (default: the model's own).")
    model: ModelSection
    data: DataSection
    masking: MaskingSection = Field(default_factory=MaskingSection, description="Masked-LM settings (mlm, mlm+nsp).")
    train: TrainSection = Field(default_factory=TrainSection)

    @model_validator(mode="after")
    def _checks(self) -> "Recipe":
        if self.data.streaming and self.train.max_steps is None and self.train.max_tokens is None:
            raise ValueError("data.streaming needs a budget: set train.max_steps or train.max_tokens")
        if self.tokenizer is None and self.model.from_pretrained is None:
            raise ValueError("a new model (model.model_type) needs a tokenizer section")
        return self
