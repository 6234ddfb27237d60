# keras_dimsel — the two commands a new user needs: `make demo` and `make test`.
# Both create .venv with Python 3.10 and install the pinned set in constraints.txt.

SHELL := /bin/bash
# Python 3.10 (TFX 1.16 supports 3.9-3.10). Override with `make PYTHON=/path/to/python3.10`.
PYTHON ?= $(shell scripts/find_python310.sh)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := beam,tfx,tune,docs,test
# uv installs the same pinned set as pip, downloading and unpacking in parallel: about
# 1.5 minutes on a new machine against pip's 3.5, bytecode compiled by both (2 cores, no cache).
UV := uv==0.13.10
export TF_USE_LEGACY_KERAS := 1

DEMO_DIR ?= demo_output
DEMO_ROWS ?= 100000

.PHONY: install demo test lint format docs docs-serve docs-figures bench-preprocess bench-autodim bench-amtl bench-scale bench-export bench-first-step bench-quick bench clean

install: $(STAMP)

$(STAMP): constraints.txt setup.py
	@test -n "$(PYTHON)" || { echo "error: Python 3.10 not found; run: make PYTHON=/path/to/python3.10 $(MAKECMDGOALS)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' || { echo "error: $(PYTHON) is not Python 3.10 (TFX 1.16 needs 3.9-3.10)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" "$(UV)"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -c constraints.txt -e ".[$(EXTRAS)]"
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

# Three test processes (pytest-xdist), each handed the next test as it frees up, so the
# long end-to-end tests spread over the cores. On 2 cores, two processes left the CPU
# idle 9% of the time (while a test waits on a child process or on files); three
# finished in 15.6 min instead of 16.7. PYTEST_ARGS= runs in one process.
PYTEST_ARGS ?= -n 3 --dist worksteal

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The site (mkdocs.yml); `make test` also builds it with --strict and runs every tutorial.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

docs-serve: $(STAMP)
	$(BIN)/mkdocs serve

# The site's figures, from real runs: tutorials 2 (AutoDim on Criteo) and 3 (AMTL on MovieLens).
FIGURES_DIR ?= docs_figures_runs
docs-figures: $(STAMP)
	$(BIN)/python -m tests.docs.pages docs/tutorials/02-autodim-criteo.md --workdir $(FIGURES_DIR)/02
	$(BIN)/python -m tests.docs.pages docs/tutorials/03-amtl-warm-start.md --workdir $(FIGURES_DIR)/03
	cp $(FIGURES_DIR)/02/runs/search/search.png docs/img/search_criteo.png
	cp $(FIGURES_DIR)/03/runs/amtl/amtl_dims.png docs/img/amtl_dims_movielens.png

bench-preprocess: $(STAMP)
	$(BIN)/python benchmarks/preprocess_speed.py --rows 1000000 --out benchmarks/results/preprocess_speed.json

bench-autodim: $(STAMP)
	$(BIN)/python benchmarks/autodim_speed.py --rows 200000 --repeats 7 --out benchmarks/results/autodim_speed.json
	$(BIN)/python benchmarks/autodim_speed.py --rows 200000 --repeats 7 --input steps \
		--out benchmarks/results/autodim_speed_steps.json
	$(BIN)/python benchmarks/search_quality.py --rows 100000 --seeds 0 1 2 --derive alpha probe \
		--out benchmarks/results/search_quality.json

bench-amtl: $(STAMP)
	$(BIN)/python benchmarks/amtl_speed.py --rows 200000 --repeats 7 --out benchmarks/results/amtl_speed.json

# Training at 10k / 300k / 3M ids, every stage and embedding optimizer (an hour or more).
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale.py --out benchmarks/results/scale.json

bench-export: $(STAMP)
	$(BIN)/python benchmarks/export_speed.py --model deepfm --repeats 5 --out benchmarks/results/export_speed.json

bench-first-step: $(STAMP)
	$(BIN)/python benchmarks/first_step.py --model deepfm --repeats 3 --out benchmarks/results/first_step.json

# The benchmark study (benchmarks/README.md): summary.json, summary.md and PNG plots in
# benchmarks/results. bench-quick: one seed, small settings, under ten minutes on two cores;
# bench: the full study (hours). It trains its cells in BENCH_RUNS, whose records git keeps
# (benchmarks/results/study/.gitignore), so it resumes where the last run stopped, also on
# another machine; to train every cell again: make bench BENCH_RUNS=/tmp/new-cells.
# STUDY_ARGS passes more options, e.g. STUDY_ARGS=--dry-run lists the cells.
STUDY_ARGS ?=
BENCH_RUNS ?= benchmarks/results/study
bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.study --config quick --jobs 2 --out benchmarks/results $(STUDY_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.study --config full --jobs 2 --out benchmarks/results \
		--runs $(BENCH_RUNS) $(STUDY_ARGS)

clean:
	rm -rf $(VENV) $(DEMO_DIR) $(FIGURES_DIR) site build dist *.egg-info .pytest_cache .ruff_cache
