"""GGUF files as starting points: a tiny Llama written with the `gguf` package (llama.cpp's layout) round-trips
exactly through `ftkit export --from-gguf` into a plain transformers directory; bad files are one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import fails, run_cli, tiny_llama

pytest.importorskip("gguf")


@pytest.fixture
def tiny_gguf(tmp_path):
    from tiny_gguf import tiny_chat_tokenizer, write_tiny_llama_gguf

    tok = tiny_chat_tokenizer(tmp_path / "tok")
    model = tiny_llama(tok).eval()
    return model, tok, write_tiny_llama_gguf(model, tok, tmp_path / "tiny.gguf")


def test_export_from_gguf_round_trips_exactly(tiny_gguf, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    model, tok, path = tiny_gguf
    code, _, err = run_cli("export", "--from-gguf", str(path), "--output", str(tmp_path / "out"))
    assert code == 0, err
    out = tmp_path / "out"
    assert (out / "model.safetensors").is_file()
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    loaded = AutoModelForCausalLM.from_pretrained(str(out)).eval()  # no gguf_file: a plain directory
    ids = torch.tensor([[1, 40, 50, 60, 2, 70]])
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)
    t = AutoTokenizer.from_pretrained(str(out))
    assert t.chat_template == tok.chat_template and t("Paris is blue")["input_ids"] == tok("Paris is blue")["input_ids"]
    assert GenerationConfig.from_pretrained(str(out)).eos_token_id == tok.eos_token_id
    # nothing is overwritten: a second export to the same directory is refused
    assert "output_dir" in fails("export", "--from-gguf", str(path), "--output", str(out))


def test_missing_and_unsupported_gguf_files_are_one_line_errors(tmp_path):
    import gguf

    assert "GGUF file not found: nowhere.gguf" in fails("export", "--from-gguf", "nowhere.gguf", "--output", str(tmp_path / "o"))
    w = gguf.GGUFWriter(str(tmp_path / "odd.gguf"), "notanarch")
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", torch.zeros(4, 4).numpy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    line = fails("export", "--from-gguf", str(tmp_path / "odd.gguf"), "--output", str(tmp_path / "o"))
    assert "odd.gguf" in line
    assert not (tmp_path / "o").exists()
