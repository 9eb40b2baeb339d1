"""`ftkit push` (every check before any upload; what goes up) and `train.report_to` (trackers through accelerate)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from conftest import fails, run_cli, write_recipe

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out


@pytest.fixture
def gpt_run(tmp_path, tiny_gpt_recipe):
    code, _, err = run_cli("pretrain", "-r", str(write_recipe(tmp_path / "r.yaml", tiny_gpt_recipe)))
    assert code == 0, err
    return Path(tiny_gpt_recipe["output_dir"])


class FakeApi:
    """HfApi as the hub would answer; records what would be uploaded. `token`: good (write), read, bad;
    `public`: repos that exist and are public; `refuse`: commits answered with a 403."""
    calls: list = []
    public: set = set()
    refuse = False

    def __init__(self, token=None):
        self.token = token

    def whoami(self):
        if self.token not in ("good", "read"):
            raise RuntimeError("401 Client Error: Unauthorized for url: https://huggingface.co/api/whoami-v2")
        return {"name": "someone", "auth": {"accessToken": {"role": "write" if self.token == "good" else "read"}}}

    def create_repo(self, repo_id, **kw):
        FakeApi.calls.append(("create_repo", repo_id, kw))
        return f"https://huggingface.co/{repo_id}"

    def repo_info(self, repo_id, **kw):
        return type("Info", (), {"private": repo_id not in FakeApi.public})()

    def create_commit(self, repo_id, operations, **kw):
        if FakeApi.refuse:
            raise RuntimeError("403 Forbidden: You don't have the rights to create a model under the namespace")
        FakeApi.calls.append(("create_commit", {op.path_in_repo: op.path_or_fileobj for op in operations}, kw))


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub
    from huggingface_hub import constants

    FakeApi.calls, FakeApi.public, FakeApi.refuse = [], set(), False
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "good")
    return monkeypatch


def test_push_refuses_before_uploading_anything(gpt_run, tmp_path, hub):
    import huggingface_hub
    from huggingface_hub import constants

    assert "has no config.json" in fails("push", "--model", str(tmp_path), "--repo-id", "someone/x")
    ckpt = next((gpt_run / "checkpoints").iterdir())
    assert "is a resumable training checkpoint" in fails("push", "--model", str(ckpt), "--repo-id", "someone/x")
    for bad in ("not an id", "a/b/c", "someone/x..y"):
        assert "is not a hub repository id" in fails("push", "--model", str(gpt_run), "--repo-id", bad)
    hub.setattr(huggingface_hub, "get_token", lambda: None)
    assert "no Hugging Face token" in fails("push", "--model", str(gpt_run), "--repo-id", "someone/x")
    hub.setattr(huggingface_hub, "get_token", lambda: "read")
    assert "the token is read-only" in fails("push", "--model", str(gpt_run), "--repo-id", "someone/x")
    hub.setattr(huggingface_hub, "get_token", lambda: "bad")
    line = fails("push", "--model", str(gpt_run), "--repo-id", "someone/x")
    assert "did not accept the token" in line and "nothing was uploaded" in line
    hub.setattr(constants, "HF_HUB_OFFLINE", True)
    assert "HF_HUB_OFFLINE is set" in fails("push", "--model", str(gpt_run), "--repo-id", "someone/x")
    assert FakeApi.calls == []
    hub.setattr(constants, "HF_HUB_OFFLINE", False)
    hub.setattr(huggingface_hub, "get_token", lambda: "good")
    FakeApi.public = {"someone/open"}
    assert "already exists and is public; nothing was uploaded" in fails(
        "push", "--model", str(gpt_run), "--repo-id", "someone/open", "--private")
    FakeApi.refuse = True
    assert "403 Forbidden" in fails("push", "--model", str(gpt_run), "--repo-id", "someone/x")
    assert [c[0] for c in FakeApi.calls] == ["create_repo", "create_repo"]  # no commit went through


def test_push_uploads_the_model_and_its_card_in_one_commit_not_the_checkpoints(gpt_run, hub):
    before = (gpt_run / "README.md").read_text()
    (gpt_run / "tensorboard").mkdir()  # a run from before train.report_to kept its events here
    (gpt_run / "tensorboard" / "events.out.tfevents.1").write_text("x")
    code, _, err = run_cli("push", "--model", str(gpt_run), "--repo-id", "someone/tiny-gpt", "--private")
    assert code == 0, err
    (_, repo, kw), (_, files, _) = FakeApi.calls
    assert repo == "someone/tiny-gpt" and kw["private"] is True
    assert {"config.json", "model.safetensors", "recipe.yaml", "metrics.json", "training_curves.png", "README.md"} <= set(files)
    assert not [f for f in files if f.startswith(("checkpoints/", "logs/", "tensorboard/")) or f == "run.json"]
    assert 'pipeline("text-generation", model="someone/tiny-gpt")' in files["README.md"].decode()
    assert (gpt_run / "README.md").read_text() == before  # the local card keeps the local path


def test_push_uploads_a_users_own_readme_as_it_is(gpt_run, hub):
    (gpt_run / "README.md").write_text("my own card\n")
    code, _, err = run_cli("push", "--model", str(gpt_run), "--repo-id", "someone/tiny-gpt")
    assert code == 0, err
    files = FakeApi.calls[-1][1]
    assert files["README.md"] == str(gpt_run / "README.md") and (gpt_run / "README.md").read_text() == "my own card\n"


def test_unknown_or_missing_trackers_are_refused_before_the_run(tmp_path, tiny_gpt_recipe, monkeypatch):
    recipe = dict(tiny_gpt_recipe, train={**tiny_gpt_recipe["train"], "report_to": ["tensorbored"]})
    line = fails("pretrain", "-r", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert "train.report_to: unknown tracker 'tensorbored'; expected some of" in line and "wandb" in line
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    recipe["train"]["report_to"] = ["wandb"]
    line = fails("pretrain", "-r", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert line.endswith("train.report_to: wandb needs the wandb package, which is not installed: pip install 'ftkit[wandb]'")
    assert not Path(recipe["output_dir"]).exists()


def test_tensorboard_holds_the_hyperparameters_and_the_metrics(tmp_path, tiny_gpt_recipe):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    recipe = dict(tiny_gpt_recipe, train={**tiny_gpt_recipe["train"], "report_to": ["tensorboard"]})
    code, _, err = run_cli("pretrain", "-r", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert code == 0, err
    events = next((Path(recipe["output_dir"]) / "logs" / "run").glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(events))
    acc.Reload()
    loss = [e.value for e in acc.Scalars("train/loss")]
    logged = [json.loads(l)["loss"] for l in (Path(recipe["output_dir"]) / "train_log.jsonl").read_text().splitlines()]
    assert loss == pytest.approx(logged, rel=1e-5)
    assert [e.step for e in acc.Scalars("eval/loss")] == [10, 20]
    hparams = next((Path(recipe["output_dir"]) / "logs").rglob("hparams.yml")).read_text()
    assert "train.lr: 0.003" in hparams and "model.model_type: gpt2" in hparams


def test_mlflow_file_store_holds_params_and_metrics(tmp_path, tiny_gpt_recipe, monkeypatch):
    pytest.importorskip("mlflow", reason="extra mlflow not installed")
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3.x keeps the file store behind this switch
    recipe = dict(tiny_gpt_recipe, train={**tiny_gpt_recipe["train"], "report_to": ["mlflow"]})
    code, _, err = run_cli("pretrain", "-r", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert code == 0, err
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.as_uri())
    (exp,) = [e for e in client.search_experiments() if e.name == "run"]
    (run,) = client.search_runs([exp.experiment_id])
    assert run.data.params["train.lr"] == "0.003" and run.data.params["task"] == "clm"
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in history] == [5, 10, 15, 20]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "eval/loss")] == [10, 20]


def wandb_records(path: Path):
    """The records of an offline W&B run file (run-ID.wandb: LevelDB's log format — 32 KiB blocks of chunks with a
    7-byte header, crc32 / length / kind — after a 7-byte file header; each record a protobuf Record). wandb 0.31
    has no public reader for it."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, buf = path.read_bytes(), 7, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:  # block padding
            pos += left
            continue
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        buf = chunk if kind in (1, 2) else buf + chunk
        if kind in (1, 4):  # a full record, or the last chunk of one
            rec = pb.Record()
            rec.ParseFromString(buf)
            yield rec


def test_wandb_offline_run_holds_the_metrics(tmp_path, tiny_gpt_recipe, monkeypatch):
    pytest.importorskip("wandb", reason="extra wandb not installed")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    recipe = dict(tiny_gpt_recipe, train={**tiny_gpt_recipe["train"], "report_to": ["wandb"]})
    code, _, err = run_cli("pretrain", "-r", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert code == 0, err
    (run_file,) = (Path(recipe["output_dir"]) / "logs").rglob("offline-run-*/run-*.wandb")
    records = list(wandb_records(run_file))
    history = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
               for r in records if r.HasField("history")]
    config = {u.key or "/".join(u.nested_key): json.loads(u.value_json)
              for r in records if r.HasField("config") for u in r.config.update}
    logged = [json.loads(l) for l in (Path(recipe["output_dir"]) / "train_log.jsonl").read_text().splitlines()]
    assert [h["_step"] for h in history] == [5, 10, 15, 20]
    assert [h["train/loss"] for h in history] == pytest.approx([r["loss"] for r in logged], rel=1e-6)
    assert [h["_step"] for h in history if "eval/loss" in h] == [10, 20]
    assert config["train.lr"] == 0.003 and config["task"] == "clm"
