"""Small CLI behaviours a new user hit: `ftkit --version` alone, `generate` on a model that is not a causal LM."""

from conftest import fails, run_cli
from tiny_models import minilm_tokenizer, tiny_bert_classifier


def test_version_alone():
    from ftkit import __version__

    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"ftkit {__version__}"


def test_generate_refuses_a_classifier(tmp_path):
    tok = minilm_tokenizer()
    tiny_bert_classifier(tok).save_pretrained(str(tmp_path / "cls"))
    tok.save_pretrained(str(tmp_path / "cls"))
    line = fails("generate", "--model", str(tmp_path / "cls"), "--prompt", "hello")
    assert "is a cls model, not a causal language model" in line


def test_help_has_no_type_noise_and_one_example_per_command():
    from ftkit.cli import EXAMPLES

    for command in EXAMPLES:
        code, out, _ = run_cli(*command.split(), "--help")
        assert code == 0, command
        assert "<bool>" not in out and "<str>" not in out and "<int" not in out, (command, out)
        assert f"Example:\n  {EXAMPLES[command]}" in out.replace("\n    ", "\n  "), command
    _, out, _ = run_cli("eval", "--help")
    assert "--json " in out and "--model DIR" in out and "--batch-size N" in out


def test_progress_lines_without_a_terminal():
    from ftkit.engine.progress import Progress, eta_text

    lines = []
    p = Progress(4, "eval batches", lines.append, every_s=0)
    for _ in range(4):
        p.update()
    assert lines[0].startswith("eval batches: 1/4 (0:00 elapsed, ETA") and len(lines) == 4
    assert eta_text(1, 4, 30) == "0:30 elapsed, ETA 1:30" and eta_text(0, None, 3725) == "1:02:05 elapsed"


def test_library_warnings_are_summed_up_in_one_line(monkeypatch):
    import warnings

    import ftkit.cli.entry as cli

    def noisy():
        warnings.warn("something deprecated", FutureWarning, stacklevel=1)
        warnings.warn("something deprecated", FutureWarning, stacklevel=1)
        cli.typer.echo("ftkit 0.1.0")

    monkeypatch.setattr(cli, "_command", lambda: lambda prog_name: noisy())
    code, out, err = run_cli("--version")
    assert out.strip() == "ftkit 0.1.0"
    notes = [l for l in err.splitlines() if l.startswith("note:")]
    assert len(notes) == 1 and "1 library warning(s) hidden" in notes[0] and "FutureWarning" in notes[0]
    code, out, err = run_cli("--debug", "--version")
    assert "note:" not in err


def test_an_existing_tokenizer_with_other_settings_is_an_error(tmp_path, tiny_gpt_recipe):
    from conftest import write_recipe

    tiny_gpt_recipe["tokenizer"].update(kind="bpe", vocab_size=300)
    tiny_gpt_recipe["train"].update(max_steps=2, eval_every=0)
    r = write_recipe(tmp_path / "r.yaml", tiny_gpt_recipe)
    assert run_cli("tokenize", "-r", str(r))[0] == 0
    line = fails("pretrain", "-r", str(r), "tokenizer.vocab_size=400")
    assert "tokenizer.vocab_size: " in line and "trained with vocab_size 300, the recipe asks for 400" in line
    assert not (tmp_path / "run").exists()
    code, _, err = run_cli("tokenize", "-r", str(r), "tokenizer.vocab_size=400", "--overwrite")
    assert code == 0, err
    assert run_cli("pretrain", "-r", str(r), "tokenizer.vocab_size=400")[0] == 0


def test_plain_text_lines_get_no_eos_by_default():
    from ftkit.recipe import validate

    base = {"task": "clm", "output_dir": "o", "tokenizer": {"path": "t", "kind": "char"}, "model": {"model_type": "gpt2"}}
    assert validate({**base, "data": {"train": "corpus.txt"}}).data.add_eos is False
    assert validate({**base, "data": {"train": "corpus.txt", "sample_by": "paragraph"}}).data.add_eos is True
    assert validate({**base, "data": {"train": "reviews.jsonl"}}).data.add_eos is True
    assert validate({**base, "data": {"train": "corpus.txt", "add_eos": True}}).data.add_eos is True


def test_shipped_recipes_list_show_new_outside_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./recipes here: the packaged ones
    code, out, err = run_cli("recipes", "list")
    assert code == 0 and "recipes in" in err
    assert any(l.startswith("wnut17-minilm.yaml") and " ner " in l for l in out.splitlines())
    code, out, _ = run_cli("recipes", "show", "sst2-minilm-quick", "train.lr=5e-5")
    assert code == 0 and "lr: 5.0e-05" in out
    code, _, err = run_cli("recipes", "new", "my-spam", "--from", "sms-spam-minilm")
    assert code == 0 and (tmp_path / "my-spam.yaml").is_file()
    code, out, _ = run_cli("recipes", "show", "my-spam.yaml")
    assert code == 0 and "output_dir: runs/my-spam" in out and "task: cls" in out
    assert "exists; choose another NAME" in fails("recipes", "new", "my-spam", "--from", "sms-spam-minilm")
    code, out, _ = run_cli("finetune", "--task", "ner", "-r", "wnut17-minilm", "--print-config")
    assert code == 0 and "task: ner" in out


def test_keep_checkpoints_at_end_flag_sets_the_recipe_key():
    code, out, _ = run_cli("pretrain", "-r", "gpt-shakespeare-char", "--keep-checkpoints-at-end", "0", "--print-config")
    assert code == 0 and "keep_checkpoints_at_end: 0" in out


def test_generate_names_an_image_classifier_with_its_article(tmp_path):
    from transformers import ViTConfig

    ViTConfig(architectures=["ViTForImageClassification"]).save_pretrained(str(tmp_path / "vit"))
    line = fails("generate", "--model", str(tmp_path / "vit"), "--prompt", "hello")
    assert "is an image-cls model, not a causal language model" in line
