"""A checkpoint of a model with a frozen part (finetune.strategy freeze here; LoRA in tests/sft/test_sft_cli.py)
holds the trainable weights and buffers only, and loading it restores exactly those onto the rebuilt model."""

import torch
from safetensors import safe_open

from ftkit.engine import rundir
from ftkit.engine.checkpoint_weights import CheckpointWeights, unfit
from ftkit.models.strategy import freeze


def _bert(seed: int):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=120, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                     max_position_embeddings=64, num_labels=3)
    model = BertForSequenceClassification(cfg)
    freeze(model, embeddings=True, layers=1)
    return model


def _step(model, opt) -> None:
    ids = torch.randint(0, 120, (4, 9))
    loss = model(input_ids=ids, labels=torch.tensor([0, 1, 2, 1])).loss
    loss.backward()
    opt.step()
    opt.zero_grad()


def test_freeze_checkpoint_round_trip(tmp_path):
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    model = _bert(0)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model, opt = acc.prepare(model, opt)
    weights = CheckpointWeights(acc, model)
    _step(model, opt)
    ckpt = rundir.save_checkpoint(acc, tmp_path, 1, {"weights": weights.describe()}, keep=1)
    with safe_open(str(ckpt / "model.safetensors"), framework="pt") as f:
        names = set(f.keys())
    params = dict(model.named_parameters(remove_duplicate=False))
    assert names and all(params[n].requires_grad for n in names if n in params)  # no frozen weight was written
    assert {n for n, p in params.items() if p.requires_grad} <= names
    assert not any(n.startswith("bert.embeddings.") or ".layer.0." in n for n in names)
    state = rundir.read_json(ckpt / rundir.STATE_FILE)
    assert state["weights"]["saved"] == "trainable"
    want = {k: v.clone() for k, v in model.state_dict().items()}
    weights.remove()

    # the run rebuilt as it started (same seed: same frozen part), then the checkpoint loaded on top
    model2 = _bert(0)
    assert unfit(state, model2) is None
    opt2 = torch.optim.AdamW([p for p in model2.parameters() if p.requires_grad], lr=1e-2)
    acc = Accelerator(cpu=True)  # as a resumed run: a new process, one model
    model2, opt2 = acc.prepare(model2, opt2)
    weights2 = CheckpointWeights(acc, model2)
    acc.load_state(str(ckpt))
    weights2.remove()
    got = model2.state_dict()
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert opt2.state_dict()["state"].keys() == opt.state_dict()["state"].keys()

    # a different frozen part (another seed) is refused before loading, and so is a model with none
    assert "frozen base weights" in unfit(state, _bert(1))
    full = _bert(0)
    for p in full.parameters():
        p.requires_grad_(True)
    assert "trains every weight" in unfit(state, full)
