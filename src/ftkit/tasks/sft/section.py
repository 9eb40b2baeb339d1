"""The chat fine-tuning recipe section `sft:` (torch-free): which tokens train, the chat template, the layout of the
examples, packing, and the generation evaluation's settings."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from ftkit.recipe.fields import DataFiles, Section


class SftSection(Section):
    """Instruction / chat fine-tuning of a causal LM (task sft)."""
    train_on: Literal["assistant", "all"] = Field(
        "assistant", description="Which tokens train: the assistant turns (each with the end-of-turn token that ends "
        "it), or every token.")
    chat_template: Optional[str] = Field(
        None, description="The chat template when the tokenizer has none (base models): chatml, or a Jinja template "
        "string. Default: the tokenizer's own (what inference uses).")
    eval_data: Optional[DataFiles] = Field(
        None, description="Generation evaluation (`ftkit eval --generate` without --data): a file read with the data "
        "settings (entries may give their own column_names). Default: the validation data.")
    eval_rows: Optional[int] = Field(None, gt=0, description="Generation evaluation: the first N rows of it only.")
    answer_pattern: Optional[str] = Field(
        None, description="Generation evaluation: a regular expression whose first group (or whole match) is the answer, "
        "in the reply and in the reference (GSM8K: '#### (-?[\\d,]+)'); default: the first non-empty line.")
    answer_remove: str = Field("", description="Characters removed from both answers before comparing (GSM8K: ',').")
    max_new_tokens: int = Field(64, gt=0, description="Generation evaluation: tokens generated per prompt at most (greedy).")
    # the layout of the examples (data.* keys before sft had its section: MOVED_DATA_KEYS still read there)
    messages_column: str = Field("messages", description="Format messages: column with the list of {role, content} messages.")
    prompt_column: str = Field("prompt", description="Format prompt_completion: column with the prompt (a string or messages).")
    completion_column: str = Field("completion", description="Format prompt_completion: column with the reply (a string or messages).")
    prompt_template: Optional[str] = Field(None, description="Format template: the user turn, with {column} fields, e.g. "
                                           "'Question: {question}'. Values of data.label_column go through data.label_map.")
    response_template: Optional[str] = Field(None, description="Format template: the assistant turn, e.g. '{answer}'.")
    system_prompt: Optional[str] = Field(None, description="A system turn put first in every example (formats "
                                         "prompt_completion, alpaca, template; messages rows bring their own).")
    packing: bool = Field(False, description="Several examples per block of data.block_size tokens, position ids "
                          "restarting per example and no attention across examples; off: length-grouped batches padded "
                          "to their own longest example.")


MOVED_DATA_KEYS = ("messages_column", "prompt_column", "completion_column", "prompt_template", "response_template",
                   "system_prompt", "packing")  # data.<key> before sft had its section (still read there, with a note)
