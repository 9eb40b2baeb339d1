"""Which pre-training changes pay at a small budget: masked-token accuracy after the same wall-clock time for
bert-mlm-nsp-movies as shipped and for that recipe with one change each (and the combined modernbert-mlm-movies).

Every variant trains on the same data with the same tokenizer for `--minutes` of training: a short calibration run
(60 steps, timed from step 20) measures its seconds per step, which sets its max_steps (warmup a twelfth of them, as the recipe's
300 of 3,600; the wsd decay over the last 20 %). Each is then scored the same way, whatever its task: `ftkit eval
--task mlm --recipe recipes/bert-mlm-nsp-movies.yaml` on packed 128-token blocks of the IMDB test reviews
(--eval-batches of 32), 15 % of the tokens selected with the evaluation seed and BERT's 80/10/10, so all variants see
the same masks. One variant runs at a time; each is a fresh
`ftkit pretrain` process.

    .venv/bin/python bench/probes/mlm_ablation.py [--minutes 3] [--variants base no-nsp ...] [--eval-batches 100]
                                           [--out bench/results/mlm_ablation]

Needs the shared tokenizer: `ftkit tokenize -r recipes/bert-mlm-nsp-movies.yaml`. Writes OUT.json; prints a table
and, last, `mlm-ablation: best VARIANT X.X % vs base Y.Y % after N min`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "recipes" / "bert-mlm-nsp-movies.yaml"
COMBINED = ROOT / "recipes" / "modernbert-mlm-movies.yaml"
IMDB_TEST = ROOT.parent / "shared" / "data" / "imdb" / "test.jsonl"
MODERNBERT = "model.config={num_hidden_layers: 4, hidden_size: 256, num_attention_heads: 4, intermediate_size: 768}"

# name -> (recipe, overrides, what it changes). One change each against bert-mlm-nsp-movies as shipped (which already
# masks 30 %, has dropout off and a wsd schedule: those rows put the 2018 setting back to measure what it cost).
VARIANTS: dict[str, tuple[Path, list[str], str]] = {
    "base": (BASE, [], "bert-mlm-nsp-movies as shipped: post-LN BERT, MLM+NSP, 30 % masked, 80/10/10, dropout 0, wsd, lr 7e-4"),
    "mask-15": (BASE, ["masking.probability=0.15"], "masking rate 15 % (BERT's) instead of 30 %"),
    "mask-only": (BASE, ["masking.mask_random_keep=[1, 0, 0]"], "every selected token masked (no 10 % random / 10 % kept)"),
    "dropout-0.1": (BASE, ["train.dropout=0.1"], "dropout 0.1 during pre-training (BERT's) instead of off"),
    "one-cycle": (BASE, ["train.schedule=linear"], "one-cycle: warmup, then a linear decay to 0 (no constant phase)"),
    "no-nsp": (BASE, ["task=mlm"], "masked LM only: packed blocks, no next-sentence pairs or head"),
    "pre-ln": (BASE, ["model.model_type=megatron-bert"], "pre-LayerNorm blocks (megatron-bert), all else as base"),
    "modernbert": (BASE, ["task=mlm", "model.model_type=modernbert", MODERNBERT],
                   "ModernBERT blocks (pre-LN, no biases, rotary, GeGLU), MLM only; lr 7e-4 as base"),
    "modernbert+bias": (BASE, ["task=mlm", "model.model_type=modernbert", MODERNBERT.replace(
        "}", ", attention_bias: true, mlp_bias: true, norm_bias: true}")], "as modernbert, with biases on"),
    "combined": (COMBINED, [], "modernbert-mlm-movies: ModernBERT, MLM only, lr 1e-3"),
    "combined-lr2e-3": (COMBINED, ["train.lr=2e-3"], "as combined, lr 2e-3"),
}


def pretrain(recipe: Path, overrides: list[str], out: Path, steps: int) -> tuple[list, float]:
    """Runs one pre-training; returns its train_log lines and training seconds (the last line's elapsed_s)."""
    args = [sys.executable, "-m", "ftkit.cli", "pretrain", "-r", str(recipe), *overrides, f"output_dir={out}",
            f"train.max_steps={steps}", f"train.warmup_steps={max(1, steps // 12)}", "train.eval_every=0",
            "train.eval_batches=5", f"train.log_every={min(20, steps)}", "train.keep_checkpoints=0",
            "train.keep_checkpoints_at_end=0", "train.plots=false", "train.report_to=[]"]
    p = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    if p.returncode:
        sys.exit(f"pre-training failed ({' '.join(args[3:])}):\n{p.stderr[-2000:]}")
    lines = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines() if x.strip()]
    return lines, lines[-1]["elapsed_s"]


