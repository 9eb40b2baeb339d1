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

    import ftkit.cli as cli

    def noisy():
        warnings.warn("something deprecated", FutureWarning)
        warnings.warn("something deprecated", FutureWarning)
        cli.typer.echo("ftkit 0.1.0")

    monkeypatch.setattr(cli, "_command", lambda: lambda prog_name: noisy())
    code, out, err = run_cli("--version")
    assert out.strip() == "ftkit 0.1.0"
    notes = [l for l in err.splitlines() if l.startswith("note:")]
    assert len(notes) == 1 and "1 library warning(s) hidden" in notes[0] and "FutureWarning" in notes[0]
    code, out, err = run_cli("--debug", "--version")
    assert "note:" not in err
