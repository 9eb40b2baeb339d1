"""The masked-LM task: the sparse head equals the model's own logits, the loss equals transformers' loss."""

import numpy as np
import pytest
import torch

from ftkit.tasks.encoders.masking import IGNORE
from ftkit.tasks.encoders.mlm import MaskedLM
from ftkit.tasks.encoders.section import MaskingSection

from encoder_helpers import FakeTokenizer


def tiny(model_type: str, auto: str):
    import transformers

    torch.manual_seed(0)
    kw = {"vocab_size": 300, "pad_token_id": 0, "max_position_embeddings": 40}
    if model_type == "distilbert":
        kw.update(dim=32, n_layers=2, n_heads=2, hidden_dim=64, dropout=0.0, attention_dropout=0.0)
    else:
        kw.update(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    if model_type == "modernbert":  # its own dropout names; pre-LN, no biases, rotary positions
        kw = {k: v for k, v in kw.items() if "prob" not in k}
    cfg = transformers.AutoConfig.for_model(model_type, **kw)
    return getattr(transformers, auto).from_config(cfg).eval()


@pytest.mark.parametrize("model_type, auto", [("bert", "AutoModelForMaskedLM"), ("bert", "AutoModelForPreTraining"),
                                              ("megatron-bert", "AutoModelForPreTraining"),
                                              ("roberta", "AutoModelForMaskedLM"), ("distilbert", "AutoModelForMaskedLM"),
                                              ("electra", "AutoModelForMaskedLM"), ("modernbert", "AutoModelForMaskedLM")])
def test_sparse_head_equals_full_logits_and_loss(model_type, auto):
    model = tiny(model_type, auto)
    task = MaskedLM(FakeTokenizer(), MaskingSection())
    rng = np.random.default_rng(0)
    batch = task.collate([rng.integers(5, 300, size=30) for _ in range(6)], rng)
    assert task.head.attach(model)
    with torch.no_grad():
        sparse, targets, _ = task.head.logits(model, batch, {"input_ids": batch["input_ids"]})
        full = model(input_ids=batch["input_ids"])
        full = full.logits if hasattr(full, "logits") else full.prediction_logits
        where = batch["labels"] != IGNORE
        torch.testing.assert_close(sparse, full[where], rtol=1e-4, atol=1e-5)
        assert sparse.shape == (int(where.sum()), 300) and (targets == batch["labels"][where]).all()
        # after the call the hook passes everything through again
        again = model(input_ids=batch["input_ids"])
        assert (again.logits if hasattr(again, "logits") else again.prediction_logits).shape[1] == 32
        if auto == "AutoModelForMaskedLM":  # transformers' own loss is the mean over the masked tokens
            ours = task.loss(model, batch) / task.count_targets(batch)
            theirs = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
            torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_blocks_get_cls_and_sep():
    task = MaskedLM(FakeTokenizer(), MaskingSection(probability=0.5))
    batch = task.collate([np.arange(10, 20), np.arange(20, 30)], np.random.default_rng(0))
    assert batch["input_ids"].shape == (2, 12)
    assert (batch["input_ids"][:, 0] == 2).all() and (batch["input_ids"][:, -1] == 3).all()
    assert set(batch) == {"input_ids", "labels"}  # full blocks: no padding mask needed


def test_metrics_have_a_majority_baseline():
    task = MaskedLM(FakeTokenizer(), MaskingSection())
    m = task.compute_metrics({"mlm_loss_sum": 20.0, "mlm_count": 10, "mlm_predictions": np.array([7] * 6 + [8] * 4),
                              "mlm_targets": np.array([7] * 5 + [9] * 5)})
    assert m["loss"] == 2.0 and m["perplexity"] == pytest.approx(np.exp(2.0))
    assert m["masked_accuracy"] == 0.5 and m["majority_baseline_accuracy"] == 0.5 and m["masked_tokens"] == 10
    assert m["majority_token"] in ("t7", "t9")
