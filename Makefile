# One-command entry points; the venv is created on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# A CPU build of torch 2.13.0 first, so the range in pyproject.toml pulls nothing bigger.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m fmen_gui

test: $(STAMP)
	$(BIN)/ruff check fmen_gui tests
	$(BIN)/lint-imports
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check fmen_gui tests
	$(BIN)/ruff format --check fmen_gui tests
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build dist *.egg-info

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py