def seconds_per_step(recipe: Path, overrides: list[str], tmp: Path) -> float:
    lines, _ = pretrain(recipe, overrides, Path(tempfile.mkdtemp(dir=tmp)) / "calibrate", 60)
    first = next(x for x in lines if x["step"] == 20)  # after the first steps' one-time costs
    return (lines[-1]["elapsed_s"] - first["elapsed_s"]) / (lines[-1]["step"] - first["step"])


def masked_accuracy(model: Path, batches: int) -> dict:
    # --recipe BASE: every variant is scored with the base recipe's masking (15 %, 80/10/10), whatever it trained with:
    # a variant trained with other shares would otherwise be scored on other masks (the 10 % of selected tokens left
    # unchanged are easy to get right)
    args = [sys.executable, "-m", "ftkit.cli", "eval", "--model", str(model), "--task", "mlm", "--recipe", str(BASE),
            "--data", str(IMDB_TEST), "--batch-size", "32", "--max-batches", str(batches), "--block-size", "128", "--json"]
    p = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    if p.returncode:
        sys.exit(f"evaluation failed ({model}):\n{p.stderr[-2000:]}")
    return json.loads(p.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.0, help="training time of each variant")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--eval-batches", type=int, default=100, help="batches of 32 blocks of IMDB test scored")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "mlm_ablation"))
    a = ap.parse_args()
    if not (ROOT / "runs" / "tokenizers" / "movies-wordpiece").is_dir():
        sys.exit("the shared tokenizer is missing: run `ftkit tokenize -r recipes/bert-mlm-nsp-movies.yaml` first")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name in a.variants:
            recipe, overrides, what = VARIANTS[name]
            started = time.perf_counter()
            per_step = seconds_per_step(recipe, overrides, tmp)
            steps = max(40, int(a.minutes * 60 / per_step))
            out = tmp / name
            _, trained = pretrain(recipe, overrides, out, steps)
            scores = masked_accuracy(out, a.eval_batches)
            row = {"variant": name, "change": what, "steps": steps, "s_per_step": round(per_step, 4),
                   "train_s": trained, "masked_accuracy": scores["masked_accuracy"], "loss": scores["loss"],
                   "masked_tokens": scores.get("masked_tokens"), "wall_s": round(time.perf_counter() - started, 1)}
            rows.append(row)
            print(f"{name:>16}: {steps} steps ({per_step:.3f} s each, {trained:.0f} s), masked accuracy "
                  f"{100 * row['masked_accuracy']:.1f} %, loss {row['loss']:.3f}", flush=True)
    print(f"\n| variant | change | steps in {a.minutes:g} min | masked-token accuracy | loss |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['change']} | {r['steps']:,} | {100 * r['masked_accuracy']:.1f} % | {r['loss']:.3f} |")
    Path(a.out).with_suffix(".json").write_text(json.dumps({"minutes": a.minutes, "eval_batches": a.eval_batches,
                                                            "rows": rows}, indent=2) + "\n")
    best = max(rows, key=lambda r: r["masked_accuracy"])
    base = next((r for r in rows if r["variant"] == "base"), None)
    tail = f" vs base {100 * base['masked_accuracy']:.1f} %" if base else ""
    print(f"mlm-ablation: best {best['variant']} {100 * best['masked_accuracy']:.1f} %{tail} after {a.minutes:g} min")


if __name__ == "__main__":
    main()
