"""The recipe schema: the single source of YAML keys, CLI overrides, validation and docs.

Every key a recipe may hold is a field below, with its type, default and a one-line
description. `ftkit recipes docs` renders this module into docs/recipes.md, `--print-config`
prints a recipe with every default filled in, and `key=value` overrides are checked
against these same fields. Unknown keys are errors (extra="forbid").
"""

from __future__ import annotations

import sys
from typing import Any, Literal, Optional, Union

from pydantic import Field, create_model, field_validator, model_validator

from ftkit import registry
from ftkit.paths import is_local
from ftkit.recipe.distill_section import DistillSection
from ftkit.recipe.fields import DELIMITER_HELP, DataFile, DataFiles, Section, check_delimiter  # noqa: F401 (re-exported)
from ftkit.task_entry import RecipeSection

Task = Literal[registry.NAMES]  # type: ignore[valid-type]  (the registry's names: one place lists tasks)


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
    extra_ids: int = Field(0, ge=0, description="T5's sentinel tokens <extra_id_0> .. <extra_id_{N-1}> added as special "
                           "tokens on top of the trained vocabulary (<extra_id_0> highest, as T5's): span-corruption "
                           "pre-training replaces each dropped span by one (T5: 100). The model's vocabulary follows the tokenizer.")


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


class DataSection(Section):
    train: DataFiles = Field(
        description="Training data: a file, a glob, a list of files, or a hub dataset id. List entries may be "
        "{path, format, text_column, column_names, delimiter, rows} mappings; files of different formats are loaded one by one "
        "and concatenated (columns kept: those all of them share); rows: N keeps the first N records of an entry.")
    validation: Optional[DataFiles] = Field(None, description="Validation data (same forms as train).")
    validation_split: float = Field(
        0.0, ge=0.0, lt=1.0, description="Fraction of train held out for validation when no validation data is given.")
    split_mode: Literal["random", "tail"] = Field(
        "random", description="How validation_split holds data out: a seeded random sample of rows, or the tail (language models: the last fraction of the token stream, as nanoGPT).")
    format: Literal["auto", "text", "csv", "tsv", "json", "parquet", "label_text", "conll",
                    "messages", "prompt_completion", "alpaca", "template"] = Field(
        "auto", description="File format; auto picks it from the file extension (.txt and unknown: text; ner: "
        ".json/.jsonl/.parquet are tables, anything else conll). sft: the layout of the examples instead (files by their "
        "extension): messages (a column of [{role, content}, ...]), prompt_completion (two columns, strings or message "
        "lists), alpaca (instruction / input / output), template (sft.prompt_template / response_template over any "
        "columns); auto: template when sft.prompt_template is set, else from the columns. "
        "conll (ner): one token per line with its tag in "
        "columns, blank or whitespace-only lines between sentences, -DOCSTART- lines skipped. "
        "label_text: one example per line, the label then a space then the text (SST-2's stsa.binary.*, TREC, "
        "fastText files); columns label and text, or the two data.column_names.")
    train_examples: Optional[int] = Field(
        None, gt=0, description="Train on a seeded sample of N training examples, classes in proportion (few-label "
        f"experiments; {', '.join(t.name for t in registry.TASKS if t.train_examples)}); the validation data stays whole.")
    sample_by: Literal["line", "paragraph", "document"] = Field(
        "line", description="For text files: one example per line, per blank-line-separated paragraph, or per file.")
    text_column: str = Field("text", description="Column holding the text.")
    text_pair_column: Optional[str] = Field(None, description="Column with the second text of a pair (cls).")
    label_column: str = Field("label", description="Column holding the label (cls).")
    label_map: dict[Union[int, str], str] = Field(
        default_factory=dict, description="Rename raw label values before they become class names (cls), e.g. "
        "{0: negative, 1: positive}, or AG News' class numbers {1: World, ...}; values not listed keep their own name.")
    column_names: Optional[list[str]] = Field(None, description="Column names for csv/tsv files without a header row.")
    header: Literal["auto", "true", "false"] = Field(
        "auto", description="csv/tsv: does the first row hold column names? auto: yes unless data.column_names is set; "
        "true with column_names: the header row is skipped and the columns renamed.")
    delimiter: Optional[str] = Field(None, description=DELIMITER_HELP)
    encoding: str = Field("utf-8", description="Text encoding of the data files (e.g. latin-1 for TREC); files are "
                          "checked with it before anything is read.")
    label_regex: Optional[str] = Field(None, description="cls: a regular expression applied to each raw label; its first "
                                       "group (or whole match) becomes the class, e.g. '^([^:]+)' keeps TREC's coarse "
                                       "class of 'LOC:city'. Applied before data.label_map.")
    hub_config: Optional[str] = Field(None, description="Configuration name of a hub dataset (e.g. wikitext-2-raw-v1).")
    streaming: bool = Field(False, description="Stream the training data instead of tokenizing it all up front (needs train.max_steps or train.max_tokens).")
    shuffle_buffer: int = Field(10_000, gt=0, description="Shuffle buffer, in examples, when streaming.")
    block_size: int = Field(256, gt=0, description="Tokens per packed training sequence (clm, mlm) or the length cap (mlm+nsp, cls; ner: longer sentences are cut into windows of whole words, every word scored).")
    add_eos: Optional[bool] = Field(None, description="Append the tokenizer's end-of-text token (encoders without one: the separator) after each example before packing (clm, mlm). "
                                    "Default: yes where an example is a document (table rows, hub rows, text by paragraph or document), "
                                    "no for plain-text files read line by line (a line break is not the end of a text).")
    cache_dir: str = Field(".ftkit_cache", description="Where tokenized, packed corpora are cached (keyed by tokenizer, data and settings).")

    _delimiter = field_validator("delimiter")(check_delimiter)


