"""The `span:` recipe section (task span-corruption): T5's noise density and mean span length.

Torch-free and free of ftkit imports: the recipe schema imports it (a recipe is read before torch is)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SpanSection(BaseModel):
    """T5's span corruption (Raffel et al. 2020, sec. 3.1.4): spans of the text are dropped from the encoder's input,
    each replaced by one sentinel token, and the decoder writes them back, each after its sentinel. data.block_size
    is the encoder's input length (sentinels and the final </s> included); the text per example is the longest that
    fills it exactly after corruption, and the target length follows (T5's compute_input_and_target_lengths), so no
    batch carries padding."""
    model_config = ConfigDict(extra="forbid", validate_assignment=True)  # as recipe.fields.Section
    noise_density: float = Field(0.15, gt=0.0, lt=1.0, description="Share of the text's tokens dropped from the input "
                                 "(T5: 0.15).")
    mean_noise_span_length: float = Field(3.0, ge=1.0, description="Mean length of a dropped span in tokens (T5: 3); "
                                          "the number of spans per example is round(dropped tokens / this).")
    eval_seed: int = Field(1234, description="Seed of the evaluation's spans, so two evaluations of one model agree.")
