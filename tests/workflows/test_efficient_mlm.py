"""The compute-efficient masked-LM recipe's pieces: a ModernBERT (pre-LN, no biases) pre-trained through the CLI on
IMDB slices, loaded by plain transformers as a fill-mask model and sequence / token classifiers and fine-tuned by
ftkit; dropout off really off; settings derived from others follow the recipe (layer_types)."""

import json
from pathlib import Path

import pytest
import torch

from conftest import run_cli, write_recipe
from encoder_helpers import IMDB_TEST, FakeTokenizer, write_imdb_slice, write_sst2_slice

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out

SMALL = {"num_hidden_layers": 3, "hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 96}


@pytest.fixture(scope="module")
def modernbert_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("modernbert")
    imdb = write_imdb_slice(tmp / "imdb.jsonl", 120, every=40)
    held_out = write_imdb_slice(tmp / "imdb_test.jsonl", 30, every=150, source=IMDB_TEST)
    recipe = {
        "task": "mlm", "output_dir": str(tmp / "run"),
        "tokenizer": {"kind": "wordpiece", "path": str(tmp / "tok"), "vocab_size": 1500, "lowercase": True},
        "model": {"model_type": "modernbert", "config": SMALL},
        "data": {"train": str(imdb), "validation": str(held_out), "block_size": 64, "cache_dir": str(tmp / "cache")},
        "masking": {"probability": 0.3, "eval_probability": 0.15, "mask_random_keep": [1.0, 0.0, 0.0]},
        "train": {"max_steps": 40, "batch_size": 16, "lr": 2e-3, "warmup_steps": 5, "eval_every": 20, "eval_batches": 4,
                  "log_every": 10, "precision": "fp32", "dropout": 0.0, "schedule": "wsd"},
    }
    path = write_recipe(tmp / "modernbert.yaml", recipe)
    for command in ("tokenize", "pretrain"):
        code, _, err = run_cli(command, "-r", str(path))
        assert code == 0, err
    return tmp, Path(recipe["output_dir"])


def test_modernbert_pretrains_with_the_recipe_settings(modernbert_run):
    _, out = modernbert_run
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["eval_loss"] < lines[0]["eval_loss"] < 7.5  # it learns (ln 1500 = 7.3 at chance)
    assert lines[-1]["eval_masked_accuracy"] > 20 / 1500  # far above chance (1 / 1,500); 40 steps reach the frequent words
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["ModernBertForMaskedLM"]
    # derived from the recipe's num_hidden_layers (set after construction, it kept ModernBERT's 22 and failed to save)
    assert len(config["layer_types"]) == SMALL["num_hidden_layers"]
    assert not (config["attention_bias"] or config["mlp_bias"] or config["norm_bias"])  # bias off
    assert all(config[k] == 0.0 for k in config if "dropout" in k)  # dropout off, in the saved config too
    # special ids from this tokenizer, not ModernBERT's defaults (50281 / 50282, outside a 1,500-token vocabulary)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(out))
    assert (config["cls_token_id"], config["sep_token_id"], config["pad_token_id"]) == (
        tok.cls_token_id, tok.sep_token_id, tok.pad_token_id)
    assert all(config[k] is None or config[k] < config["vocab_size"] for k in config if k.endswith("_token_id"))


def test_plain_transformers_load_it_as_fill_mask_and_classifiers(modernbert_run):
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, pipeline

    _, out = modernbert_run
    top = pipeline("fill-mask", model=str(out))("this movie was [MASK] .")
    assert len(top) == 5 and all(t["token_str"] for t in top)
    for auto in (AutoModelForSequenceClassification, AutoModelForTokenClassification):
        model, info = auto.from_pretrained(str(out), num_labels=3, output_loading_info=True)
        # only the new head is new: every encoder weight comes from the run
        assert info["missing_keys"] and all(not k.startswith("model.") for k in info["missing_keys"]), info["missing_keys"]


def test_finetune_cls_from_it(modernbert_run):
    tmp, out = modernbert_run
    sst = write_sst2_slice(tmp / "sst.tsv", 200)
    recipe = {"task": "cls", "output_dir": str(tmp / "cls"), "model": {"from_pretrained": str(out)},
              "data": {"train": str(sst), "validation_split": 0.2, "text_column": "sentence", "label_column": "label",
                       "block_size": 64, "cache_dir": str(tmp / "cache")},
              "train": {"max_steps": 6, "batch_size": 16, "lr": 1e-3, "eval_every": 0, "precision": "fp32",
                        "dropout": 0.1}}
    code, _, err = run_cli("finetune", "--task", "cls", "-r", str(write_recipe(tmp / "cls.yaml", recipe)))
    assert code == 0, err
    config = json.loads((tmp / "cls" / "config.json").read_text())
    assert config["architectures"] == ["ModernBertForSequenceClassification"] and config["mlp_dropout"] == 0.1


@pytest.mark.parametrize("model_type, config", [
    ("bert", {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}),
    ("modernbert", {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 48}),
])
def test_dropout_off_is_really_off(model_type, config):
    """train.dropout: 0 leaves no dropout anywhere: two forward passes in training mode agree exactly; 0.1 does not."""
    from ftkit import registry
    from ftkit.models.build import build_model
    from ftkit.models.fast_paths import use_fast_paths
    from ftkit.recipe.schema import Recipe

    outputs = {}
    for p in (0.0, 0.1):
        recipe = Recipe.model_validate({"task": "mlm", "output_dir": "unused", "data": {"train": "unused", "block_size": 30},
                                        "model": {"model_type": model_type, "config": config}, "train": {"dropout": p},
                                        "tokenizer": {"path": "unused"}})
        torch.manual_seed(0)
        model = build_model(recipe, FakeTokenizer(), registry.entry("mlm")).train()
        use_fast_paths(model)  # as the train workflow on CPU: the swapped dropout modules must keep p
        ps = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
        ps += [v for k, v in model.config.to_dict().items() if isinstance(v, float) and "dropout" in k and "classifier" not in k]
        assert ps and all(x == p for x in ps), (model_type, p, ps)
        ids = torch.randint(5, 300, (4, 30))
        outputs[p] = [model(input_ids=ids).logits for _ in range(2)]
    assert torch.equal(*outputs[0.0])
    assert not torch.allclose(*outputs[0.1])