class TrainSection(Section):
    seed: int = Field(42, description="Seed for initialisation, data order and dropout.")
    max_steps: Optional[int] = Field(None, gt=0, description="Stop after this many optimizer steps.")
    max_tokens: Optional[int] = Field(None, gt=0, description="Stop after this many training tokens (whichever budget ends first).")
    epochs: float = Field(1.0, gt=0, description="Passes over the training data when no step/token budget is set.")
    batch_size: int = Field(8, gt=0, description="Sequences per micro-batch per process.")
    grad_accum: int = Field(1, gt=0, description="Micro-batches accumulated per optimizer step.")
    lr: float = Field(3e-4, gt=0, description="Peak learning rate (AdamW). Default per family: pre-training "
                      f"({', '.join(registry.names(registry.PRETRAIN))}) 3e-4; fine-tuning "
                      f"({', '.join(registry.names(registry.FINETUNE))}) 5e-5, as transformers' Trainer.")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay (never applied to biases and norms). "
                                "Default: pre-training 0.1, fine-tuning 0.01.")
    betas: tuple[float, float] = Field((0.9, 0.95), description="AdamW betas. Default: pre-training (0.9, 0.95), "
                                       "fine-tuning (0.9, 0.999).")
    schedule: Literal["cosine", "linear", "constant", "wsd"] = Field(
        "cosine", description="Decay after warmup. wsd (warmup-stable-decay): constant lr, then a linear decay over the "
        "last train.decay_fraction of the steps (short runs: the lr stays high while the model still has most to learn).")
    warmup_steps: int = Field(0, ge=0, description="Linear warmup steps.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Warmup as a share of all steps (the larger of this and "
                                "warmup_steps counts). Default: fine-tuning 0.1 when neither is set, else 0.")
    decay_fraction: float = Field(0.2, gt=0, le=1, description="wsd: share of all steps spent in the final decay.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Floor of the cosine and wsd decays as a fraction of lr.")
    grad_clip: Optional[float] = Field(1.0, gt=0, description="Clip the gradient norm to this value (empty: no clipping).")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="auto: bf16 autocast where the CPU/GPU supports it, else fp32.")
    dropout: Optional[float] = Field(None, ge=0, lt=1, description="Override every dropout probability of the model config.")
    eval_every: int = Field(500, ge=0, description="Evaluate every N optimizer steps (0: only at the end).")
    eval_every_epoch: bool = Field(False, description="Also evaluate (and checkpoint, unless save_every is set) at the end of each epoch; with eval_every: 0, once per epoch only.")
    eval_batches: Optional[int] = Field(None, gt=0, description="Evaluate on at most N batches (default: the whole validation set).")
    eval_batch_size: Optional[int] = Field(None, gt=0, description="Batch size for evaluation (default: batch_size).")
    save_every: int = Field(0, ge=0, description="Write a resumable checkpoint every N steps (0: at each evaluation).")
    keep_checkpoints: int = Field(2, ge=0, description="Resumable checkpoints kept while training (oldest deleted first); "
                                  "0: none are written (a stopped run cannot be resumed).")
    keep_checkpoints_at_end: int = Field(1, ge=0, description="Checkpoints kept once the run has finished (each holds "
                                         "model, optimizer and RNG states: ~4x the model; with a frozen base (lora, prefix, prompt, freeze) only the trained "
                                         "weights and their optimizer state, the base is reloaded on --resume). 1: the last, enough to continue "
                                         "the run with a larger budget (--resume); 0: only the final model.")
    log_every: int = Field(10, gt=0, description="Log loss, learning rate and tokens/s every N steps (train_log.jsonl).")
    plots: bool = Field(True, description="Draw output_dir/training_curves.png at each evaluation (skipped while "
                        "drawing has taken over 1 % of the run's time) and at the end "
                        "(train loss raw and smoothed, each validation metric, the best step, the learning rate; needs "
                        "matplotlib: extra plots).")
    report_to: Optional[list[str]] = Field(
        None, description="Experiment trackers, through accelerate: tensorboard, wandb, mlflow, comet_ml, aim, "
        "clearml, dvclive, swanlab, trackio ([] for none; default: tensorboard when installed). Hyper-parameters "
        "(the recipe) logged once, metrics at each log step; local files under output_dir/logs/ (W&B: set "
        "WANDB_MODE=offline to log without an account; MLflow: MLFLOW_TRACKING_URI). Extras: logging, wandb, mlflow.")
    metric_for_best: Optional[str] = Field(None, description="Validation metric that picks the best model (default: the task's first: loss for language models, accuracy for cls; cls also has f1 (macro), mcc, binary_f1, loss).")
    early_stopping_patience: Optional[int] = Field(None, gt=0, description="Stop after this many evaluations without improvement.")
    threads: Optional[int] = Field(None, gt=0, description="torch threads per process (default: torch's choice).")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass instead of "
                                         "keeping them: less memory, ~30% more time.")
    fast_paths: bool = Field(True, description="On CPU: faster dropout masks, math attention for dropout and short "
                             "sequences, fused tanh GELU (the same functions; models/fast_paths.py). false: transformers' "
                             "own modules.")
    compile: bool = Field(False, description="torch.compile each transformer block (regional compilation; the first "
                          "steps include compiling). Pays on GPUs; slower on small CPUs (measured on 2 cores).")
    skip_nonfinite: int = Field(0, ge=0, description="Skip up to N optimizer steps whose loss is NaN/inf (counted in metrics.json) before stopping the run.")


