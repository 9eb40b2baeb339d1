"""Real multi-process runs on CPU (gloo): 2 ranks (ftkit's launcher or torchrun) match 1 rank at the same global
batch; 2 'machines' on loopback train one recipe together."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_recipe

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out


def ftkit(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "ftkit.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **kw)


def finish(p: subprocess.Popen, timeout=240) -> str:
    out, _ = p.communicate(timeout=timeout)
    assert p.returncode == 0, out
    return out


def curve(out: Path) -> list[tuple]:
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["train_loss"], r["eval_loss"]) for r in rows]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def recipe(tmp_path, tiny_gpt_recipe):
    tiny_gpt_recipe["train"].update(max_steps=12, eval_every=4, log_every=4, batch_size=4, eval_batch_size=4, dropout=0.0)
    return write_recipe(tmp_path / "r.yaml", tiny_gpt_recipe), tmp_path


def test_two_processes_equal_one_at_the_same_global_batch(recipe):
    path, tmp = recipe
    finish(ftkit("pretrain", "-r", str(path), f"output_dir={tmp / 'one'}", "train.batch_size=8"))
    log = finish(ftkit("pretrain", "-r", str(path), f"output_dir={tmp / 'two'}", "--num-processes", "2"))
    assert "2 process(es)" in log
    assert json.loads((tmp / "two" / "metrics.json").read_text())["world_size"] == 2
    # started by the user under torchrun instead of ftkit's launcher
    torchrun = Path(sys.executable).parent / "torchrun"
    p = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "ftkit.cli", "pretrain", "-r",
                        str(path), f"output_dir={tmp / 'torchrun'}"], capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp / "torchrun" / "metrics.json").read_text())["world_size"] == 2
    one = curve(tmp / "one")
    assert [r[0] for r in one] == [4, 8, 12]
    for other in (curve(tmp / "two"), curve(tmp / "torchrun")):
        assert [r[0] for r in other] == [4, 8, 12]
        for (_, t1, e1), (_, t2, e2) in zip(one, other):
            assert t1 == pytest.approx(t2, rel=1e-4)  # same batches, gradients all-reduced: float-order noise only
            assert e1 == pytest.approx(e2, rel=1e-4)


def test_two_machines_on_loopback(recipe):
    path, tmp = recipe
    port = str(free_port())
    common = ["pretrain", "-r", str(path), f"output_dir={tmp / 'nodes'}", "--num-processes", "2", "--num-machines", "2",
              "--main-process-ip", "127.0.0.1", "--main-process-port", port]
    worker = ftkit(*common, "--machine-rank", "1")
    main = ftkit(*common, "--machine-rank", "0")
    main_out, _ = main.communicate(timeout=240)
    worker_out, _ = worker.communicate(timeout=240)
    assert main.returncode == 0 and worker.returncode == 0, f"main:\n{main_out}\nworker:\n{worker_out}"
    m = json.loads((tmp / "nodes" / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["steps"] == 12
    assert (tmp / "nodes" / "model.safetensors").is_file()
