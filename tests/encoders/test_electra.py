"""ELECTRA (tasks/encoders/electra.py, tasks/encoders/electra_pair.py): what the discriminator is shown and told, what is saved, exact
resume; through the CLI on slices of IMDB + SST-2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ftkit.tasks.encoders.electra import ElectraTask
from ftkit.tasks.encoders.electra_pair import ElectraPair, build_pair, generator_config, start_at_prior
from ftkit.tasks.encoders.masking import IGNORE
from ftkit.tasks.encoders.section import ElectraSection, MaskingSection

from conftest import run_cli, write_recipe
from encoder_helpers import IMDB_TEST, FakeTokenizer, write_imdb_slice, write_sst2_slice

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out


def tiny_pair(seed: int = 0) -> ElectraPair:
    from transformers import ElectraConfig, ElectraForPreTraining

    torch.manual_seed(seed)
    cfg = ElectraConfig(vocab_size=300, embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=40, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    return build_pair(ElectraForPreTraining(cfg), 0.5)


def batch_of(task, n: int = 6, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return task.collate([rng.integers(5, 300, size=30) for _ in range(n)], rng)


def task_of() -> ElectraTask:
    return ElectraTask(FakeTokenizer(), MaskingSection(probability=0.3), ElectraSection())


def test_the_generator_is_smaller_and_shares_the_embeddings():
    pair = tiny_pair()
    g, d = pair.generator, pair.discriminator
    assert g.config.hidden_size == 16 and g.config.num_attention_heads == 2 and g.config.num_hidden_layers == 2
    assert g.electra.embeddings is d.electra.embeddings
    assert g.generator_lm_head.weight is d.electra.embeddings.word_embeddings.weight
    assert generator_config(d.config, 0.25).hidden_size == 8  # one head of the discriminator's head width


def test_replacements_come_only_from_masked_positions_and_labels_mark_exactly_the_changed_tokens():
    pair, task = tiny_pair(), task_of()
    batch = batch_of(task)
    where = batch["labels"] != IGNORE
    original = torch.where(where, batch["labels"], batch["input_ids"])
    out = pair(**{k: batch[k] for k in ("input_ids", "labels", "sample_seed")})
    assert torch.equal(out.corrupted[~where], original[~where])  # nothing outside the masked positions changes
    assert out.replaced[~where].sum() == 0 and 0 < out.replaced.sum() <= where.sum()
    assert torch.equal(out.replaced.bool(), out.corrupted != original)
    # a generator that always samples the original token: every position is "original"
    real_logits = pair.head.logits

    def confident(value):
        def logits(model, b, inputs):
            gl, targets, o = real_logits(model, b, inputs)
            forced = torch.full_like(gl, -1e4)
            forced[torch.arange(len(targets)), targets if value else (targets + 1) % gl.shape[1]] = 1e4
            return forced, targets, o
        return logits

    pair.head.logits = confident(True)
    out = pair(**{k: batch[k] for k in ("input_ids", "labels", "sample_seed")})
    assert out.replaced.sum() == 0
    # one that never does: exactly the masked positions are "replaced"
    pair.head.logits = confident(False)
    out = pair(**{k: batch[k] for k in ("input_ids", "labels", "sample_seed")})
    assert torch.equal(out.replaced.bool(), where)


def test_samples_are_a_function_of_the_batch_seed():
    pair, task = tiny_pair(), task_of()
    batch = batch_of(task)
    args = {k: batch[k] for k in ("input_ids", "labels", "sample_seed")}
    torch.manual_seed(1)
    a = pair(**args).corrupted
    torch.manual_seed(2)  # the global RNG does not matter
    assert torch.equal(pair(**args).corrupted, a)
    args["sample_seed"] = args["sample_seed"] + 1
    assert not torch.equal(pair(**args).corrupted, a)


def test_loss_is_mean_mlm_plus_weighted_mean_discriminator_loss():
    import torch.nn.functional as F

    pair, task = tiny_pair(), task_of()
    batch = batch_of(task)
    total = task.loss(pair, batch) / task.count_targets(batch)
    out = pair(**{k: batch[k] for k in ("input_ids", "labels", "sample_seed")})
    mlm = F.cross_entropy(out.gen_logits, out.gen_targets)
    disc = F.binary_cross_entropy_with_logits(out.disc_logits, out.replaced)
    torch.testing.assert_close(total, mlm + 50.0 * disc, rtol=1e-5, atol=1e-5)
    total.backward()  # both networks learn: the generator from its MLM loss, the discriminator from its own
    assert pair.generator.electra.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    assert pair.discriminator.discriminator_predictions.dense.weight.grad.abs().sum() > 0


def test_a_discriminator_started_at_the_prior_learns_what_a_zero_bias_one_never_does():
    """The recipe's lr, a smaller discriminator, replacements that give themselves away (ids from a range the text
    never uses): started at the prior it spots them within 40 steps; from transformers' zero bias Adam first
    collapses every position to one vector (README, ELECTRA) and it stays at the prior."""
    import math

    import torch.nn.functional as F
    from transformers import ElectraConfig, ElectraForPreTraining

    def train(prior: bool) -> tuple[float, float]:
        torch.manual_seed(0)
        disc = ElectraForPreTraining(ElectraConfig(
            vocab_size=4000, embedding_size=64, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=512, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
        if prior:
            start_at_prior(disc, 0.15)
            with torch.no_grad():
                probs = torch.sigmoid(disc(input_ids=torch.randint(5, 4000, (4, 32))).logits)
            assert abs(float(probs.mean()) - 0.15) < 0.02
        opt = torch.optim.AdamW(disc.parameters(), lr=7e-4)
        for _ in range(40):
            ids = torch.randint(5, 1000, (8, 32))
            chosen = torch.rand(ids.shape) < 0.15
            corrupted = torch.where(chosen, torch.randint(1000, 4000, ids.shape), ids)
            out = disc(input_ids=corrupted, output_hidden_states=True)
            loss = F.binary_cross_entropy_with_logits(out.logits, chosen.float())
            loss.backward()
            opt.step()
            opt.zero_grad()
        return loss.item(), out.hidden_states[-1].std(1).mean().item()

    learned, spread = train(prior=True)
    assert learned < 0.3 and spread > 0.3
    stuck, collapsed = train(prior=False)
    prior = -(0.15 * math.log(0.15) + 0.85 * math.log(0.85))
    assert stuck > prior - 0.05 and collapsed < 0.1


@pytest.fixture(scope="module")
def electra_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("electra")
    recipe = {
        "task": "electra", "output_dir": str(tmp / "run"),
        "tokenizer": {"kind": "wordpiece", "path": str(tmp / "tok"), "vocab_size": 1500, "lowercase": True},
        "model": {"model_type": "electra", "config": {"embedding_size": 64, "num_hidden_layers": 2, "hidden_size": 64,
                                                      "num_attention_heads": 2, "intermediate_size": 128}},
        "data": {"train": [str(write_imdb_slice(tmp / "imdb.jsonl", 120, every=40)),
                           {"path": str(write_sst2_slice(tmp / "sst.tsv", 300)), "text_column": "sentence"}],
                 "validation": str(write_imdb_slice(tmp / "imdb_test.jsonl", 30, every=150, source=IMDB_TEST)),
                 "block_size": 64, "cache_dir": str(tmp / "cache")},
        "electra": {"generator_size": 0.5},
        "train": {"max_steps": 60, "batch_size": 16, "lr": 2e-3, "warmup_steps": 5, "eval_every": 30, "eval_batches": 4,
                  "log_every": 10, "precision": "fp32", "dropout": 0.0},
    }
    path = write_recipe(tmp / "electra.yaml", recipe)
    assert run_cli("tokenize", "-r", str(path))[0] == 0
    code, _, err = run_cli("pretrain", "-r", str(path))
    assert code == 0, err
    return tmp, Path(recipe["output_dir"]), err


def test_training_runs_both_networks_and_reports_the_detection_metrics(electra_run):
    """60 tiny steps: the generator learns (its loss falls well below log V), the discriminator starts at the share
    of replaced tokens and stays at most near that prior; spotting replacements in context takes longer (the
    recipe's figures are in README)."""
    import math

    _, out, err = electra_run
    assert "electra: generator new, hidden 32 x 2 layers" in err
    last = json.loads((out / "metrics.json").read_text())["final_metrics"]
    share = last["replaced_share"]
    assert 0.05 < share < 0.16  # 15 % masked, almost all of them replaced by an early generator
    prior = -(share * math.log(share) + (1 - share) * math.log(1 - share))
    assert last["disc_loss"] < prior + 0.02 and last["disc_loss"] < 0.6
    assert last["disc_prior_loss"] == pytest.approx(prior)
    assert last["generator_loss"] < math.log(1500) - 0.8
    for key in ("replaced_f1", "disc_accuracy", "masked_accuracy", "replaced_precision", "replaced_recall"):
        assert 0.0 <= last[key] <= 1.0
    logged = [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert logged[-1] < logged[0] - 0.5


def test_a_new_discriminator_starts_at_the_prior_and_a_saved_one_keeps_its_head(electra_run, tmp_path):
    """The loss of step 1, before any update: the generator's ~log V plus 50 x the detection loss, which is the
    replaced share's entropy (~0.42 at 15 %) from the prior's bias, ln 2 = 0.69 from transformers' zero bias.
    Continuing from a saved discriminator keeps its trained bias."""
    import math

    import yaml
    from safetensors.torch import load_file

    tmp, out, _ = electra_run
    one = ["train.max_steps=1", "train.log_every=1", "train.eval_every=0"]
    recipe = str(tmp / "electra.yaml")
    assert run_cli("pretrain", "-r", recipe, *one, f"output_dir={tmp_path / 'new'}")[0] == 0
    first = json.loads((tmp_path / "new" / "train_log.jsonl").read_text().splitlines()[0])["loss"]
    assert 50 * 0.3 < first - math.log(1500) < 50 * 0.5
    key = "discriminator_predictions.dense_prediction.bias"
    trained = load_file(out / "model.safetensors")[key]
    spec = yaml.safe_load(Path(recipe).read_text())
    spec["model"] = {"from_pretrained": str(out)}
    again = write_recipe(tmp_path / "again.yaml", spec)
    code, _, err = run_cli("pretrain", "-r", str(again), *one, "train.lr=1e-12", f"output_dir={tmp_path / 'again'}")
    assert code == 0, err
    torch.testing.assert_close(load_file(tmp_path / "again" / "model.safetensors")[key], trained, atol=1e-6, rtol=0)


def test_saved_discriminator_loads_into_classifiers_and_the_generator_beside_it(electra_run):
    from transformers import (
        AutoModelForMaskedLM,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )

    _, out, _ = electra_run
    assert json.loads((out / "config.json").read_text())["architectures"] == ["ElectraForPreTraining"]
    tok = AutoTokenizer.from_pretrained(out)
    enc = tok(["a fine film", "dull"], padding=True, return_tensors="pt")
    for auto in (AutoModelForSequenceClassification, AutoModelForTokenClassification):
        model, info = auto.from_pretrained(out, num_labels=3, output_loading_info=True)
        assert not [k for k in info["missing_keys"] if k.startswith("electra.")]  # the whole encoder came from the run
        assert model(**enc).logits.shape[-1] == 3
    gen = AutoModelForMaskedLM.from_pretrained(out / "generator")
    assert gen.config.hidden_size == 32
    code, stdout, err = run_cli("eval", "--model", str(out), "--json", "--batch-size", "8")
    assert code == 0, err
    again = json.loads(run_cli("eval", "--model", str(out), "--json", "--batch-size", "8")[1])
    assert json.loads(stdout)["replaced_f1"] == again["replaced_f1"]  # seeded masks and samples: evaluations agree


def test_resume_is_exact_for_electra(electra_run, tmp_path):
    import shutil

    from safetensors.torch import load_file

    tmp, _, _ = electra_run
    base = [f"output_dir={tmp_path / 'full'}", "train.max_steps=6", "train.save_every=3", "train.eval_every=0",
            "train.keep_checkpoints=5", "train.keep_checkpoints_at_end=5", "train.dropout=0.1"]
    recipe = str(tmp / "electra.yaml")
    assert run_cli("pretrain", "-r", recipe, *base)[0] == 0
    cut = tmp_path / "cut"
    shutil.copytree(tmp_path / "full", cut)
    shutil.rmtree(cut / "checkpoints" / "step-6")
    for f in (cut / "model.safetensors", cut / "generator" / "model.safetensors"):
        f.unlink()
    (cut / "run.json").write_text('{"status": "running"}')
    code, _, err = run_cli("pretrain", "-r", recipe, *base, f"output_dir={cut}", "--resume")
    assert code == 0 and "at step 3" in err, err
    for name in ("model.safetensors", "generator/model.safetensors"):
        a, b = load_file(tmp_path / "full" / name), load_file(cut / name)
        assert a.keys() == b.keys()
        for k in a:
            assert (a[k] == b[k]).all(), (name, k)