class FinetuneSection(Section):
    """How much of a pre-trained model trains (`ftkit finetune` tasks; a causal LM via `ftkit pretrain` with
    model.from_pretrained). Which adapters a task takes is its registry entry's `adapters`."""
    strategy: Literal["full", "freeze", "lora", "prefix", "prompt"] = Field(
        "full", description="full: every weight trains; freeze: freeze_embeddings / freeze_layers stay fixed; "
        "lora, prefix, prompt: a peft adapter trains on a frozen model (saved in PEFT format: adapter_config.json + "
        "adapter_model.safetensors; cls keeps its head trainable through modules_to_save).")
    freeze_embeddings: bool = Field(False, description="freeze: keep the embedding layers (token, position, segment) fixed.")
    freeze_layers: int = Field(0, ge=0, description="freeze: keep the bottom N transformer layers fixed.")
    lora_r: int = Field(8, gt=0, description="lora: rank of the update matrices.")
    lora_alpha: float = Field(16.0, gt=0, description="lora: scaling; the update is (lora_alpha / lora_r) * B A.")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="lora: dropout on the adapter's input.")
    target_modules: Optional[list[str]] = Field(
        None, description="lora: names of the modules to adapt, e.g. [query, value] (BERT), [c_attn] (GPT-2) "
        "(default: peft's choice for the architecture).")
    num_virtual_tokens: int = Field(20, gt=0, description="prefix, prompt: learned virtual tokens (per layer for prefix).")


