"""A rank that fails ends the whole run, soon, and the run's last line is that rank's error (not the other rank's
broken connection or the launcher's report). The failure is injected on rank 1 only, through a sitecustomize
module on the ranks' PYTHONPATH (no test hook in ftkit itself)."""

import os
import subprocess
import sys
import time

import pytest

from conftest import write_recipe

pytestmark = pytest.mark.e2e

INJECT = '''
import os
if os.environ.get("RANK") == "1":
    import ftkit.engine.loop as loop
    real, calls = loop.accumulate_gradients, []
    def failing(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            from ftkit.errors import UserError
            raise UserError("data.train: a broken row on rank 1's shard (injected)")
        return real(*a, **k)
    loop.accumulate_gradients = failing
'''


def test_a_failing_rank_ends_the_run_with_its_own_error(tmp_path, tiny_gpt_recipe):
    (tmp_path / "inject").mkdir()
    (tmp_path / "inject" / "sitecustomize.py").write_text(INJECT)
    tiny_gpt_recipe["train"].update(max_steps=200, eval_every=0)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_gpt_recipe)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(tmp_path / "inject"), os.environ.get("PYTHONPATH")) if p)}
    start = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "ftkit.cli", "pretrain", "-r", str(recipe), "--num-processes", "2"],
                       capture_output=True, text=True, timeout=180, env=env)
    took = time.perf_counter() - start
    lines = [l for l in p.stderr.splitlines() if l.strip() and not l.startswith("note: ")]
    assert p.returncode == 2, p.stderr
    assert lines[-1] == "error: rank 1: data.train: a broken row on rank 1's shard (injected)", p.stderr[-2000:]
    # (rank 0 says "another rank stopped first" when its collective breaks before the launcher stops it; the
    # launcher's SIGTERM can come first, so that line is not asserted)
    assert took < 60, took  # bounded: the launcher stops the other rank at once (~12 s here, with the start-up)
