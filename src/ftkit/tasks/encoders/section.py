"""The encoder families' recipe sections (torch-free): `masking:` (mlm, mlm+nsp, electra; mim reads its mask ratio and
SimMIM's block size there too) and `electra:`. Every key a field, with its type, default and description."""

from __future__ import annotations

from typing import Optional

from pydantic import Field, model_validator

from ftkit.recipe.fields import Section


class MaskingSection(Section):
    probability: float = Field(0.15, gt=0.0, lt=1.0, description="Share of tokens selected for masked-LM prediction.")
    eval_probability: Optional[float] = Field(
        None, gt=0.0, lt=1.0, description="Share selected when evaluating (default: probability); e.g. train at 0.3 "
        "(more predictions per step, Wettig et al. 2022) and report accuracy at the usual 0.15.")
    mask_random_keep: tuple[float, float, float] = Field(
        (0.8, 0.1, 0.1), description="Of the selected tokens, the shares that become the mask token, a random token, or "
        "stay as they are (BERT: [0.8, 0.1, 0.1]; [1, 0, 0]: every selected token masked, as good at scale in Wettig et "
        "al. 2022, but a small BERT stayed at the always-'the' baseline without the kept share: bench/probes/mlm_ablation.py). "
        "Sums to 1.")
    whole_word: bool = Field(False, description="Select whole words: all pieces of a word are masked together.")
    eval_seed: int = Field(1234, description="Masking seed for evaluation, so two evaluations of one model agree.")
    mask_patch_size: Optional[int] = Field(
        None, gt=0, description="mim, SimMIM: side in pixels of the square blocks masked together (a multiple of the "
        "model's patch size dividing the image size; default: the patch size).")
    nsp_weight: float = Field(1.0, gt=0.0, description="mlm+nsp: weight of the next-sentence loss next to the mean "
                              "masked-LM loss (BERT: 1). Reported losses are unweighted.")

    @model_validator(mode="after")
    def _shares(self) -> "MaskingSection":
        if min(self.mask_random_keep) < 0 or abs(sum(self.mask_random_keep) - 1.0) > 1e-6:
            raise ValueError(f"masking.mask_random_keep: three shares >= 0 that sum to 1 (mask, random, keep), "
                             f"got {list(self.mask_random_keep)}")
        return self


class ElectraSection(Section):
    """ELECTRA pre-training (task electra): a small generator fills the masked positions, the discriminator finds them."""
    generator_size: float = Field(
        0.25, gt=0.0, le=1.0, description="Generator width as a fraction of the discriminator's (hidden size and heads; "
        "same depth and embeddings). ELECTRA: 1/4 to 1/2 works best; a generator as strong as the discriminator makes "
        "the task too hard.")
    disc_weight: float = Field(50.0, gt=0.0, description="Weight of the mean discriminator loss (every token) next to "
                               "the mean generator MLM loss (masked tokens); ELECTRA: 50.")
