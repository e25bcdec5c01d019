# cachebox developer tasks. `make help` lists them.
# Only `python3` and `cargo` must exist beforehand: everything else (venvs, maturin, pytest,
# rustfmt, clippy) is installed by these targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
PIP_FLAGS := -q --disable-pip-version-check
BUILD_DEPS := "maturin>=1.16,<2"
TEST_DEPS := "pytest>=8" "hypothesis>=6.100" "pytest-randomly>=3.15"
# The stubs are checked against the build of every interpreter (names and signatures can differ).
STUBTEST_DEPS := "mypy>=1.15"
LINT_DEPS := "ruff==0.17.6"
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
# The newest installed patch release of each CPython 3.9-3.13 under pyenv. `make test-python
# PYTHONS=/path/to/python` tests one interpreter instead.
PYTHONS := $(strip $(foreach v,3.9 3.10 3.11 3.12 3.13,$(lastword $(sort $(wildcard $(PYENV_ROOT)/versions/$(v).*/bin/python$(v))))))
# Extra pytest arguments. Tests run in file order unless asked otherwise: PYTEST_ARGS="-p randomly"
# shuffles them (pytest-randomly prints the seed that replays an order).
PYTEST_ARGS ?= -p no:randomly
# The suites run a build whose pyo3 has no deferred-decref pool: a `Py` dropped where the direct
# C entry points run (without pyo3's attach count) then aborts the test run instead of being
# deferred silently (see src/direct_slot.rs).
CHECKED_RUSTFLAGS := --cfg pyo3_disable_reference_pool

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-12s %s\n", $$1, $$2}'

$(VPY):
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install $(PIP_FLAGS) --upgrade pip
	$(VPY) -m pip install $(PIP_FLAGS) $(BUILD_DEPS) $(TEST_DEPS) $(LINT_DEPS)

.PHONY: venv
venv: $(VPY) ## Create .venv (maturin, pytest, hypothesis, ruff)

.PHONY: build
build: $(VPY) ## Build the extension (release) into .venv
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release -q

.PHONY: demo
demo: build ## Build, then show the caches at work and a timing against functools.lru_cache
	$(VPY) benches/demo.py

.PHONY: rust-tools
rust-tools:
	@cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

.PHONY: lint
lint: rust-tools $(VPY) ## cargo fmt --check, clippy -D warnings, ruff, no import cycle in src/
	cargo fmt --all --check
	$(PYTHON) .ci/check_module_cycles.py
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check cachebox tests benches .ci
	$(VENV)/bin/ruff format --check cachebox tests benches .ci

.PHONY: test-rust
test-rust: ## Rust unit tests of the table, store and policies
	PYO3_PYTHON=$(abspath $(VPY)) cargo test --workspace -q

