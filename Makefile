# The README's commands. Each target creates .venv and installs the package on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-all bench lint docs figures pages full gpu

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/spectral-sim run all --quick --out results --overwrite

# docs/results.md and docs/figures/, from a fresh quick run.
figures: run
	$(BIN)/python -m spectral_sim.gallery summary results docs

# Every experiment at full scale (at most 30 minutes each on 2 CPU cores) into results-full/,
# and the grokking experiment again on the canonical transformer; then docs/results-full.md and
# the experiment pages, from the reports kept in docs/reports/. Resumable: without --overwrite
# a killed run continues from the finished chunks under results-full/<run>/sweeps. A sweep that
# other code or another config made is refused, never mixed in: after such a change remove
# results-full/<run> (or all of results-full/) first.
full: $(STAMP)
	$(BIN)/spectral-sim run all --out results-full
	$(BIN)/spectral-sim run spectral_edge --model transformer \
		--out results-full/spectral_edge_transformer
	$(BIN)/python -m spectral_sim.gallery full results-full docs

# The full-scale tables of docs/experiments/<name>.md, from full runs saved under FULL
# (spectral-sim run NAME --out $(FULL)/NAME); the reports are kept in docs/reports/.
# FULL=docs/reports re-renders the pages from the kept reports.
FULL ?= results-full
pages: $(STAMP)
	$(BIN)/python -m spectral_sim.gallery pages $(FULL) docs

# Two pytest workers (one per CI core), each test file kept on one worker so that its
# module-scoped experiment fixture runs once. The workers, and the processes the tests start,
# share one compilation cache (tests/conftest.py), kept in .venv so that the next run reads it:
# 1002 tests in 4.7 min on 2 cores from an empty cache (5.3 with the install); the 152 marked slow
# run in test-all.
TEST_WORKERS ?= 2
PYTEST := SPECTRAL_SIM_TEST_CACHE=$(abspath $(VENV))/jax-test-cache \
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test: $(STAMP)
	$(PYTEST)

# Then the slow checks (marked `slow`: large Monte Carlo runs, full-size benchmark smoke runs):
# `make test-all` runs every test, `make test` first.
test-all: test
	$(PYTEST) -m slow

bench: $(STAMP)
	$(BIN)/python -m benchmarks.learning_curves
	$(BIN)/python -m benchmarks.sweep
	$(BIN)/python -m benchmarks.attention
	$(BIN)/python -m benchmarks.self_improve
	$(BIN)/python -m benchmarks.spectral_edge
	$(BIN)/python -m benchmarks.compression
	$(BIN)/python -m benchmarks.spectra
	$(BIN)/python -m benchmarks.fit
	$(BIN)/python -m benchmarks.compiles

# On a machine with an NVIDIA GPU: the CUDA extra, `make bench`, and every experiment at
# --scale paper (at most 10 minutes each) into results-paper/ (benchmarks/gpu_runbook.sh).
gpu:
	bash benchmarks/gpu_runbook.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright

# The user guide and the API reference (from the docstrings) into site/; --strict (set in
# mkdocs.yml) fails on a broken link or cross-reference.
docs: $(STAMP)
	$(BIN)/mkdocs build
