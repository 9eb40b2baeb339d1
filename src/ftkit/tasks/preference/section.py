"""The `dpo:` recipe section (task dpo): the loss, its beta / gamma, the reference, the columns of the pairs.

Torch-free and free of ftkit imports: the recipe schema imports it (a recipe is read before torch is)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

REFERENCE_FREE = ("simpo", "orpo")


class DpoSection(BaseModel):
    """Preference tuning of a chat model (task dpo) on {prompt, chosen, rejected} pairs."""
    model_config = ConfigDict(extra="forbid", validate_assignment=True)  # as recipe.fields.Section
    loss: Literal["sigmoid", "ipo", "simpo", "orpo"] = Field(
        "sigmoid", description="sigmoid: DPO (-log sigmoid(beta * (chosen - rejected log-ratio to the reference))); ipo: "
        "IPO's squared loss on the per-token log-ratios (as TRL); simpo: SimPO, reference-free, per-token mean log-probs "
        "with a target margin gamma; orpo: ORPO, reference-free, the chosen reply's NLL plus beta times the odds-ratio loss.")
    beta: float = Field(0.1, gt=0.0, description="sigmoid / ipo: how far the policy may move from its reference (DPO: "
                        "0.1); simpo: the reward scale (paper: 2.0-2.5); orpo: the odds-ratio weight (lambda, paper 0.1).")
    gamma: float = Field(0.5, ge=0.0, description="simpo: the target reward margin (TRL's simpo_gamma, default 0.5).")
    precompute_ref_logps: bool = Field(
        False, description="sigmoid / ipo: compute the reference log-probs of every pair in one pass before training, "
        "cache them in data.cache_dir (keyed by model weights, data and precision; reused by --resume) and train without a reference "
        "forward (no frozen copy in memory under finetune.strategy full).")
    chat_template: Optional[str] = Field(
        None, description="The chat template when the tokenizer has none: chatml, or a Jinja template string. Default: "
        "the tokenizer's own (what inference uses).")
    prompt_column: str = Field("prompt", description="Field with the prompt (a string or chat messages); a row without "
                               "it is a whole dialogue pair (Anthropic HH layout, or two message lists).")
    chosen_column: str = Field("chosen", description="Field with the preferred reply (a string or messages).")
    rejected_column: str = Field("rejected", description="Field with the dispreferred reply (a string or messages).")
    max_margin: float = Field(
        50.0, gt=0.0, description="Sanity guard: a mean reward margin above this in the first guard_steps training "
        "batches stops the run (a policy that ran away from its reference, or a broken reference).")
    guard_steps: int = Field(10, ge=0, description="Training batches the sanity guards watch (log-probs of 0 or NaN, the "
                             "margin bound; step 1's loss equal to the loss at zero log-ratios, ln 2 for sigmoid).")

    @model_validator(mode="after")
    def _columns(self) -> "DpoSection":
        cols = (self.prompt_column, self.chosen_column, self.rejected_column)
        if len(set(cols)) < 3:
            raise ValueError(f"dpo: prompt_column, chosen_column and rejected_column must differ (got {', '.join(cols)})")
        if self.precompute_ref_logps and self.loss in REFERENCE_FREE:
            raise ValueError(f"dpo.precompute_ref_logps: loss {self.loss} uses no reference model")
        return self