.PHONY: test-python
test-python: $(VPY) ## Build for every CPython 3.9-3.13 found under pyenv; pytest and stubtest on each
	@if [ -z "$(PYTHONS)" ]; then echo "no CPython 3.9-3.13 found under $(PYENV_ROOT)/versions" >&2; exit 1; fi
	@set -e; for py in $(PYTHONS); do \
	  v=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  env=.venvs/py$$v; \
	  echo "=== CPython $$v ($$py)"; \
	  if [ ! -x $$env/bin/python ]; then $$py -m venv $$env; fi; \
	  $$env/bin/python -m pip install $(PIP_FLAGS) $(TEST_DEPS) $(STUBTEST_DEPS); \
	  rm -rf .build/py$$v; \
	  RUSTFLAGS="$(CHECKED_RUSTFLAGS)" $(VENV)/bin/maturin build -q --profile ci -i $$env/bin/python --out .build/py$$v --target-dir target/py$$v; \
	  $$env/bin/python -m pip install $(PIP_FLAGS) --force-reinstall --no-deps .build/py$$v/*.whl; \
	  (cd tests && ../$$env/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) .); \
	  extra=""; \
	  if [ -f typings/stubtest-allowlist-py$$v.txt ]; then extra="--allowlist ../typings/stubtest-allowlist-py$$v.txt"; fi; \
	  (cd tests && ../$$env/bin/python -m mypy.stubtest cachebox._core \
	    --allowlist ../typings/stubtest-allowlist.txt $$extra); \
	done

.PHONY: test-quick
test-quick: lint $(VPY) ## The edit-test loop: lint, then the pytest suite on .venv's interpreter
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --profile ci -q
	cd tests && ../$(VPY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) .

.PHONY: test-load
test-load: ## The suite of one interpreter twice beside two CPU hogs, then once in random order
	@py="$(firstword $(PYTHONS))"; [ -n "$$py" ] || { echo "no interpreter to test" >&2; exit 1; }; \
	set -e; hogs=""; trap '[ -z "$$hogs" ] || kill $$hogs 2>/dev/null || true' EXIT; \
	for i in 1 2; do $(PYTHON) -c 'while True: pass' & hogs="$$hogs $$!"; done; \
	for run in 1 2; do echo "=== beside two CPU hogs, run $$run"; $(MAKE) --no-print-directory test-python PYTHONS=$$py; done; \
	kill $$hogs; hogs=""; \
	echo "=== random order"; $(MAKE) --no-print-directory test-python PYTHONS=$$py PYTEST_ARGS="-p randomly"

.PHONY: test
test: lint test-rust typecheck test-python fuzz-smoke ## Every check: lints, Rust tests, stubs, pytest on each CPython, fuzz smoke

.PHONY: clean
clean: ## Remove build outputs and venvs
	rm -rf target .build .venv .venvs .venv-typing .venv-fuzz .venv-bench .tools

# Typing: the stubs in typings/ (shipped through the symlinks in cachebox/) checked against a
# fresh wheel installed into a venv of its own, so the checkers never touch .venv.
TYPING_VENV := .venv-typing
TYPING_PY := $(TYPING_VENV)/bin/python
TYPING_DEPS := "mypy>=1.18" "basedpyright>=1.31" "typing_extensions>=4.15"
TYPING_FILES := tests/typing/usage.py tests/typing/check_misuse.py tests/typing/check_dist.py

$(TYPING_PY):
	$(PYTHON) -m venv $(TYPING_VENV)
	$(TYPING_PY) -m pip install $(PIP_FLAGS) --upgrade pip

.PHONY: typecheck
typecheck: $(VPY) $(TYPING_PY) ## stubtest, mypy and pyright over the typed usage and misuse files, wheel contents
	$(TYPING_PY) -m pip install $(PIP_FLAGS) $(TYPING_DEPS)
	rm -rf .build/typing
	$(VENV)/bin/maturin build --profile ci -q -i $(TYPING_PY) --out .build/typing --target-dir target/typing
	$(VENV)/bin/maturin sdist --out .build/typing
	$(TYPING_PY) -m pip install $(PIP_FLAGS) --force-reinstall --no-deps .build/typing/*.whl
	$(TYPING_PY) tests/typing/check_dist.py .build/typing/*.whl .build/typing/*.tar.gz
	$(TYPING_VENV)/bin/stubtest cachebox._core --allowlist typings/stubtest-allowlist.txt
	$(TYPING_PY) -m mypy $(TYPING_FILES)
	$(TYPING_VENV)/bin/basedpyright --pythonpath $(TYPING_PY) $(TYPING_FILES)
	$(TYPING_PY) tests/typing/usage.py
	$(TYPING_PY) tests/typing/check_misuse.py
	cd .build/typing && ../../$(TYPING_PY) -m mypy --config-file= --strict --no-incremental ../../tests/typing/usage.py

.PHONY: bench
bench: build ## Side-by-side benchmarks vs cachebox 6.2.10, functools, cachetools, lru-dict (BENCH_ARGS=--quick)
	$(VPY) benches/run.py $(BENCH_ARGS)

# Fuzzing: an atheris harness over the Python API (tests/fuzz/fuzz_api.py) and a cargo-fuzz
# target over the store (tests/fuzz/rust). `make fuzz` runs both for FUZZ_SECONDS each with
# libFuzzer; `make fuzz-smoke` (part of `make test`) drives the same targets with seeded random
# inputs for FUZZ_SMOKE_SECONDS each, needing neither atheris nor libFuzzer.
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 30
FUZZ_VENV := .venv-fuzz
FUZZ_PY := $(FUZZ_VENV)/bin/python
FUZZ_RUST := tests/fuzz/rust
CARGO_FUZZ := $(abspath .tools)/bin/cargo-fuzz
FUZZ_ENV := PYO3_PYTHON=$(abspath $(VPY)) CARGO_TARGET_DIR=$(abspath target/fuzz)

$(FUZZ_PY):
	$(PYTHON) -m venv $(FUZZ_VENV)
	$(FUZZ_PY) -m pip install $(PIP_FLAGS) --upgrade pip

$(CARGO_FUZZ):
	cargo install --locked --root $(abspath .tools) cargo-fuzz

.PHONY: fuzz-wheel
fuzz-wheel: $(VPY) $(FUZZ_PY)
	rm -rf .build/fuzz
	$(VENV)/bin/maturin build -q --profile ci -i $(FUZZ_PY) --out .build/fuzz --target-dir target/fuzz-py
	$(FUZZ_PY) -m pip install $(PIP_FLAGS) --force-reinstall --no-deps .build/fuzz/*.whl

.PHONY: fuzz-smoke
fuzz-smoke: fuzz-wheel ## Both fuzz targets on seeded random inputs, FUZZ_SMOKE_SECONDS each
	$(FUZZ_PY) tests/fuzz/fuzz_api.py --smoke $(FUZZ_SMOKE_SECONDS)
	cd $(FUZZ_RUST) && $(FUZZ_ENV) cargo run -q --release --bin smoke -- $(FUZZ_SMOKE_SECONDS)

.PHONY: fuzz
fuzz: fuzz-wheel $(CARGO_FUZZ) ## atheris + cargo-fuzz (libFuzzer), FUZZ_SECONDS each
	$(FUZZ_PY) -m pip install $(PIP_FLAGS) --only-binary=:all: atheris
	mkdir -p target/fuzz-corpus/api target/fuzz-corpus/store target/fuzz-artifacts/api target/fuzz-artifacts/store
	$(FUZZ_PY) tests/fuzz/fuzz_api.py -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=$(abspath target/fuzz-artifacts/api)/ target/fuzz-corpus/api
	RUSTC_BOOTSTRAP=1 PYO3_PYTHON=$(abspath $(VPY)) $(CARGO_FUZZ) run --fuzz-dir $(FUZZ_RUST) \
	  --target-dir $(abspath target/fuzz) --features libfuzzer store $(abspath target/fuzz-corpus/store) -- \
	  -max_total_time=$(FUZZ_SECONDS) -detect_leaks=0 -print_final_stats=1 \
	  -artifact_prefix=$(abspath target/fuzz-artifacts/store)/
