#!/bin/bash
# Mutation checks (issue 10): each line breaks ftkit on purpose, runs the tests that must notice, restores the file.
# Run from the repository root with a clean work tree: tools/mutants.sh (about 2 minutes).
cd "$(git rev-parse --show-toplevel)"
run() { # file sedexpr tests...
  f=$1; e=$2; shift 2
  sed -i "$e" "$f"
  if git diff --quiet -- "$f"; then echo "NOT APPLIED: $f $e"; return; fi
  if HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python -m pytest -q -x "$@" >/tmp/mut.log 2>&1; then r=SURVIVED; else r="KILLED by $(grep -m1 -o 'FAILED [^ ]*' /tmp/mut.log)"; fi
  git checkout -q -- "$f"
  echo "$f | $e | $r"
}
run src/ftkit/engine/batches.py 's/\[self.seed, self.epoch, self.index, self.rank, 7\]/[self.seed, self.epoch, self.rank, 7]/' tests/engine/test_batch_order.py tests/engine/test_resume.py
run src/ftkit/engine/batches.py 's/batches\[rng.permutation(len(batches))\]/batches/' tests/engine/test_batch_order.py tests/cls/test_labeled_data.py
run src/ftkit/tasks/metrics.py 's/"mcc": float(matthews_corrcoef(refs, preds))/"mcc": float((refs == preds).mean())/' tests/tasks/test_metrics_known.py
run src/ftkit/tasks/encoders/nsp.py 's/random_next = bool(own.random() < 0.5)/random_next = False/' tests/encoders/test_nsp.py
run src/ftkit/workflows/evaluate.py 's/ev.task.eval_collate, ev.seed, acc.process_index/ev.task.eval_collate, ev.seed + 1, acc.process_index/' tests/test_task_contract.py
run src/ftkit/tasks/family.py 's/run.val = rows if pick is None else self.subset(rows, pick)/run.val = rows/' tests/tasks/test_family.py
