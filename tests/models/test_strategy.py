"""Fine-tuning strategies on tiny models: exact trainable-parameter counts, and save -> load round trips
(adapters in PEFT format, rebuilt by models/saved.py) that reproduce the logits."""

from pathlib import Path

import pytest
import torch

from ftkit import registry
from ftkit.errors import UserError
from ftkit.models import saved
from ftkit.models.build import count_parameters
from ftkit.models.strategy import apply_strategy, save_weights
from ftkit.recipe.schema import FinetuneSection

from tiny_models import FFN, LAYERS, POS, H, minilm_tokenizer, tiny_bert_classifier, tiny_gpt


def bert_counts(vocab: int) -> dict:
    """Parameter counts of the tiny BERT classifier, from the architecture (independently of the code under test)."""
    emb = vocab * H + POS * H + 2 * H + 2 * H  # word, position, token-type tables, LayerNorm
    layer = 4 * (H * H + H) + 2 * H + (H * FFN + FFN) + (FFN * H + H) + 2 * H
    return {"emb": emb, "layer": layer, "pooler": H * H + H, "head": 2 * H + 2}


@pytest.fixture(scope="module")
def tok():
    return minilm_tokenizer()


def loaded_classifier(tmp: Path, tok):
    """A classifier loaded from disk (so adapters record where their base is), as the workflows build it."""
    from transformers import AutoModelForSequenceClassification

    tiny_bert_classifier(tok).save_pretrained(str(tmp / "base"))
    return AutoModelForSequenceClassification.from_pretrained(str(tmp / "base"))


def test_freeze_counts_are_exact(tmp_path, tok):
    c = bert_counts(len(tok))
    model = loaded_classifier(tmp_path, tok)
    _, total = count_parameters(model)
    assert total == c["emb"] + LAYERS * c["layer"] + c["pooler"] + c["head"]
    apply_strategy(model, FinetuneSection(strategy="freeze", freeze_embeddings=True, freeze_layers=1), registry.entry("cls"), log=lambda m: None)
    trainable, _ = count_parameters(model)
    assert trainable == total - c["emb"] - c["layer"]
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert all(n.startswith(("bert.embeddings.", "bert.encoder.layer.0.")) for n in frozen)
    with pytest.raises(UserError, match="more than the model's 2 layers"):
        apply_strategy(loaded_classifier(tmp_path, tok), FinetuneSection(strategy="freeze", freeze_layers=3), registry.entry("cls"))


@pytest.mark.parametrize("strategy,expected", [
    ("lora", lambda r, v: LAYERS * 2 * r * (H + H)),        # query and value: A (r x H) + B (H x r)
    ("prefix", lambda r, v: v * LAYERS * 2 * H),            # a key and a value vector per layer per virtual token
    ("prompt", lambda r, v: v * H),                          # one input embedding per virtual token
])
def test_adapter_counts_and_round_trip_cls(tmp_path, tok, strategy, expected):
    c = bert_counts(len(tok))
    model = loaded_classifier(tmp_path, tok)
    cfg = FinetuneSection(strategy=strategy, lora_r=4, target_modules=["query", "value"] if strategy == "lora" else None,
                          num_virtual_tokens=5)
    logs = []
    model = apply_strategy(model, cfg, registry.entry("cls"), log=logs.append)
    trainable, total = count_parameters(model)
    assert trainable == expected(4, 5) + c["head"]  # + the classifier (peft's modules_to_save)
    assert f"trainable parameters: {trainable:,} of {total:,}" in logs[0]
    torch.manual_seed(1)
    with torch.no_grad():  # move every trainable weight (LoRA's B starts at zero, which would hide a lost adapter)
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.5)
    model.eval()
    batch = tok(["a gorgeous , witty movie", "boilerplate clichés all the way"], padding=True, return_tensors="pt")
    batch.pop("token_type_ids")
    want = model(**batch).logits
    out = tmp_path / "adapter"
    out.mkdir()
    save_weights(model, out, model.state_dict())
    assert {p.name for p in out.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors", "base_config.json"}
    assert not (out / "model.safetensors").exists()
    again = saved.load_model(str(out), registry.entry("cls"))
    got = again(**batch).logits
    assert torch.allclose(got, want, atol=1e-6), (got, want)
    # the adapter's own weights (not only the head) reach the logits: a prefix the model ignored would pass the above
    with torch.no_grad():
        for name, p in again.named_parameters():
            if "classifier" not in name and ("lora_" in name or "prompt_encoder" in name):
                p.add_(torch.randn_like(p))  # random: a constant shift would vanish in LayerNorm
    assert not torch.allclose(again(**batch).logits, want, atol=1e-3)


@pytest.mark.parametrize("strategy", ["lora", "prefix", "prompt"])
def test_adapter_round_trip_clm(tmp_path, strategy):
    from transformers import AutoModelForCausalLM

    tiny_gpt().save_pretrained(str(tmp_path / "base"))
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "base"))
    model = apply_strategy(model, FinetuneSection(strategy=strategy, lora_r=2, num_virtual_tokens=3), registry.entry("clm"), log=lambda m: None)
    trainable, _ = count_parameters(model)
    if strategy == "lora":  # peft's default for GPT-2: c_attn (Conv1D H -> 3H)
        assert trainable == LAYERS * 2 * (H + 3 * H)
    torch.manual_seed(2)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.5)
    model.eval()
    ids = torch.randint(1, 64, (2, 12))
    want = model(input_ids=ids).logits
    out = tmp_path / "adapter"
    out.mkdir()
    save_weights(model, out)
    again = saved.load_model(str(out), registry.entry("clm"))
    assert torch.allclose(again(input_ids=ids).logits, want, atol=1e-6)
    gen = again.generate(input_ids=ids[:1, :4], attention_mask=torch.ones(1, 4, dtype=torch.long), max_new_tokens=3,
                         do_sample=False, pad_token_id=0)
    assert gen.shape[1] == 7


def test_lora_target_that_does_not_exist_lists_the_real_ones(tmp_path, tok):
    model = loaded_classifier(tmp_path, tok)
    with pytest.raises(UserError) as e:
        apply_strategy(model, FinetuneSection(strategy="lora", target_modules=["query", "q_proj"]), registry.entry("cls"))
    msg = str(e.value)
    assert "q_proj not in BertForSequenceClassification" in msg and "query" in msg.split("are:")[1] and "\n" not in msg


def test_an_adapter_moved_together_with_its_base_still_loads(tmp_path, tok):
    import json
    import shutil

    root = tmp_path / "a"
    root.mkdir()
    model = loaded_classifier(root, tok)  # base saved in a/base
    model = apply_strategy(model, FinetuneSection(strategy="lora", lora_r=2, target_modules=["query"]), registry.entry("cls"),
                           log=lambda m: None)
    model.eval()
    batch = tok(["a fine film"], return_tensors="pt")
    batch.pop("token_type_ids")
    want = model(**batch).logits
    (root / "run").mkdir()
    save_weights(model, root / "run", model.state_dict())
    assert json.loads((root / "run" / "adapter_config.json").read_text())["base_model_name_or_path"] == str(root / "base")
    shutil.move(str(root), str(tmp_path / "b"))  # the run and its base, moved together
    again = saved.load_model(str(tmp_path / "b" / "run"), registry.entry("cls"))
    assert torch.allclose(again(**batch).logits, want, atol=1e-6)
