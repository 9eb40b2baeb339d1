#!/usr/bin/env bash
# The probes behind README's "How far 15 minutes of encoder pre-training go": bert-mlm-nsp-movies with one
# knob changed, read at the 900-step mark (the "step 900: eval ... mlm_loss" line; stop a probe there).
# Figures measured 2026-11-22 on the 2-core CPU. Run one:  bash bench/probes/bert_budget_probes.sh NAME
set -eu
R=recipes/bert-mlm-nsp-movies.yaml
# The recipe as first measured: linear decay over 3,600 steps.
BASE=(train.schedule=linear train.min_lr_ratio=0.0 train.eval_every=450)
# The first probes read the earlier corpus (GLUE's SST-2 rows, a 2 % validation split); baseline there: 6.31.
OLD=('data.train=[../shared/data/imdb/train.jsonl, {path: ../shared/data/sst2/glue/train.tsv, text_column: sentence}]'
     data.validation=null data.validation_split=0.02)
run() { name=$1; shift; .venv/bin/ftkit pretrain -r $R "$@" output_dir=/tmp/ftkit-probe-$name; }
case "${1:-}" in
  baseline)  run baseline "${BASE[@]}" ;;                                             # 6.30
  lr2.5e-4)  run lr2.5e-4 "${BASE[@]}" train.lr=2.5e-4 ;;                             # 6.57 at step 450 (baseline 6.45)
  batch8)    run batch8 "${BASE[@]}" train.batch_size=8 train.max_steps=7200 train.warmup_steps=600 train.lr=5e-4 \
                 train.eval_every=900 ;;                                              # 6.33 at step 1800 (same tokens)
  2layers)   run 2layers "${BASE[@]}" train.eval_every=400 \
                 'model.config={num_hidden_layers: 2, hidden_size: 256, num_attention_heads: 4, intermediate_size: 1024}' ;;
                                                                                      # 6.21 at step 1600 (same time)
  nsp4)      run nsp4 "${BASE[@]}" masking.nsp_weight=4 ;;                            # NSP loss 0.693 at step 900
  megatron)  run megatron "${BASE[@]}" "${OLD[@]}" model.model_type=megatron-bert train.max_steps=900 \
                 train.warmup_steps=200 train.lr=1e-3 ;;                              # 6.58 (2e-3: 6.61); old corpus
  block64)   run block64 "${BASE[@]}" "${OLD[@]}" data.block_size=64 train.batch_size=32 ;;  # 6.22; old corpus
  *) echo "usage: $0 baseline|lr2.5e-4|batch8|2layers|nsp4|megatron|block64"; exit 2 ;;
esac
