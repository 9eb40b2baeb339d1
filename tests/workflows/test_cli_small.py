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
