# keras_dimsel — the two commands a new user needs: `make demo` and `make test`.
# Both create .venv with Python 3.10 and install the pinned set in constraints.txt.

SHELL := /bin/bash
# Python 3.10 (TFX 1.16 supports 3.9-3.10). Override with `make PYTHON=/path/to/python3.10`.
PYTHON ?= $(shell scripts/find_python310.sh)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := beam,tfx,tune,docs,test
export TF_USE_LEGACY_KERAS := 1

DEMO_DIR ?= demo_output
DEMO_ROWS ?= 100000

.PHONY: install demo test lint format bench-preprocess bench-autodim bench-amtl clean

install: $(STAMP)

$(STAMP): constraints.txt setup.py
	@test -n "$(PYTHON)" || { echo "error: Python 3.10 not found; run: make PYTHON=/path/to/python3.10 $(MAKECMDGOALS)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' || { echo "error: $(PYTHON) is not Python 3.10 (TFX 1.16 needs 3.9-3.10)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $@

demo: $(STAMP)
	$(BIN)/dimsel run --dataset synthetic --rows $(DEMO_ROWS) --seed 0 --derive probe \
		--output $(DEMO_DIR)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/python -m pytest

bench-preprocess: $(STAMP)
	$(BIN)/python benchmarks/preprocess_speed.py --rows 1000000 --out benchmarks/results/preprocess_speed.json

bench-autodim: $(STAMP)
	$(BIN)/python benchmarks/autodim_speed.py --rows 200000 --repeats 7 --out benchmarks/results/autodim_speed.json
	$(BIN)/python benchmarks/search_quality.py --rows 100000 --seeds 0 1 2 --derive alpha probe \
		--out benchmarks/results/search_quality.json

bench-amtl: $(STAMP)
	$(BIN)/python benchmarks/amtl_speed.py --rows 200000 --repeats 7 --out benchmarks/results/amtl_speed.json

clean:
	rm -rf $(VENV) $(DEMO_DIR) build dist *.egg-info .pytest_cache .ruff_cache
