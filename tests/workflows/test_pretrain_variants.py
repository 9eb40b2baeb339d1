"""Pre-training variants: streaming with a token budget, a llama model, validation from a separate file."""

import json
from pathlib import Path

from conftest import run_cli, write_recipe


def test_streaming_with_token_budget(tmp_path, tiny_gpt_recipe, shakespeare_slice):
    text = shakespeare_slice.read_text()
    cut = int(len(text) * 0.9)
    (tmp_path / "train.txt").write_text(text[:cut])
    (tmp_path / "val.txt").write_text(text[cut:])
    tiny_gpt_recipe["data"].update(train=str(tmp_path / "train.txt"), validation=str(tmp_path / "val.txt"),
                                   validation_split=0.0, streaming=True, shuffle_buffer=100)
    tiny_gpt_recipe["train"].update(max_steps=None, max_tokens=8 * 32 * 12, eval_every=6)
    code, _, err = run_cli("pretrain", "-r", str(write_recipe(tmp_path / "r.yaml", tiny_gpt_recipe)))
    assert code == 0, err
    m = json.loads((Path(tiny_gpt_recipe["output_dir"]) / "metrics.json").read_text())
    assert m["steps"] == 12 and m["tokens"] == 8 * 32 * 12
    lines = [json.loads(l) for l in (Path(tiny_gpt_recipe["output_dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["eval_loss"] < lines[0]["eval_loss"]


def test_llama_builds_trains_and_loads(tmp_path, tiny_gpt_recipe):
    from transformers import AutoModelForCausalLM

    tiny_gpt_recipe["model"] = {"model_type": "llama", "config": {
        "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
        "num_key_value_heads": 1}}
    tiny_gpt_recipe["train"].update(max_steps=10, eval_every=5)
    code, _, err = run_cli("pretrain", "-r", str(write_recipe(tmp_path / "r.yaml", tiny_gpt_recipe)))
    assert code == 0, err
    out = Path(tiny_gpt_recipe["output_dir"])
    model = AutoModelForCausalLM.from_pretrained(out)
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.max_position_embeddings == 32
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["eval_loss"] < lines[0]["eval_loss"]


def test_unknown_model_config_key_is_an_error(tmp_path, tiny_gpt_recipe):
    tiny_gpt_recipe["model"]["config"]["n_layers"] = 2
    code, _, err = run_cli("pretrain", "-r", str(write_recipe(tmp_path / "r.yaml", tiny_gpt_recipe)))
    assert code == 2 and "model.config.n_layers: not a setting of GPT2Config" in err
    assert not Path(tiny_gpt_recipe["output_dir"]).exists()  # a failed pre-flight leaves no half-made run
