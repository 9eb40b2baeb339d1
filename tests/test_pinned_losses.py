"""Loss sequences of three tiny runs, pinned: any change to data, masking, batching, loss normalisation or the
optimizer moves them. (Re-pin only for a change meant to alter training, and say why in the commit.)"""

import re

import pytest

from test_task_contract import CASES
from tiny_models import MINILM

PINNED = {
    "clm": [4.1315, 4.1262, 4.0842, 4.0364, 4.0096],  # char GPT-2 on tinyshakespeare
    "mlm": [10.3247, 10.3437, 10.3218, 10.3189, 10.2431],  # tiny BERT with MiniLM's vocabulary, 15% masked (per-example masks)
    "cls": [0.6932, 0.6975, 0.6932, 0.6884, 0.6869],  # tiny BERT classifier on SST-2
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_loss_sequence(name, tmp_path):
    from ftkit import registry
    from ftkit.recipe import validate
    from ftkit.workflows import train

    raw = CASES[name](tmp_path)
    if name == "mlm":  # a shipped vocabulary: a freshly trained wordpiece vocabulary breaks ties differently run to run
        raw["tokenizer"] = {"path": MINILM}
    raw["train"] = {**raw["train"], "max_steps": 5, "log_every": 1, "lr": 1e-3, "warmup_steps": 1, "seed": 7}
    said: list[str] = []
    train.run(validate(raw), log=said.append, family=registry.entry(name).family)
    losses = [float(m.group(1)) for line in said if (m := re.match(r"step \d+/5\s+loss (\d+\.\d+)", line))]
    assert losses == pytest.approx(PINNED[name], abs=2e-4), losses
