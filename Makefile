# Two commands for a fresh clone: `make run` and `make test`. Each sets up .venv on first use.
#
# The default install takes the CPU build of PyTorch. GPU users pick their CUDA build, e.g.
#   make TORCH="torch==2.5.1" TORCH_INDEX=<the PyTorch wheel index for your CUDA version> run
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0
TORCH_INDEX ?=
DATASET ?= minesweeper
SEEDS  ?= 5
# The read-only local copy of the datasets beside the checkout, when present; else the cache/download.
DATA_ROOT ?= $(wildcard ../shared/datasets)
RUN_ARGS ?=

# The glibc allocator returns memory to the OS too eagerly for PyTorch's CPU training;
# transparent huge pages make the same runs 2x faster on the machines we measured.
export THP_MEM_ALLOC_ENABLE = 1

.PHONY: run test test-fast bench bench-quick setup docs dist clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/spexphormer run --dataset $(DATASET) --seeds $(SEEDS) --out runs/$(DATASET) \
		$(if $(DATA_ROOT),--data-root $(DATA_ROOT)) $(RUN_ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest

# The inner loop: everything but the tests marked slow (CI runs `make test`, i.e. both).
test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not slow"

bench: $(VENV)/.installed
	$(PY) benchmarks/run_all.py $(if $(DATA_ROOT),--data-root $(DATA_ROOT))

bench-quick: $(VENV)/.installed
	$(PY) benchmarks/run_all.py --quick $(if $(DATA_ROOT),--data-root $(DATA_ROOT))

# The documentation site (docs/ + the API reference from the docstrings) into site/; warnings and
# broken links fail the build.
$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[docs]'
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# A wheel and an sdist in dist/, checked by twine (tests/test_packaging.py installs the wheel).
dist: $(VENV)/.installed
	$(PY) -m pip install -q build twine
	rm -rf dist
	$(PY) -m build --sdist --wheel --outdir dist .
	$(PY) -m twine check --strict dist/*

clean:
	rm -rf $(VENV) runs .pytest_cache site dist build
