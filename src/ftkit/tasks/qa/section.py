"""The `qa:` recipe section (task qa): windows, answer search, SQuAD v2 and the columns of the data.

Torch-free and free of ftkit imports: the recipe schema imports it (a recipe is read before torch is), and importing
ftkit.recipe from here would import the schema back before this class exists."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator


class QaSection(BaseModel):
    """Extractive question answering (task qa): the answer is a span of the context, found by start/end logits."""
    model_config = ConfigDict(extra="forbid", validate_assignment=True)  # as recipe.fields.Section
    max_length: int = Field(384, gt=8, description="Tokens per window (question + context + special tokens); a longer "
                            "context is cut into overlapping windows (run_qa: max_seq_length 384). Capped by the model's positions.")
    doc_stride: int = Field(128, gt=0, description="Tokens of context two neighbouring windows share (run_qa's doc_stride); "
                            "less than the context room of a window (max_length minus the question and special tokens).")
    max_answer_length: int = Field(30, gt=0, description="Longest answer predicted, in tokens.")
    n_best: int = Field(20, gt=0, description="Start and end candidates per window (the n_best_size of run_qa's post-processing); "
                        "the best span is searched over their pairs inside the context, in every window of a question.")
    version_2: bool = Field(False, description="SQuAD v2: questions may have no answer (is_impossible / an empty answers "
                            "list); a window without the answer trains on the [CLS] position, the null score competes with "
                            "the best span, and the v2 figures (HasAns / NoAns / best threshold) are reported. Off: every "
                            "question must have an answer in its context.")
    null_threshold: Optional[float] = Field(None, description="version_2: predict no answer when the null score exceeds the "
                                            "best span's by more than this. Default: the threshold with the best F1 on the "
                                            "evaluation set (reported as best_f1_thresh; `ftkit predict` uses the saved one).")
    question_column: str = Field("question", description="Field with the question (jsonl / parquet / hub rows).")
    context_column: str = Field("context", description="Field with the context paragraph.")
    answers_column: str = Field("answers", description="Field with the answers: {text: [...], answer_start: [...]} (the "
                                "Hugging Face squad layout) or a list of {text, answer_start}.")
    id_column: str = Field("id", description="Field with the question id (default when absent: the row number).")

    @model_validator(mode="after")
    def _stride(self) -> "QaSection":
        if self.doc_stride >= self.max_length:
            raise ValueError(f"qa.doc_stride {self.doc_stride} must be less than qa.max_length {self.max_length} "
                             "(windows advance by the context room minus the stride)")
        return self
