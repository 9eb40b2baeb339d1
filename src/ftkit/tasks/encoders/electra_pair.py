"""ELECTRA's two networks trained as one module: a small masked-LM generator and the discriminator.

Why by hand: transformers has `ElectraForMaskedLM` (generator) and `ElectraForPreTraining` (discriminator) but
nothing that trains them together (Clark et al. 2020: the generator fills the masked positions with samples,
the discriminator tells every token whether it was replaced; the embeddings are shared).

`ElectraPair.forward` runs the whole step, so that DDP and autocast wrappers see one ordinary call:
  1. the generator at the masked positions only (tasks/mlm.SparseHead: its vocabulary layer skips the rest);
  2. one sample per masked position from the generator's softmax (Gumbel-max, no gradient), each sequence's from a
     torch.Generator seeded by that example (`sample_seed`, from the example's generator in the collate): exact
     resume, identical evaluations and N processes equal to 1, whatever the global RNG did;
  3. the discriminator on the corrupted sequence; a position is "replaced" only where the token differs from the
     original (a sample equal to the original counts as original, as in the paper).
Saved as two ordinary directories: the discriminator (ElectraForPreTraining: what AutoModelForSequenceClassification
and AutoModelForTokenClassification load) and the generator under `generator/` beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ftkit.tasks.encoders.masking import IGNORE
from ftkit.tasks.encoders.mlm import SparseHead

GENERATOR_DIR = "generator"


def generator_config(disc_config, size: float):
    """The generator: the discriminator's depth, embedding size and head width, `size` times its hidden width."""
    cfg = disc_config.__class__.from_dict(disc_config.to_dict())
    head_dim = disc_config.hidden_size // disc_config.num_attention_heads
    heads = max(1, round(disc_config.num_attention_heads * size))
    cfg.num_attention_heads = heads
    cfg.hidden_size = heads * head_dim
    cfg.intermediate_size = max(1, round(disc_config.intermediate_size * cfg.hidden_size / disc_config.hidden_size))
    cfg.architectures = ["ElectraForMaskedLM"]
    return cfg


@dataclass
class PairOutput:
    gen_logits: torch.Tensor   # (masked positions, vocabulary)
    gen_targets: torch.Tensor  # (masked positions,) original ids
    disc_logits: torch.Tensor  # (batch, length): > 0 means "replaced"
    replaced: torch.Tensor     # (batch, length) float: 1 where the discriminator's input differs from the original
    counted: torch.Tensor      # (batch, length) bool: the positions the discriminator is scored on (not padding)
    corrupted: torch.Tensor    # (batch, length) the discriminator's input ids


class ElectraPair(nn.Module):
    def __init__(self, generator, discriminator, tie: bool = True):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        if tie:  # one embedding module (tokens, positions, types) for both; the generator's output layer follows it
            generator.electra.embeddings = discriminator.electra.embeddings
            generator.generator_lm_head.weight = discriminator.electra.embeddings.word_embeddings.weight
        self.head = SparseHead()  # the masked-position trick of the mlm task

    @property
    def config(self):
        """The discriminator's: what the run reports (parameters, FLOPs, memory) describe the saved model."""
        return self.discriminator.config

    def num_parameters(self, only_trainable: bool = False) -> int:
        """Both networks, the shared embeddings once (as transformers counts tied weights)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    def set_attn_implementation(self, name: str) -> None:
        self.generator.set_attn_implementation(name)
        self.discriminator.set_attn_implementation(name)

    def forward(self, input_ids, labels, sample_seed, attention_mask=None, token_type_ids=None) -> PairOutput:
        where = labels != IGNORE
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        inputs = {k: v for k, v in inputs.items() if v is not None}
        gen_logits, targets, _ = self.head.logits(self.generator, {"labels": labels}, inputs)
        with torch.no_grad():
            u = gumbel_uniforms(where.sum(1).tolist(), sample_seed.reshape(-1).tolist(), gen_logits.shape[1],
                                gen_logits.device)
            sampled = (gen_logits.float() - torch.log(-torch.log(u))).argmax(-1)
            original = torch.where(where, labels, input_ids)
            corrupted = input_ids.clone()
            corrupted[where] = sampled
            replaced = (corrupted != original).float()
        disc_logits = self.discriminator(**{**inputs, "input_ids": corrupted}).logits
        counted = attention_mask.bool() if attention_mask is not None else torch.ones_like(where)
        return PairOutput(gen_logits, targets, disc_logits, replaced, counted, corrupted)

    def save_pretrained(self, path: str, state_dict: Optional[dict] = None, **kwargs) -> None:
        def part(prefix: str) -> Optional[dict]:
            if state_dict is None:
                return None
            return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}

        self.discriminator.save_pretrained(path, state_dict=part("discriminator."), **kwargs)
        self.generator.save_pretrained(str(Path(path) / GENERATOR_DIR), state_dict=part("generator."), **kwargs)


def gumbel_uniforms(counts: list[int], seeds: list[int], vocab: int, device) -> torch.Tensor:
    """(sum(counts), vocab) uniforms for the Gumbel-max samples: sequence i's `counts[i]` masked positions (they come
    row by row, as boolean indexing orders them) from a generator seeded by `seeds[i]`, so a sequence samples
    the same whatever else is in its batch."""
    parts = []
    for count, seed in zip(counts, seeds):
        if count:
            g = torch.Generator(device=device)
            g.manual_seed(int(seed))
            parts.append(torch.rand((count, vocab), generator=g, device=device))
    if not parts:
        return torch.empty((0, vocab), device=device)
    return torch.cat(parts).clamp_(min=1e-20)


def prior_loss(replaced_share: float) -> float:
    """The detection loss of answering the replaced share at every position (the entropy of that share)."""
    return -sum(p * math.log(p) for p in (replaced_share, 1 - replaced_share) if p > 0)


def start_at_prior(discriminator, replaced_share: float) -> None:
    """Set the detection head's output bias to the log-odds of the share of tokens that will be replaced.

    Why: transformers initialises it at 0 (p = 0.5). The loss's first lesson is then "most tokens are original",
    and Adam learns it fastest by moving every weight matrix at once: a component common to all positions
    grows until every layer's output is the same vector (tests/encoders/test_electra.py: the spread of the last
    hidden states over positions falls below 0.1 in 40 steps at lr 7e-4), the head answers the prior everywhere,
    and even uniformly random replacements are never learned (bench/probes/rtd_alone.py --no-prior-bias).
    Starting at the prior (as classifiers for rare classes do, Lin et al. 2017) leaves nothing to collapse for.
    """
    share = min(max(replaced_share, 1e-4), 1 - 1e-4)
    with torch.no_grad():
        discriminator.discriminator_predictions.dense_prediction.bias.fill_(math.log(share / (1 - share)))


def build_pair(discriminator, generator_size: float, generator=None) -> ElectraPair:
    """A pair around `discriminator`: with the given generator (a saved run's), else a new one of that size."""
    from transformers import ElectraForMaskedLM

    if generator is None:
        generator = ElectraForMaskedLM(generator_config(discriminator.config, generator_size))
    return ElectraPair(generator, discriminator)


def load_generator(model_dir: Path):
    """The generator saved beside a discriminator, or None."""
    from transformers import ElectraForMaskedLM

    where = Path(model_dir) / GENERATOR_DIR
    return ElectraForMaskedLM.from_pretrained(str(where)) if (where / "config.json").is_file() else None
