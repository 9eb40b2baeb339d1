"""Looking at runs: train_log.jsonl and training_curves.png in every run, the model card, `ftkit report`."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from conftest import fails, run_cli, write_recipe
from tiny_models import cls_recipe, tiny_bert_dir

pytestmark = pytest.mark.e2e  # end-to-end runs: `make test-fast` leaves them out


def _train(tmp: Path, recipe: dict, name: str, **train) -> Path:
    recipe = json.loads(json.dumps(recipe))
    recipe["output_dir"] = str(tmp / name)
    recipe["train"].update(train)
    code, _, err = run_cli("pretrain", "-r", str(write_recipe(tmp / f"{name}.yaml", recipe)))
    assert code == 0, err
    return tmp / name


@pytest.fixture
def two_runs(tmp_path, tiny_gpt_recipe):
    return _train(tmp_path, tiny_gpt_recipe, "a"), _train(tmp_path, tiny_gpt_recipe, "b", lr=1e-3, max_steps=30)


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def test_a_run_logs_every_log_step_and_draws_its_curves(two_runs):
    a, b = two_runs
    rows = [json.loads(l) for l in (a / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10, 15, 20]
    assert all(r["tokens"] == r["step"] * 8 * 32 for r in rows) and all(r["lr"] > 0 and r["loss"] > 0 for r in rows)
    evals = [json.loads(l) for l in (a / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [10, 20] and evals[-1]["metric_for_best"] == "loss"
    assert evals[-1]["best_step"] == json.loads((a / "metrics.json").read_text())["best_step"]
    with Image.open(a / "training_curves.png") as im:
        assert im.format == "PNG" and im.width >= 800 and im.height >= 500
        # drawn, not blank: the curves take many colours
        assert len(im.convert("RGB").getcolors(1 << 20)) > 50


def test_smoothing_follows_the_trend_without_lag():
    import random

    from ftkit.engine.curves import smooth

    ramp = [10.0 - 0.01 * i for i in range(400)]
    assert smooth(ramp)[10:-10] == pytest.approx(ramp[10:-10])  # a falling loss is not drawn above itself
    rng = random.Random(0)
    noisy = [r + rng.gauss(0, 0.5) for r in ramp]
    assert sum((a - b) ** 2 for a, b in zip(smooth(noisy), ramp)) < 0.2 * sum((a - b) ** 2 for a, b in zip(noisy, ramp))
    assert smooth([3.0, 1.0]) == [3.0, 1.0]


def test_redraws_stay_within_their_share_of_the_run(tmp_path, monkeypatch):
    import time
    from types import SimpleNamespace

    from ftkit.engine import curves
    from ftkit.engine.metrics_log import MetricsLog

    drawn = []
    monkeypatch.setattr(curves, "available", lambda: True)
    monkeypatch.setattr(curves, "draw_run", lambda out, **kw: drawn.append(time.sleep(0.05)))
    log = MetricsLog(tmp_path, SimpleNamespace(is_main_process=True), metric="loss", greater=False)
    prog = SimpleNamespace(step=10, tokens=0, elapsed=100.0, best_step=10)
    log.eval(prog, {"loss": 1.0}, 1e-3)  # nothing drawn yet: draws (0.05 s of 100 s)
    prog.step, prog.elapsed = 20, 1.0  # 0.05 s would be 5 % of the run so far: skipped
    log.eval(prog, {"loss": 0.9}, 1e-3)
    log.summary({"steps": 20})  # the end: always drawn
    assert len(drawn) == 2 and log.skipped_draws == 1
    assert [json.loads(l)["step"] for l in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [10, 20]


def test_curves_can_be_switched_off_and_a_missing_matplotlib_is_said_once(tmp_path, tiny_gpt_recipe, monkeypatch):
    off = _train(tmp_path, tiny_gpt_recipe, "off", plots=False)
    assert (off / "train_log.jsonl").is_file() and not (off / "training_curves.png").exists()
    from ftkit.engine import curves

    monkeypatch.setattr(curves, "available", lambda: False)
    recipe = dict(tiny_gpt_recipe, output_dir=str(tmp_path / "nomp"))
    code, _, err = run_cli("pretrain", "-r", str(write_recipe(tmp_path / "nomp.yaml", recipe)))
    assert code == 0, err
    assert err.count("training_curves.png not drawn: matplotlib is missing: pip install 'ftkit[plots]'") == 1
    assert not (tmp_path / "nomp" / "training_curves.png").exists()


def test_report_compares_runs_and_changes_none_of_them(two_runs, tmp_path):
    a, b = two_runs
    before = _snapshot(a), _snapshot(b)
    code, _, err = run_cli("report", str(a), str(b), "-o", str(tmp_path / "r.html"))
    assert code == 0, err
    page = (tmp_path / "r.html").read_text()
    assert (_snapshot(a), _snapshot(b)) == before
    # self-contained: every picture inline, nothing fetched
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', page)) == 4  # train loss, lr, validation loss, perplexity
    assert not re.search(r'(src|href)="https?:', page)
    # the recipe keys that differ, and only those
    diff = page.split("Recipe differences")[1]
    for key in ("train.lr", "train.max_steps", "output_dir"):
        assert f"<code>{key}</code>" in diff
    assert "<code>train.batch_size</code>" not in diff
    table = page.split("<h2>Results</h2>")[1].split("</table>")[0]
    assert table.count(">finished<") == 2 and "20 / 20" in table and "30 / 30" in table and "tok/s" in table
    line = fails("report", str(a), "-o", str(tmp_path / "r.html"))
    assert "r.html exists; pass --overwrite" in line
    code, _, _ = run_cli("report", str(a), "-o", str(tmp_path / "r.html"), "--overwrite")
    assert code == 0


def test_report_of_a_live_run_of_another_task_and_of_no_run(two_runs, tmp_path):
    a, _ = two_runs
    live, fresh = tmp_path / "live", tmp_path / "fresh"
    for d, task in ((live, "cls"), (fresh, "clm")):
        d.mkdir()
        (d / "run.json").write_text(json.dumps({"status": "running", "total_steps": 40, "updated": "2026-12-02T10:00:00"}))
        (d / "recipe.yaml").write_text(f"task: {task}\ntrain: {{lr: 0.001}}\n")
    (live / "train_log.jsonl").write_text(json.dumps({"step": 5, "tokens": 0, "examples": 40, "loss": 0.69, "lr": 1e-3,
                                                      "examples_per_s": 3.5}) + "\n" + '{"step": 10, "lo')  # half written
    (live / "metrics.jsonl").write_text(json.dumps({"step": 5, "eval_loss": 0.68, "eval_accuracy": 0.61}) + "\n")
    # the first run has no evaluation yet: what the others share is still compared
    code, _, err = run_cli("report", str(fresh), str(a), str(live), "-o", str(tmp_path / "mixed.html"))
    assert code == 0, err
    assert ("warning: runs of different tasks (clm, cls): compared what they share (validation loss); "
            "left out: accuracy, perplexity") in err
    assert "warning: fresh: no evaluation yet (train loss only)" in err
    page = (tmp_path / "mixed.html").read_text()
    assert page.count(">running<") == 2 and "3.5 ex/s" in page and "accuracy 0.6100 (step 5)" in page and "5 / 40" in page
    code, out, _ = run_cli("runs", str(tmp_path))
    assert code == 0 and [l.split()[:4] for l in out.splitlines() if l.startswith("live")] == [["live", "cls", "running", "5/40"]]
    assert len(re.findall(r"<img ", page)) == 3  # train loss, learning rate, validation loss
    assert "is not a run" in fails("report", str(tmp_path), "-o", str(tmp_path / "x.html"))
    assert "is not a directory" in fails("report", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.html"))
    assert not (tmp_path / "x.html").exists()


def test_report_escapes_run_names_and_recipe_values(tmp_path):
    for name, train in (("<i>odd", "<script>alert(1)</script>"), ("plain", "train.txt")):
        d = tmp_path / name
        d.mkdir()
        (d / "run.json").write_text(json.dumps({"status": "running"}))
        (d / "recipe.yaml").write_text(json.dumps({"task": "clm", "data": {"train": train}}))
        (d / "train_log.jsonl").write_text(json.dumps({"step": 1, "tokens": 8, "loss": 2.0, "lr": 1e-3}) + "\n")
    code, _, err = run_cli("report", str(tmp_path / "<i>odd"), str(tmp_path / "plain"), "-o", str(tmp_path / "r.html"))
    assert code == 0, err
    page = (tmp_path / "r.html").read_text()
    assert "<script>" not in page and "<i>odd" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;i&gt;odd" in page


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    d = tmp_path_factory.mktemp("card")
    recipe = cls_recipe(d, tiny_bert_dir(d / "tiny-bert"))
    code, _, err = run_cli("finetune", "-r", str(write_recipe(d / "r.yaml", recipe)))
    assert code == 0, err
    return Path(recipe["output_dir"])


def test_the_model_card_parses_and_shows_the_results(classifier):
    from huggingface_hub import ModelCard

    card = ModelCard.load(classifier / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "text-classification"
    assert "base_model" not in data  # a local base is no hub id
    summary = json.loads((classifier / "metrics.json").read_text())
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results["accuracy"] == pytest.approx(summary["best_metrics"]["accuracy"], abs=1e-6)
    assert "examples" not in results  # counted, not scored
    assert f"| accuracy | {summary['best_metrics']['accuracy']:.4f} |" in card.text
    assert "```yaml\nname: r\ntask: cls" in card.text  # the resolved recipe
    assert f'pipeline("text-classification", model="{classifier}")' in card.text


def test_a_user_readme_is_never_replaced(classifier, tmp_path):
    from ftkit.models import card
    from ftkit.workflows.resolve import recorded_task

    (tmp_path / "README.md").write_text("my own notes\n")
    logged = []
    assert card.write(tmp_path, None, log=logged.append) is None
    assert (tmp_path / "README.md").read_text() == "my own notes\n" and "not ftkit's model card" in logged[0]
    again = card.render(classifier, recorded_task(classifier), where="someone/tiny-sst2")
    assert 'model="someone/tiny-sst2"' in again and str(classifier) not in again.split("## How to use")[1]


CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome", "chrome") if shutil.which(n)), None)
PROBE = """<script>window.addEventListener("load", () => { const all = [...document.images];
document.title = "images " + all.filter(i => i.complete && i.naturalWidth > 0).length + "/" + all.length; });</script>"""


def _chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                           "--enable-logging=stderr", "--v=0", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian: apt install chromium); the report's browser test needs one")
def test_the_report_renders_in_a_headless_browser(two_runs, tmp_path):
    a, b = two_runs
    code, _, err = run_cli("report", str(a), str(b), "-o", str(tmp_path / "r.html"))
    assert code == 0, err
    page = (tmp_path / "r.html").read_text()
    shot = tmp_path / "shot.png"
    p = _chromium(f"--screenshot={shot}", "--window-size=1280,1800", (tmp_path / "r.html").as_uri())
    assert shot.is_file(), p.stderr[-2000:]
    assert not [l for l in p.stderr.splitlines() if ":CONSOLE" in l], p.stderr  # no console message at all
    with Image.open(shot) as im:
        assert im.size == (1280, 1800) and len(im.convert("RGB").getcolors(1 << 20)) > 50  # tables and curves, not blank
    # every image decodes: a copy of the page with a probe that counts the loaded images into the title
    (tmp_path / "probe.html").write_text(page.replace("</body>", PROBE + "</body>"))
    p = _chromium("--virtual-time-budget=5000", "--dump-dom", (tmp_path / "probe.html").as_uri())
    assert "<title>images 4/4</title>" in p.stdout, p.stdout[:500] + p.stderr[-1000:]


def test_a_slow_run_and_a_perfect_best_read_right_in_the_done_line_the_report_and_the_card(tmp_path):
    """160 images in 379.8 s is 0.42 examples/s (was `0 examples/s`); a best accuracy of 1 beside a final 0.41
    shows both with the same precision (was `1` beside `0.41`)."""
    from ftkit.models import card
    from ftkit.wording import per_second
    from ftkit.workflows.resolve import recorded_task
    from ftkit.workflows.train import done_line

    run = tmp_path / "vit-run"
    run.mkdir()
    summary = {"task": "image-cls", "steps": 20, "train_runtime_s": 379.8, "examples": 160, "tokens": 0,
               "examples_per_s": per_second(160, 379.8), "metric_for_best": "accuracy", "best": 1, "best_step": 15,
               "best_metrics": {"accuracy": 1, "loss": 0.01}, "final_metrics": {"accuracy": 0.41, "loss": 1.9}}
    (run / "metrics.json").write_text(json.dumps(summary))
    (run / "recipe.yaml").write_text("task: image-cls\ndata: {train: images/}\ntrain: {precision: fp32}\n")
    (run / "run.json").write_text(json.dumps({"status": "finished"}))
    (run / "train_log.jsonl").write_text(json.dumps({"step": 20, "tokens": 0, "examples": 160, "loss": 1.2,
                                                     "lr": 1e-4, "examples_per_s": 0.42}) + "\n")
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "eval_loss": l, "eval_accuracy": a}) + "\n"
                                               for s, l, a in ((15, 0.01, 1), (20, 1.9, 0.41))))
    assert done_line(summary, run).startswith(
        "done in 379.8s (160 examples, 0.42 examples/s); best validation accuracy 1.0000 at step 15")
    code, _, err = run_cli("report", str(run), "-o", str(tmp_path / "r.html"))
    assert code == 0, err
    table = (tmp_path / "r.html").read_text().split("<h2>Results</h2>")[1].split("</table>")[0]
    assert "accuracy 1.0000 (step 15)" in table and "<td>0.4100</td>" in table and "0.42 ex/s" in table
    text = card.render(run, recorded_task(run))
    assert "| accuracy | 1.0000 | 0.4100 |" in text and "160 examples (0.42 examples/s)" in text
