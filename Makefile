# TakeBridge: `make demo` and `make test` set up everything they need, then run.
# CPU installs pin torch through constraints.txt (other versions pull gigabytes of CUDA).

PY ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: bench-gpu demo test test-fast bench proto clean help

help:
	@echo "make demo   - set up .venv and run the CPU demo (refine, extend, inpaint) into demo_out/"
	@echo "make test   - set up .venv (with the diffusers extra) and run the whole test suite"
	@echo "make bench  - benchmarks of the classic backend and of media I/O (bench/results/)"
	@echo "make proto  - regenerate bridge/api from proto/"

$(BIN)/python:
	$(PY) -m venv $(VENV)

# core + development tools: enough for the server, the CLI and the demo
$(VENV)/.core: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e '.[dev]'
	touch $@

# + the diffusers backend's stack (CPU torch through the constraints file)
$(VENV)/.full: $(VENV)/.core
	$(PIP) -e '.[dev,diffusers]'
	touch $@

demo: $(VENV)/.core
	$(BIN)/takebridge demo --out demo_out

test: $(VENV)/.full
	$(BIN)/python -m pytest -q -ra

test-fast: $(VENV)/.core
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(VENV)/.core
	$(BIN)/python bench/bench_classic.py
	$(BIN)/python bench/bench_media.py

# on a machine with an NVIDIA GPU (installs the CUDA build of torch there: no CPU constraint)
bench-gpu:
	python3.11 -m venv .venv-gpu && .venv-gpu/bin/pip install -q -e '.[diffusers]' && \
	HF_HUB_OFFLINE=1 .venv-gpu/bin/python bench/gpu_bench.py

proto: $(VENV)/.core
	$(BIN)/python proto/generate.py

clean:
	rm -rf demo_out takebridge_store .pytest_cache
