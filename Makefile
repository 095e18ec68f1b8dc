# The README's commands. Each creates the virtualenv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Pinned for dev and CI: on the project machines this resolves to a local CPU wheel.
TORCH ?= torch==2.13.0

.PHONY: quickstart test study lint typecheck unit install clean docs

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

quickstart: $(BIN)/.installed
	$(BIN)/attnmt quickstart

# The attention study on the synthetic task, twice (seeds 1 and 2, to see whether the
# ranking holds): each run uses one torch thread, so a seed takes about 25 minutes on an idle
# CPU, and two seeds run side by side (STUDY_SEEDS=1 and =2 in two shells) take about as
# long on 2 cores; reports in report/seed-1, report/seed-2.
STUDY_SEEDS ?= 1 2
study: $(BIN)/.installed
	for seed in $(STUDY_SEEDS); do \
		$(BIN)/attnmt compare configs/study/*.yaml --seed $$seed --out report/seed-$$seed || exit 1; \
	done

# The reference pages docs/config.md and docs/cli.md, generated from the config models and
# the CLI's parsers (tests/cli/test_reference.py fails when they differ from the code).
docs: $(BIN)/.installed
	$(BIN)/python -m attnmt.cli.reference

lint: $(BIN)/.installed
	$(BIN)/ruff check attnmt tests benchmarks
	$(BIN)/ruff format --check attnmt tests benchmarks

typecheck: $(BIN)/.installed
	$(BIN)/mypy attnmt tests/models/test_interface.py

unit: $(BIN)/.installed
	$(BIN)/pytest -q

test: lint typecheck unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
