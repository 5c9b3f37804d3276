# Two commands on a fresh machine: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test lint demo bench clean

setup: $(STAMP)

# Re-installs only when the project's dependency files change, so a second `make setup` is instant.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check -q src tests bench scripts

test: setup lint
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/python -m milton_lora --home demo demo

bench: setup
	$(BIN)/python bench/redact_bench.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/generation_batching.py
	$(BIN)/python bench/generation_batching.py --model smollm2
	$(BIN)/python bench/eval_phases.py

clean:
	rm -rf $(VENV) demo .pytest_cache
