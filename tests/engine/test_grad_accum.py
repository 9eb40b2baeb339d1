"""k micro-batches of b give the same gradient as one batch of k*b, even when they hold different numbers of targets."""

import numpy as np
import torch
import torch.nn.functional as F

from ftkit.engine.accel import make_accelerator
from ftkit.engine.loop import accumulate_gradients


class MaskedTokens:
    """A task whose targets per batch vary (like masked LM): only tokens with loss_mask == 1 count."""

    def count_targets(self, batch):
        return int(batch["loss_mask"].sum())

    def loss(self, model, batch):
        logits = model(input_ids=batch["input_ids"]).logits
        per_token = F.cross_entropy(logits.flatten(0, 1).float(), batch["input_ids"].flatten(), reduction="none")
        return (per_token * batch["loss_mask"].flatten()).sum()


def tiny_model():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=50, n_positions=16, n_embd=32, n_layer=2, n_head=2, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
    return GPT2LMHeadModel(cfg)


def grads(model, micro):
    acc = make_accelerator("fp32")
    model.zero_grad()
    loss, n = accumulate_gradients(acc, model, MaskedTokens(), micro)
    return loss.item() / n, {k: p.grad.clone() for k, p in model.named_parameters()}


def test_accumulated_equals_one_big_batch():
    rng = np.random.default_rng(0)
    ids = torch.from_numpy(rng.integers(0, 50, size=(6, 16)))
    mask = torch.from_numpy((rng.random((6, 16)) < np.linspace(0.15, 0.9, 6)[:, None]).astype(np.float32))
    assert len({int(m.sum()) for m in mask}) > 3  # very different target counts per row
    model = tiny_model()
    whole = [{"input_ids": ids, "loss_mask": mask}]
    parts = [{"input_ids": ids[i:j], "loss_mask": mask[i:j]} for i, j in ((0, 1), (1, 4), (4, 6))]
    loss_a, g_a = grads(model, whole)
    loss_b, g_b = grads(model, parts)
    assert abs(loss_a - loss_b) < 1e-5
    for k in g_a:
        torch.testing.assert_close(g_a[k], g_b[k], rtol=1e-4, atol=1e-6)
    # the naive mean of per-micro-batch means is measurably different: this test can fail
    naive = sum(float(MaskedTokens().loss(model, p)) / MaskedTokens().count_targets(p) for p in parts) / len(parts)
    assert abs(naive - loss_a) > 1e-3


def _nsp_case():
    """mlm+nsp on a tiny BERT: a mean MLM term plus a mean NSP term (Task.window_counts), pairs of varied lengths."""
    from test_example_rngs import pair_items
    from transformers import BertConfig, BertForPreTraining

    from ftkit.tasks.encoders.nsp import MaskedLMWithNSP
    from ftkit.tasks.encoders.section import MaskingSection

    from encoder_helpers import FakeTokenizer

    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                                          attention_probs_dropout_prob=0.0))
    task = MaskedLMWithNSP(FakeTokenizer(), MaskingSection(probability=0.3))
    items = pair_items()
    return model, task, [items[int(i)] for i in np.linspace(0, len(items) - 1, 12)]  # pairs and packed singles


def _electra_case():
    from transformers import ElectraConfig, ElectraForPreTraining

    from ftkit.tasks.encoders.electra import ElectraTask
    from ftkit.tasks.encoders.electra_pair import build_pair
    from ftkit.tasks.encoders.section import ElectraSection, MaskingSection

    from encoder_helpers import FakeTokenizer

    torch.manual_seed(0)
    cfg = ElectraConfig(vocab_size=300, embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=40, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    rng = np.random.default_rng(1)
    return build_pair(ElectraForPreTraining(cfg), 0.5), ElectraTask(FakeTokenizer(), MaskingSection(probability=0.3), ElectraSection()), \
        [rng.integers(5, 300, size=30) for _ in range(12)]


def test_two_term_losses_are_means_over_the_window():
    """mlm+nsp and electra add a second mean (NSP over pairs, detection over tokens) to the masked-LM mean: scaled by
    the window's counts (engine: Task.window_counts), 3 micro-batches give the loss and gradient of one batch; scaled
    by each micro-batch's own counts (the engine without the window) they do not."""
    for model, task, examples in (_nsp_case(), _electra_case()):
        def rngs(n=len(examples)):  # one generator per example, fresh each time
            return np.random.default_rng(7).spawn(n)

        whole = [task.collate(examples, rngs())]
        again = rngs()
        parts = [task.collate(examples[i:j], again[i:j]) for i, j in ((0, 2), (2, 7), (7, 12))]
        acc = make_accelerator("fp32")
        model.zero_grad()
        loss_a, n_a = accumulate_gradients(acc, model, task, whole)
        g_a = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
        model.zero_grad()
        loss_b, n_b = accumulate_gradients(acc, model, task, parts)
        assert task.window is None and n_a == n_b
        assert abs(loss_a.item() / n_a - loss_b.item() / n_b) < 1e-5, task.name
        for k in g_a:
            torch.testing.assert_close(model.get_parameter(k).grad, g_a[k], rtol=1e-4, atol=1e-6)
        per_batch = sum(float(task.loss(model, p)) for p in parts) / n_b  # each term scaled by its micro-batch's counts
        assert abs(per_batch - loss_a.item() / n_a) > 1e-4, task.name
