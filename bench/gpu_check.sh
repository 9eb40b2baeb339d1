#!/usr/bin/env bash
# GPU check: pre-train GPT-2-124M through `ftkit pretrain --num-processes 1` for a fixed number of steps and print
# tokens/s and model-FLOPs utilisation (MFU) against the device's bf16 peak (looked up from its name, printed).
#
#   bench/gpu_check.sh                 # STEPS=300 BATCH=16 BLOCK=1024 COMPILE=true PEAK_TFLOPS=<override>
#   DRY_CPU=1 bench/gpu_check.sh       # rehearsal of every stage on CPU (6 steps of 2 x 128, no compile, no MFU)
#
# Model: GPT-2 small (12 layers, 768 wide, 12 heads, context 1024, vocabulary padded to 50,304 as nanoGPT does:
# 124M parameters), bf16 autocast, SDPA attention (flash on CUDA), fused AdamW, torch.compile per block
# (train.compile), the fused output layer + loss. Data: tiny Shakespeare from ../shared/data when present, else the
# repository's own text (throughput does not depend on what the text says), a BPE tokenizer trained on it.
# Tokens/s: the median of the run's logged intervals after the first two (those include compiling).
# MFU = tokens/s x FLOPs per token (6N + 12 L H Q T, PaLM's formula; metrics.json's flops_per_token) / peak.
# Safe unattended: refuses at once without CUDA (exit 2; any other failure of the probe is reported as such), keeps
# its files and the compiler caches (TorchInductor, Triton) under a temporary directory it removes, and runs every
# stage under `timeout -k` (a stage that ignores SIGTERM is killed 10 s later): 30 + 60 + 180 + 30 s, so the whole
# check ends within 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
FTKIT=${FTKIT:-.venv/bin/ftkit}
STEPS=${STEPS:-300}
BATCH=${BATCH:-16}
BLOCK=${BLOCK:-1024}
COMPILE=${COMPILE:-true}
PRECISION=bf16
fail() { echo "gpu_check: $*" >&2; exit 1; }
if [ "${DRY_CPU:-0}" = 1 ]; then
    STEPS=6 BATCH=2 BLOCK=128 COMPILE=false PRECISION=auto
    echo "gpu_check: DRY_CPU=1: a rehearsal on CPU, $STEPS steps of $BATCH x $BLOCK (no figure of a GPU)"
else
    rc=0
    timeout -k 10 30 "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)' > "${TMPDIR:-/tmp}/gpu_check_probe.$$" 2>&1 || rc=$?
    if [ "$rc" = 3 ]; then
        rm -f "${TMPDIR:-/tmp}/gpu_check_probe.$$"
        echo "gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing was run" >&2
        exit 2
    elif [ "$rc" != 0 ]; then
        echo "gpu_check: the CUDA probe failed (exit $rc; python: $PY):" >&2
        tail -3 "${TMPDIR:-/tmp}/gpu_check_probe.$$" >&2
        rm -f "${TMPDIR:-/tmp}/gpu_check_probe.$$"
        exit 1
    fi
    rm -f "${TMPDIR:-/tmp}/gpu_check_probe.$$"
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ftkit-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export TORCHINDUCTOR_CACHE_DIR="$WORK/inductor" TRITON_CACHE_DIR="$WORK/triton"

CORPUS=../shared/data/tinyshakespeare/input.txt
if [ ! -f "$CORPUS" ]; then
    CORPUS="$WORK/corpus.txt"
    # the project's own text (not hidden folders, venvs or runs)
    find . \( -path './.*' -o -name runs -o -name '*venv*' \) -prune -o \
        \( -name '*.md' -o -name '*.py' -o -name '*.yaml' \) -type f -print0 | xargs -0 cat > "$CORPUS"
fi
cat > "$WORK/gpt2-124m.yaml" <<EOF
task: clm
output_dir: $WORK/run
tokenizer: {kind: bpe, vocab_size: 8000, path: $WORK/tokenizer}
model:
  model_type: gpt2
  config: {n_layer: 12, n_embd: 768, n_head: 12, n_positions: $BLOCK, vocab_size: 50304}
data: {train: $CORPUS, block_size: $BLOCK, cache_dir: $WORK/cache, add_eos: false}
train:
  max_steps: $STEPS
  batch_size: $BATCH
  lr: 6.0e-4
  warmup_steps: 20
  weight_decay: 0.1
  dropout: 0.0
  precision: $PRECISION
  compile: $COMPILE
  eval_every: 0
  log_every: $(( STEPS / 15 > 0 ? STEPS / 15 : 1 ))
  keep_checkpoints: 0
  keep_checkpoints_at_end: 0
  plots: false
  report_to: []
EOF
timeout -k 10 30 "$PY" - <<'EOF'
import torch
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"gpu_check: {p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}")
EOF
timeout -k 10 60 "$FTKIT" tokenize --recipe "$WORK/gpt2-124m.yaml" --encode > "$WORK/tokenize.log" 2>&1 \
    || fail "tokenize failed or ran past 60 s: $(tail -3 "$WORK/tokenize.log")"
START=$(date +%s)
timeout -k 10 180 "$FTKIT" pretrain --recipe "$WORK/gpt2-124m.yaml" --num-processes 1 > "$WORK/pretrain.log" 2>&1 \
    || fail "pretrain failed or ran past 180 s: $(tail -10 "$WORK/pretrain.log")"
echo "gpu_check: $STEPS steps of $BATCH x $BLOCK tokens in $(( $(date +%s) - START )) s (with start-up and compiling)"
WORK="$WORK" timeout -k 10 30 "$PY" - <<'EOF'
import json, os, statistics
import torch

# dense bf16 tensor-core peaks, TFLOP/s (vendor datasheets, without sparsity); the first name that appears wins
PEAKS = [("GH200", 989), ("H200", 989), ("H100 PCIe", 756), ("H100 NVL", 835), ("H100", 989), ("H800", 989),
         ("B200", 2250), ("B100", 1750), ("A100", 312), ("A800", 312), ("L40S", 362), ("L40", 181), ("L4", 121),
         ("A10G", 70), ("A10", 125), ("RTX 6000 Ada", 364), ("RTX 4090", 165), ("RTX 3090", 71), ("A6000", 155)]
run = os.path.join(os.environ["WORK"], "run")
metrics = json.load(open(os.path.join(run, "metrics.json")))
rows = [json.loads(l) for l in open(os.path.join(run, "train_log.jsonl"))]
steady = [r["tokens_per_s"] for r in rows[2:]] or [r["tokens_per_s"] for r in rows]
tps = statistics.median(steady)
fpt = metrics["flops_per_token"]
name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
peak = float(os.environ["PEAK_TFLOPS"]) if os.environ.get("PEAK_TFLOPS") else next((p for k, p in PEAKS if k in name), None)
print(f"gpu_check: {metrics['parameters'] / 1e6:.1f}M parameters, {fpt / 1e9:.3f} GFLOP per token (6N + 12LHQT), "
      f"loss {rows[0]['loss']:.2f} -> {rows[-1]['loss']:.2f}")
print(f"gpu_check: tokens/s {tps:,.0f} (median of {len(steady)} logged intervals after compiling)")
if peak is None:
    print(f"gpu_check: no bf16 peak known for '{name}': rerun with PEAK_TFLOPS=<dense bf16 TFLOP/s> for the MFU")
else:
    print(f"gpu_check: {name}: bf16 peak {peak:g} TFLOP/s; MFU {100 * tps * fpt / (peak * 1e12):.1f} %")
EOF
