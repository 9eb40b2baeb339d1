"""`ftkit compress quantize | prune | distill` end to end on a tiny BERT classifier trained on SST-2 slices:
reports, outputs that `ftkit eval` / `predict` (and for prune and distill, plain transformers) load, bad input."""

import json
from pathlib import Path

import pytest

from conftest import run_cli, run_cli_process, write_recipe
from tiny_models import cls_recipe, tiny_bert_dir

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("teacher")
    base = tiny_bert_dir(d / "tiny-bert")
    recipe = cls_recipe(d, base)
    code, _, err = run_cli("finetune", "--task", "cls", "-r", str(write_recipe(d / "r.yaml", recipe)))
    assert code == 0, err
    return d, Path(recipe["output_dir"])


def test_quantize_report_and_the_int8_model_loads(trained, tmp_path):
    d, model = trained
    out = tmp_path / "int8"
    code, stdout, err = run_cli("compress", "quantize", "--model", str(model), "--output", str(out), "--json")
    assert code == 0, err
    r = json.loads(stdout)
    assert r["linear_weight_ratio"] > 3.0 and r["size_on_disk_bytes"]["after"] < r["size_on_disk_bytes"]["before"]
    assert r["after"]["accuracy"] == r["after_reload"]["accuracy"] and r["before"]["batches"] == 1
    assert {p.name for p in out.iterdir()} >= {"model.int8.safetensors", "quantization.json", "config.json", "recipe.yaml",
                                               "tokenizer.json", "compression.json"}
    assert not list(out.glob("*.bin")) and not (out / "model.safetensors").exists()
    card = (out / "README.md").read_text()  # transformers cannot read this format: the card says how to load it
    assert "library_name: ftkit" in card and "ftkit's int8 format" in card and "pipeline(" not in card
    # the same batches as the report (dynamic quantization scales activations per batch)
    code, stdout, err = run_cli("eval", "--model", str(out), "--json", "--batch-size", "32")
    assert code == 0, err
    assert json.loads(stdout)["loss"] == pytest.approx(r["after"]["loss"], abs=1e-6)
    (tmp_path / "in.txt").write_text("a gorgeous , witty movie\n")
    code, stdout, err = run_cli("predict", "--model", str(out), str(tmp_path / "in.txt"))
    assert code == 0 and json.loads(stdout)["label"] in ("negative", "positive"), err
    code, _, err = run_cli("compress", "quantize", "--model", str(out), "--output", str(tmp_path / "again"))
    assert code == 2 and "already quantized" in err and not (tmp_path / "again").exists()


def test_quantizing_an_adapter_asks_for_a_merge(trained, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from ftkit import registry
    from ftkit.models.strategy import apply_strategy, save_weights
    from ftkit.recipe.schema import FinetuneSection

    _, model = trained
    peft_model = apply_strategy(AutoModelForSequenceClassification.from_pretrained(str(model)),
                                FinetuneSection(strategy="lora"), registry.entry("cls"), log=lambda m: None)
    (tmp_path / "adapter").mkdir()
    save_weights(peft_model, tmp_path / "adapter")
    code, _, err = run_cli("compress", "quantize", "--model", str(tmp_path / "adapter"), "--output", str(tmp_path / "q"))
    assert code == 2 and "is a PEFT adapter; merge it" in err and not (tmp_path / "q").exists()


def test_prune_heads_and_weights_then_finetune(trained, tmp_path):
    import shutil

    from transformers import AutoModelForSequenceClassification

    from ftkit.compress.prune import sparsity_report

    _, trained_model = trained
    model = tmp_path / "model"  # a copy whose recipe fine-tunes in bf16: measuring (fp32) and training share a process
    shutil.copytree(trained_model, model, ignore=shutil.ignore_patterns("checkpoints"))
    recipe = model / "recipe.yaml"
    recipe.write_text(recipe.read_text().replace("precision: fp32", "precision: bf16"))
    out = tmp_path / "pruned"
    # its own process, as a user runs it: one Accelerator (bf16) serves the fp32 measurements and the fine-tune
    code, stdout, err = run_cli_process("compress", "prune", "--model", str(model), "--output", str(out), "--sparsity", "0.5",
                                        "--heads", "0.25", "--finetune-steps", "2", "--json")
    assert code == 0, err
    r = json.loads(stdout)
    assert "removed 2 of 8 attention heads" in err and r["finetune"]["steps"] == 2
    plain = AutoModelForSequenceClassification.from_pretrained(str(out))  # plain transformers
    s = sparsity_report(plain)
    assert s == r["sparsity"] and s["layer_weight_sparsity"] >= 0.5  # still sparse after the fine-tune
    assert {int(k): v for k, v in plain.config.pruned_heads.items()} == {int(k): v for k, v in r["method"]["pruned_heads"].items()}
    code, stdout, err = run_cli("eval", "--model", str(out), "--json")
    assert code == 0 and json.loads(stdout)["accuracy"] == r["after"]["accuracy"], err


@pytest.mark.parametrize("args,message", [
    (["--sparsity", "1.0"], "--sparsity: 1.0 is outside [0, 1)"),
    (["--sparsity", "-0.2"], "--sparsity: -0.2 is outside [0, 1)"),
    (["--heads", "1.0"], "--heads: 1.0 is outside (0, 1)"),
])
def test_prune_bad_amounts(trained, tmp_path, args, message):
    _, model = trained
    code, _, err = run_cli("compress", "prune", "--model", str(model), "--output", str(tmp_path / "p"), *args)
    assert code == 2 and err.strip().splitlines() == [err.strip()] and err.startswith(f"error: {message}"), err
    assert not (tmp_path / "p").exists()


def test_distill_a_one_layer_student(trained, tmp_path):
    from transformers import AutoModelForSequenceClassification

    d, teacher = trained
    recipe = cls_recipe(d, teacher, out=str(tmp_path / "student"))
    recipe["output_dir"] = str(tmp_path / "student")
    recipe["distill"] = {"student_layers": 1, "temperature": 2.0, "alpha": 0.5}
    code, _, err = run_cli("compress", "distill", "-r", str(write_recipe(tmp_path / "d.yaml", recipe)))
    assert code == 0, err
    assert "distill: student BertForSequenceClassification" in err
    student = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "student"))
    assert student.config.num_hidden_layers == 1 and len(student.bert.encoder.layer) == 1
    code, stdout, err = run_cli("eval", "--model", str(tmp_path / "student"), "--json")
    best = json.loads((tmp_path / "student" / "metrics.json").read_text())["best_metrics"]
    assert code == 0 and json.loads(stdout)["loss"] == pytest.approx(best["loss"], abs=1e-6), err


def test_distill_student_larger_than_teacher(trained, tmp_path):
    d, teacher = trained
    recipe = cls_recipe(d, teacher)
    recipe["output_dir"] = str(tmp_path / "student")
    recipe["distill"] = {"student_layers": 3}
    code, _, err = run_cli("compress", "distill", "-r", str(write_recipe(tmp_path / "d.yaml", recipe)))
    assert code == 2 and "not smaller than its teacher of 2" in err, err
    assert not (tmp_path / "student").exists() or not any((tmp_path / "student").iterdir())
