"""finetune.strategy end to end through the CLI on a tiny BERT (SST-2 slices) and a tiny GPT-2 (Shakespeare):
train -> adapter in PEFT format -> ftkit eval / predict / generate load it -> export --merge -> plain transformers."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ftkit import registry

from conftest import run_cli, write_recipe
from tiny_models import cls_recipe, tiny_bert_dir

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tiny_bert_dir(tmp_path_factory.mktemp("base") / "tiny-bert")


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, base):
    d = tmp_path_factory.mktemp("lora")
    recipe = cls_recipe(d, base, strategy="lora", lora_r=4, target_modules=["query", "value"])
    code, _, err = run_cli("finetune", "--task", "cls", "-r", str(write_recipe(d / "r.yaml", recipe)))
    assert code == 0, err
    return d, Path(recipe["output_dir"]), err


def test_lora_run_saves_an_adapter(lora_run):
    _, out, err = lora_run
    # 2 layers x (query, value) x r (32 + 32) + the classifier 32 x 2 + 2 (modules_to_save)
    assert "finetune.strategy lora: trainable parameters: 1,090 of" in err
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "base_config.json", "recipe.yaml", "tokenizer.json"} <= names
    assert "model.safetensors" not in names and "config.json" not in names
    weights = load_file(str(out / "adapter_model.safetensors"))
    assert any("lora_A" in k for k in weights) and any("classifier" in k for k in weights)
    assert all("lora" in k or "classifier" in k for k in weights)


def test_the_adapter_has_a_model_card_with_its_results(lora_run):
    from huggingface_hub import ModelCard

    _, out, _ = lora_run
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "peft" and card.data.pipeline_tag == "text-classification"
    best = json.loads((out / "metrics.json").read_text())["best_metrics"]
    assert {r.metric_type: r.metric_value for r in card.data.eval_results}["accuracy"] == pytest.approx(best["accuracy"])
    assert f"| accuracy | {best['accuracy']:.4f} |" in card.text
    assert f'AutoPeftModelForSequenceClassification.from_pretrained("{out}")' in card.text


def test_eval_and_predict_load_the_adapter(lora_run):
    d, out, _ = lora_run
    code, stdout, err = run_cli("eval", "--model", str(out), "--data", str(d / "dev.tsv"), "--json")
    assert code == 0, err
    got = json.loads(stdout)
    best = json.loads((out / "metrics.json").read_text())["best_metrics"]
    assert got["loss"] == pytest.approx(best["loss"], abs=1e-6) and got["accuracy"] == best["accuracy"]
    (d / "in.txt").write_text("a gorgeous , witty movie\nthe plot is nothing but clichés\n")
    code, stdout, err = run_cli("predict", "--model", str(out), str(d / "in.txt"))
    assert code == 0, err
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert [x["line"] for x in lines] == [1, 2] and {x["label"] for x in lines} <= {"negative", "positive"}


def test_export_merge_gives_a_plain_model_with_the_same_logits(lora_run):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ftkit.models import saved

    d, out, _ = lora_run
    merged = d / "merged"
    code, _, err = run_cli("export", "--merge", "--model", str(out), "--output", str(merged))
    assert code == 0, err
    plain = AutoModelForSequenceClassification.from_pretrained(str(merged)).eval()  # no peft involved
    tok = AutoTokenizer.from_pretrained(str(merged))
    batch = tok(["a gorgeous , witty movie", "dull"], padding=True, return_tensors="pt")
    want = saved.load_model(str(out), registry.entry("cls"))(**batch).logits
    assert torch.allclose(plain(**batch).logits, want, atol=1e-5)
    assert plain.config.id2label == {0: "negative", 1: "positive"}
    card = (merged / "README.md").read_text()
    assert "merged into its base model" in card and "library_name: transformers" in card
    code, _, err = run_cli("export", "--merge", "--model", str(out), "--output", str(merged))
    assert code == 2 and "holds files" in err  # never overwritten


def test_freeze_keeps_the_frozen_weights(tmp_path, base):
    recipe = cls_recipe(tmp_path, base, strategy="freeze", freeze_embeddings=True, freeze_layers=1)
    code, _, err = run_cli("finetune", "--task", "cls", "-r", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert code == 0, err
    assert "finetune.strategy freeze: trainable parameters:" in err
    before, after = load_file(str(base / "model.safetensors")), load_file(str(tmp_path / "run" / "model.safetensors"))
    for k, v in after.items():
        name = k.removeprefix("bert.")
        if name.startswith(("embeddings.", "encoder.layer.0.")):
            assert torch.equal(v, before[name]), k
    assert not torch.equal(after["bert.encoder.layer.1.attention.self.query.weight"],
                           before["encoder.layer.1.attention.self.query.weight"])


def test_prompt_adapter_cannot_be_merged_but_loads(tmp_path, base):
    recipe = cls_recipe(tmp_path, base, strategy="prompt", num_virtual_tokens=4)
    recipe["train"]["max_steps"] = 2
    code, _, err = run_cli("finetune", "--task", "cls", "-r", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert code == 0, err
    code, stdout, err = run_cli("eval", "--model", str(tmp_path / "run"), "--json")
    assert code == 0, err and json.loads(stdout)["examples"] == 32
    code, _, err = run_cli("export", "--merge", "--model", str(tmp_path / "run"), "--output", str(tmp_path / "m"))
    assert code == 2 and "prompt_tuning adapter adds virtual tokens" in err and not (tmp_path / "m").exists()


def test_unknown_lora_target_is_one_line_and_writes_nothing(tmp_path, base):
    recipe = cls_recipe(tmp_path, base, strategy="lora", target_modules=["q_proj"])
    code, _, err = run_cli("finetune", "--task", "cls", "-r", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert code == 2, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: finetune.target_modules: q_proj not in BertForSequenceClassification") and "query" in line
    assert not (tmp_path / "run").exists()


def test_causal_lm_lora_generate_and_distill(tmp_path, tiny_gpt_recipe):
    first = dict(tiny_gpt_recipe, train={**tiny_gpt_recipe["train"], "max_steps": 4, "eval_every": 4})
    code, _, err = run_cli("pretrain", "-r", str(write_recipe(tmp_path / "gpt.yaml", first)))
    assert code == 0, err
    tuned = dict(first, output_dir=str(tmp_path / "lora"), tokenizer=None,
                 model={"from_pretrained": first["output_dir"]}, finetune={"strategy": "lora", "lora_r": 2})
    code, _, err = run_cli("pretrain", "-r", str(write_recipe(tmp_path / "lora.yaml", tuned)))
    assert code == 0, err
    assert "trainable parameters: 512 of" in err  # 2 layers x c_attn r (32 + 96)
    assert (tmp_path / "lora" / "adapter_model.safetensors").is_file()
    code, stdout, err = run_cli("generate", "--model", str(tmp_path / "lora"), "--prompt", "ROMEO:", "--max-new-tokens", "20")
    assert code == 0, err and stdout.startswith("ROMEO:")
    code, stdout, err = run_cli("eval", "--model", str(tmp_path / "lora"), "--json", "--batch-size", "8", "--max-batches", "4")
    assert code == 0, err
    best = json.loads((tmp_path / "lora" / "metrics.json").read_text())["best_metrics"]
    assert json.loads(stdout)["loss"] == pytest.approx(best["loss"], abs=1e-5)
    # the same GPT as a teacher: a 1-layer student distilled on its soft targets (the clm path of `compress distill`)
    student = dict(first, output_dir=str(tmp_path / "student"), tokenizer=None, model={"from_pretrained": first["output_dir"]},
                   distill={"student_layers": 1}, train={**first["train"], "max_steps": 2, "eval_every": 2})
    code, _, err = run_cli("compress", "distill", "-r", str(write_recipe(tmp_path / "student.yaml", student)))
    assert code == 0, err
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(str(tmp_path / "student")).config.n_layer == 1
