"""Every peer comparison under bench/peers/ in one go: `make bench` (the benches' own settings) or `make bench-quick` (short
settings, <= 10 minutes on 2 cores). Each bench compares ftkit with its peer in one run and ends with a line
`ratio A/B: X`; the suite runs them one after another (never in parallel: on 2 cores that would make every timing
meaningless), measures this machine's matmul peak (fp32 and bf16, 2048^2) first, and writes

  bench/results/results.json   the machine, the date, each bench's ratio, peer, command, time and output tail
  bench/results/results.png    the ratios (and ftkit's share of the matmul peak where a bench reports one)

`python bench/suite.py --readme` rewrites the performance table of docs/results.md (between the `bench:begin` /
`bench:end` markers) from results.json, with the machine and date it was measured on.

    .venv/bin/python bench/suite.py [--quick] [--only NAME ...] [--readme]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the page that holds the bench table (it was README's until the docs site; the flag kept its name)
RESULTS, PICTURE, README = ROOT / "bench" / "results" / "results.json", ROOT / "bench" / "results" / "results.png", ROOT / "docs" / "results.md"
BEGIN, END = "<!-- bench:begin (python bench/suite.py --readme) -->", "<!-- bench:end -->"
RATIO = re.compile(r"^ratio ([^:]+): ([0-9.]+)\s*$")


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    peer: str
    what: str
    target: float
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()


BENCHES = (
    Bench("pretrain", "peers/pretrain_throughput.py", "transformers.Trainer (run_clm path)",
          "GPT pre-training tokens/s, same model / data / precision / steps", 1.3, quick=("--steps", "20", "--repeats", "1")),
    Bench("ner", "peers/ner_vs_hf.py", "run_ner (Trainer)", "token classification wall clock, WNUT-17", 1.0,
          quick=("--epochs", "0.1")),
    Bench("sft", "peers/sft_vs_trl.py", "TRL SFTTrainer", "SmolLM2 LoRA SFT tokens/s, packing off and on (the smaller ratio)",
          1.0, quick=("--steps", "2", "--batch", "4", "--held-out", "4")),
    Bench("vit", "peers/vit_vs_hf.py", "Trainer (run_image_classification path)", "ViT images/s, Fashion-MNIST", 1.2,
          full=("--precision", "fp32"), quick=("--steps", "30", "--precision", "fp32")),
    Bench("tokenize", "peers/tokenize_throughput.py", "run_clm's datasets.map path (num_proc = cores)",
          "encoding IMDB + WikiText-2 into blocks, tokens/s, same tokenizer", 10.0, quick=("--repeats", "1")),
    Bench("cls", "peers/cls_vs_hf.py", "run_glue defaults (Trainer, padding to 128)",
          "SST-2 fine-tuning examples/s, sst2-minilm-quick (also against run_glue's best flags)", 1.5,
          quick=("--steps", "20", "--repeats", "1")),
    Bench("reporting", "peers/reporting_cost.py", "the same run without curves and trackers",
          "tokens/s with training_curves.png + TensorBoard over without", 0.98, quick=("--steps", "300", "--rounds", "1")),
)


def parse_ratio(output: str) -> tuple[str, float] | None:
    """The `ratio A/B: X` line a bench ends with (the last one when there are several)."""
    found = [RATIO.match(line.strip()) for line in output.splitlines()]
    found = [m for m in found if m]
    return (found[-1].group(1), float(found[-1].group(2))) if found else None


def parse_summary(output: str) -> dict:
    """The JSON summary line a bench prints before its ratio, if any (pretrain_throughput: precision, ftkit_gflops)."""
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return {}
    return {}


def matmul_peak(dtype_name: str, n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of one n x n matmul in that dtype, the best of `repeats` (what the CPU's kernels reach at best)."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def machine() -> dict:
    import torch

    cpu = platform.processor()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                   if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from ftkit.engine.accel import bf16_supported

    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "native_bf16": bf16_supported(), "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "matmul_peak_gflops": {"fp32": round(matmul_peak("fp32"), 1), "bf16": round(matmul_peak("bf16"), 1)}}


def run_bench(b: Bench, quick: bool, peaks: dict) -> dict:
    args = list(b.quick if quick else b.full)
    command = ["python", f"bench/{b.script}", *args]
    t = time.perf_counter()
    p = subprocess.run([sys.executable, str(ROOT / "bench" / b.script), *args], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t
    found, summary = parse_ratio(p.stdout), parse_summary(p.stdout)
    gflops, precision = summary.get("ftkit_gflops"), summary.get("precision")
    share = round(gflops / peaks[precision], 3) if gflops and precision in peaks else None
    return {"gflops": gflops, "name": b.name, "peer": b.peer, "what": b.what, "target": b.target, "command": " ".join(command),
            "seconds": round(seconds, 1), "exit_code": p.returncode, "label": found[0] if found else None,
            "ratio": found[1] if found and p.returncode == 0 else None, "peak_share": share, "precision": precision,
            "output_tail": (p.stdout + ("\n" + p.stderr[-1500:] if p.returncode else ""))[-2500:]}


def draw(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows = [r for r in results["benches"] if r["ratio"] is not None]
    fig = Figure(figsize=(8, 1.2 + 0.6 * max(len(rows), 1)), layout="constrained")
    ax = fig.subplots()
    names = [f"{r['name']} ({r['label']})" for r in rows]
    ax.barh(names, [r["ratio"] for r in rows], color=["tab:green" if r["ratio"] >= r["target"] else "tab:orange" for r in rows])
    for i, r in enumerate(rows):
        ax.plot([r["target"]] * 2, [i - 0.4, i + 0.4], color="black", lw=1.5)
        share = f", {100 * r['peak_share']:.0f} % of peak" if r["peak_share"] else ""
        ax.text(r["ratio"], i, f" {r['ratio']:.2f}{share}", va="center", fontsize=8)
    ax.axvline(1.0, color="gray", ls="--", lw=1)
    ax.invert_yaxis()
    ax.set_xlabel("ratio (ftkit over its peer; black tick: target)")
    m = results["machine"]
    ax.set_title(f"{'quick' if results['quick'] else 'full'} bench, {results['date']}: {m['cpu']}, {m['cores']} cores", fontsize=9)
    fig.savefig(path, dpi=100)


def readme_table(results: dict) -> str:
    m = results["machine"]
    peak = m["matmul_peak_gflops"]
    lines = [BEGIN, "",
             f"Measured {results['date']} ({'`make bench-quick`' if results['quick'] else '`make bench`'}) on {m['cpu']}, "
             f"{m['cores']} cores, torch {m['torch']}; matmul peak {peak['fp32']:.0f} GFLOP/s fp32, {peak['bf16']:.0f} bf16.",
             "", "| bench | ftkit against | ratio | target | command |", "|---|---|---|---|---|"]
    for r in results["benches"]:
        ratio = "failed" if r["ratio"] is None else f"**{r['ratio']:.2f}** ({r['label']})"
        share = f"; {100 * r['peak_share']:.0f} % of the {r['precision']} matmul peak" if r["peak_share"] else ""
        lines.append(f"| {r['what']} | {r['peer']} | {ratio}{share} | ≥ {r['target']} | `{r['command']}` |")
    return "\n".join(lines + ["", END])


def replace_table(text: str, results: dict) -> str:
    """`text` (docs/results.md) with the block between the markers replaced by the table of `results`."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"no {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN, 1)
    return head + readme_table(results) + rest.split(END, 1)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short settings (<= 10 minutes on 2 cores)")
    ap.add_argument("--only", nargs="*", choices=[b.name for b in BENCHES], help="run only these")
    ap.add_argument("--readme", action="store_true", help="rewrite docs/results.md's bench table from bench/results/results.json and stop")
    a = ap.parse_args()
    if a.readme:
        try:
            README.write_text(replace_table(README.read_text(), json.loads(RESULTS.read_text())))
        except (OSError, ValueError) as e:
            sys.exit(f"--readme: {e}")
        print(f"{README.relative_to(ROOT)}: performance table rewritten from {RESULTS.relative_to(ROOT)}")
        return
    results = {"date": time.strftime("%Y-%m-%d"), "quick": a.quick, "machine": machine(), "benches": []}
    print(f"machine: {json.dumps(results['machine'])}", flush=True)
    t0 = time.perf_counter()
    for b in BENCHES:
        if a.only and b.name not in a.only:
            continue
        r = run_bench(b, a.quick, results["machine"]["matmul_peak_gflops"])
        results["benches"].append(r)
        shown = f"ratio {r['label']}: {r['ratio']:.2f}" if r["ratio"] is not None else f"FAILED (exit {r['exit_code']})"
        print(f"{b.name:<10} {shown:<32} {r['seconds']:7.1f} s   {r['command']}", flush=True)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    # the peak read at the start can catch the shared host busy (533 GFLOP/s once where 690-780 is usual): read it
    # again after the benches and keep the higher, and the peak shares with it
    peaks = results["machine"]["matmul_peak_gflops"]
    for name in list(peaks):
        peaks[name] = round(max(peaks[name], matmul_peak(name)), 1)
    for r in results["benches"]:
        if r["gflops"] and r["precision"] in peaks:
            r["peak_share"] = round(r["gflops"] / peaks[r["precision"]], 3)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    try:
        draw(results, PICTURE)
    except ImportError:
        print("bench/results/results.png not drawn: matplotlib is missing (pip install 'ftkit[plots]')")
    print(f"{len(results['benches'])} benches in {results['seconds']:.0f} s: {RESULTS.relative_to(ROOT)}, {PICTURE.relative_to(ROOT)}")
    if any(r["ratio"] is None for r in results["benches"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