_TEXT_EXTENSIONS = (".txt", ".raw", ".text")
_TABLE_EXTENSIONS = (".csv", ".tsv", ".json", ".jsonl", ".parquet")


def _line_text(data: "DataSection") -> bool:
    """Is every training source a plain-text file read one example per line? (Decided from names: a table
    extension, or a missing path that reads as a hub id, means rows of documents; as data/sources.py reads them.)"""
    if data.sample_by != "line":
        return False
    for e in [data.train] if isinstance(data.train, str) else data.train:
        path, fmt = (e, None) if isinstance(e, str) else (e.path, e.format)
        fmt = fmt or (data.format if data.format != "auto" else None)
        if fmt is not None and fmt != "text":
            return False
        if fmt is None and (path.lower().endswith(_TABLE_EXTENSIONS)
                            or (not path.lower().endswith(_TEXT_EXTENSIONS) and not is_local(path))):
            return False
    return True


def _strategies() -> str:
    adapters = {a: [t.name for t in registry.TASKS if a in t.adapters] for t in registry.TASKS for a in t.adapters}
    return ("Fine-tuning strategy: full and freeze; the peft adapters and the tasks that take them: "
            + "; ".join(f"{a} ({', '.join(tasks)})" for a, tasks in adapters.items()) + ".")


_STRATEGIES = _strategies()  # from the registry: the task lists cannot go stale


def _family_sections() -> dict[str, RecipeSection]:
    """The recipe sections the task entries declare (tasks/<family>/entry.py), one per key: a family's own keys live
    in its package, and adding a family adds its section here without an edit."""
    found: dict[str, RecipeSection] = {}
    for task in registry.TASKS:
        for section in task.sections:
            if found.setdefault(section.key, section) is not section:
                raise RuntimeError(f"recipe section {section.key}: declared twice, by {task.name} and another task")
    return found


FAMILY_SECTIONS = _family_sections()


class _Recipe(Section):
    """The sections every run has; `Recipe` below adds the families' own."""
    name: Optional[str] = Field(None, description="A name for the run (default: the recipe file's stem).")
    task: Task = Field("clm", description="; ".join(f"{t.name}: {t.help}" for t in registry.TASKS) + ".")
    output_dir: str = Field(description="Run directory: checkpoints, metrics and the final save_pretrained model.")
    tokenizer: Optional[TokenizerSection] = Field(None, description="Tokenizer to train or reuse (default: the model's own).")
    model: ModelSection
    data: DataSection
    train: TrainSection = Field(default_factory=TrainSection)
    finetune: FinetuneSection = Field(default_factory=FinetuneSection, description=_STRATEGIES)
    distill: DistillSection = Field(default_factory=DistillSection, description="Knowledge distillation settings (`ftkit compress distill`).")

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, raw: Any) -> Any:
        """Keys that moved from `data:` to their family's section still work where they were (with a note)."""
        if isinstance(raw, dict):
            for section in FAMILY_SECTIONS.values():
                if section.moved_data_keys:
                    moved_to_section(raw, section.key, section.moved_data_keys)
        return raw

    @model_validator(mode="after")
    def _family_defaults(self) -> "_Recipe":
        """Fine-tuning starts from trained weights: HF's fine-tuning defaults, not pre-training's (keys the
        recipe sets are kept). Filled in here, so --print-config and the saved recipe.yaml show them."""
        if self.data.add_eos is None:
            object.__setattr__(self.data, "add_eos", not _line_text(self.data))
        if self.task == "mim" and "probability" not in self.masking.model_fields_set:
            object.__setattr__(self.masking, "probability", 0.75)  # MAE's mask ratio
        if registry.entry(self.task).family == registry.FINETUNE:
            given = self.train.model_fields_set
            defaults = {"lr": 5e-5, "weight_decay": 0.01, "betas": (0.9, 0.999)}
            if not {"warmup_steps", "warmup_ratio"} & given:
                defaults["warmup_ratio"] = 0.1
            for key, value in defaults.items():
                if key not in given:
                    object.__setattr__(self.train, key, value)  # no validate_assignment: it would mark them as set
        return self

    @model_validator(mode="after")
    def _checks(self) -> "_Recipe":
        if self.data.label_regex is not None:
            import re

            try:
                re.compile(self.data.label_regex)
            except re.error as e:
                raise ValueError(f"data.label_regex: {e}") from None
        import codecs

        try:
            codecs.lookup(self.data.encoding)
        except LookupError:
            raise ValueError(f"data.encoding: unknown encoding '{self.data.encoding}' (e.g. utf-8, latin-1, cp1252)") from None
        if self.data.streaming and self.train.max_steps is None and self.train.max_tokens is None:
            raise ValueError("data.streaming needs a budget: set train.max_steps or train.max_tokens")
        _check_sft(self)
        task = registry.entry(self.task)
        if self.data.train_examples is not None and not task.train_examples:
            takers = ", ".join(t.name for t in registry.TASKS if t.train_examples)
            raise ValueError(f"data.train_examples is for tasks {takers}, not {self.task}")
        if self.tokenizer is None and self.model.from_pretrained is None and task.preprocessor == "tokenizer":
            raise ValueError("a new model (model.model_type) needs a tokenizer section")
        if self.finetune.strategy in ("lora", "prefix", "prompt"):
            allowed = [t.name for t in registry.TASKS if self.finetune.strategy in t.adapters]
            if self.task not in allowed:
                raise ValueError(f"finetune.strategy {self.finetune.strategy} is for tasks {', '.join(allowed)}, not {self.task}")
            if self.model.from_pretrained is None:  # an adapter over random weights could never be loaded again
                raise ValueError(f"finetune.strategy {self.finetune.strategy} needs model.from_pretrained (a pre-trained model to adapt)")
        return self


