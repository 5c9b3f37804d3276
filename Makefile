# Two commands on a fresh machine: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
PYTEST_ARGS ?=
TEST_COMMANDS := go:golang-go chromium:chromium
# llama.cpp as lean as the Python binding allows: libllama, the ggml it links and the common library the binding's
# build forces on and installs; no tools, server, examples, tests, HTTPS, nor the multimodal mtmd library (llama_cpp
# loads it only for vision chat). GGML_NATIVE=OFF builds the portable AVX2/FMA/F16C kernels: a native build on the
# development VM (a Xeon with AMX) compiled ggml's AMX kernels in, and llama_decode segfaulted in them.
# pip's wheel cache does not see these flags: after changing them, `pip cache remove llama_cpp_python` first.
LLAMA_CMAKE_ARGS := -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
	-DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=OFF

.PHONY: setup setup-test test lint demo bench clean

setup: $(STAMP)

# Re-installs only when the project's dependency files change, so a second `make setup` is instant.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# What the whole suite needs beyond `make setup`: llama.cpp (built once from the llama-cpp-python sdist; pip's wheel
# cache makes a rebuilt .venv reuse it) and the commands in TEST_COMMANDS (COMMAND:DEBIAN_PACKAGE), installed with
# apt-get when missing and we may (root); chromium for the dashboard's browser tests (their driver, playwright, is in
# the dev extras).
setup-test: $(TEST_STAMP)
	for pair in $(TEST_COMMANDS); do .ci/ensure_command $${pair%%:*} $${pair#*:} || exit 1; done

$(TEST_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,llamacpp]"
	touch $(TEST_STAMP)

lint: setup
	$(BIN)/ruff check src tests bench scripts .ci
	$(BIN)/ruff format --check -q src tests bench scripts .ci

test: setup-test lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: setup
	$(BIN)/python -m milton_lora --home demo demo

bench: setup
	$(BIN)/python bench/redact_bench.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/generation_batching.py
	$(BIN)/python bench/generation_batching.py --model smollm2
	$(BIN)/python bench/eval_phases.py
	$(BIN)/python bench/persona/run.py
	$(BIN)/python bench/preference.py

clean:
	rm -rf $(VENV) demo .pytest_cache
