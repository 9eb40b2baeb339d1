"""The tested-versions lock: it agrees with pyproject's ranges, and `ftkit doctor` shows installed vs tested."""

import importlib.util
import json
import re
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

from ftkit import lockfile

from conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent


def _tool():
    spec = importlib.util.spec_from_file_location("lock_tool", ROOT / "tools" / "lock.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_parse_normalizes_names_and_skips_comments():
    pins = lockfile.parse("# header\nhuggingface_hub==2.4.0\nPyYAML==6.0.3  # note\n\ntorch==2.13.0\n")
    assert pins == {"huggingface-hub": "2.4.0", "pyyaml": "6.0.3", "torch": "2.13.0"}
    assert lockfile.same_release("2.13.0+cpu", "2.13.0") and not lockfile.same_release("2.13.1", "2.13.0")
    assert not lockfile.same_release(None, "1.0")


def test_lock_pins_every_dependency_inside_pyprojects_range():
    """A lock outside pyproject's ranges (or missing a dependency) would install something never declared."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in meta["dependencies"] + sum(meta["optional-dependencies"].values(), [])]
    pins = lockfile.tested()
    assert pins, "src/ftkit/constraints.txt is missing or empty"
    for req in reqs:
        name = lockfile.normalize(req.name)
        assert name in pins, f"{req.name} is not in the lock"
        assert req.specifier.contains(pins[name]), f"lock {name}=={pins[name]} is outside pyproject's {req}"
        # the HF stack and torch have an upper bound: an upgrade is a deliberate `make upgrade`, not a surprise
        if name in ("torch", "transformers", "peft", "accelerate", "datasets", "tokenizers"):
            assert any(s.operator == "<" for s in req.specifier), f"{req} has no upper bound"


def test_upgrade_drops_only_upper_bounds():
    tool = _tool()
    assert tool.unbounded("transformers>=5.23,<5.25") == "transformers>=5.23"
    assert tool.unbounded("pytest>=8,<10") == "pytest>=8"
    assert tool.unbounded("numpy") == "numpy"
    assert all("<" not in r for r in map(tool.unbounded, tool.requirements()))


def test_doctor_warns_on_a_version_that_differs(monkeypatch):
    real = lockfile.tested()
    monkeypatch.setattr(lockfile, "tested", lambda: {**real, "transformers": "0.0.1", "peft": real["peft"]})
    rows = {r["package"]: r for r in lockfile.compare()}
    assert rows["transformers"]["ok"] is False and rows["transformers"]["tested"] == "0.0.1"
    assert rows["peft"]["ok"] is (lockfile.installed("peft") == real["peft"])
    code, out, _ = run_cli("doctor")
    assert code == 0
    line = next(l for l in out.splitlines() if "transformers" in l and "0.0.1" in l)
    assert line.strip().startswith("!!")
    warning = [l for l in out.splitlines() if l.startswith("warning:")]
    assert len(warning) == 1 and "transformers" in warning[0] and "constraints.txt" in warning[0]
    code, out, _ = run_cli("doctor", "--json")
    tv = {r["package"]: r for r in json.loads(out)["tested_versions"]}
    assert tv["transformers"] == {"package": "transformers", "installed": lockfile.installed("transformers"),
                                  "tested": "0.0.1", "ok": False}


def test_doctor_without_mismatch_has_no_warning(monkeypatch):
    have = {n: lockfile.installed(n) for n in lockfile.KEY_PACKAGES}
    monkeypatch.setattr(lockfile, "tested", lambda: {lockfile.normalize(n): v for n, v in have.items() if v})
    _, out, _ = run_cli("doctor")
    assert "warning:" not in out
    assert re.search(r"ok transformers\s+\S+\s+\S+", out)


def _without(monkeypatch, *names):
    """This environment with `names` uninstalled (as importlib.metadata would tell)."""
    real = lockfile.installed
    monkeypatch.setattr(lockfile, "installed", lambda n: None if lockfile.normalize(n) in names else real(n))


def test_doctor_lists_an_extra_that_is_not_installed_apart_not_as_a_difference(monkeypatch):
    """A default install leaves the bench extra (trl) out: that is no mismatch, and the hint names the extra."""
    real = lockfile.tested()
    monkeypatch.setattr(lockfile, "tested", lambda: {**real, "trl": "1.16.0"})
    _without(monkeypatch, "trl")
    assert lockfile.extras()["trl"] == "bench"
    assert "trl" not in {r["package"] for r in lockfile.compare()}
    assert lockfile.not_installed() == [{"package": "trl", "tested": "1.16.0", "extra": "bench"}]
    code, out, _ = run_cli("doctor")
    assert code == 0 and "warning:" not in out
    assert not [l for l in out.splitlines() if l.strip().startswith("!!")]
    line = next(l for l in out.splitlines() if "trl" in l)
    assert "not installed (extra `bench`: trl 1.16.0)" in line and "-e '.[bench]'" in line


def test_doctor_still_flags_a_missing_core_package_and_names_the_extras_to_reinstall(monkeypatch):
    real = lockfile.tested()
    monkeypatch.setattr(lockfile, "tested", lambda: {**real, "matplotlib": "0.0.1"})
    _without(monkeypatch, "safetensors")  # core: needed whatever the extras
    rows = {r["package"]: r for r in lockfile.compare()}
    assert rows["safetensors"]["ok"] is False and rows["safetensors"]["installed"] is None
    assert rows["matplotlib"]["ok"] is False  # an installed extra's package is compared
    _, out, _ = run_cli("doctor")
    assert re.search(r"!! safetensors\s+not installed", out)
    warning = next(l for l in out.splitlines() if l.startswith("warning:"))
    assert "2 package(s)" in warning and "-e '.[plots]'" in warning