# The families' sections as fields (each with its own defaults, so every recipe has them all; docs/recipes.md and
# --print-config list them after the shared ones, in registry order).
Recipe = create_model("Recipe", __base__=_Recipe, __module__=__name__,
                      **{key: (section.model, Field(default_factory=section.model, description=section.help))
                         for key, section in FAMILY_SECTIONS.items()})


_NOTED: set[str] = set()  # moved keys already noted in this process


def forget_moved_key_notes() -> None:
    """Forget which moved keys were noted (tests)."""
    _NOTED.clear()


def moved_to_section(raw: dict, section: str, keys: tuple) -> None:
    """Move `data.<key>` (the old place) to `<section>.<key>` in a raw recipe, once per key and process a note on
    stderr (never stdout: `ftkit predict` answers there). A key set in both places is an error: which one was meant?"""
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for key in [k for k in keys if k in data]:
        target = raw.setdefault(section, {})
        if not isinstance(target, dict):
            return  # the schema names the wrong type of `section`
        if key in target:
            raise ValueError(f"data.{key} and {section}.{key} are both set; keep {section}.{key} (data.{key} is its old name)")
        target[key] = data.pop(key)
        if key not in _NOTED:
            _NOTED.add(key)
            print(f"note: recipe key data.{key} is now {section}.{key} (read as such; write {section}.{key})", file=sys.stderr)


def _check_sft(recipe: "Recipe") -> None:
    data, layouts = recipe.data, registry.entry(recipe.task).example_formats
    if not layouts:
        if data.format in registry.EXAMPLE_FORMATS:
            owners = [t.name for t in registry.TASKS if data.format in t.example_formats]
            raise ValueError(f"data.format {data.format} is a layout of examples for task {', '.join(owners)}, not {recipe.task}")
        return
    if data.format not in ("auto", *layouts):
        raise ValueError(f"data.format: task {recipe.task} reads its files by extension; data.format names the layout of "
                         f"the examples: auto, {', '.join(layouts)} (not {data.format})")
    sft = recipe.sft
    if (data.format == "template" or sft.prompt_template) and not (sft.prompt_template and sft.response_template):
        raise ValueError("data.format template needs both sft.prompt_template and sft.response_template")
    if recipe.sft.answer_pattern is not None:
        import re

        try:
            re.compile(recipe.sft.answer_pattern)
        except re.error as e:
            raise ValueError(f"sft.answer_pattern: {e}") from None
