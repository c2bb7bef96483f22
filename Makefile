PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
# the optional C speedups, rebuilt in place when their source changes (the editable install
# builds them once)
SPEEDUPS := $(VENV)/.speedups-built

.PHONY: demo test check docs lint typecheck pytest bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml setup.py
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(SPEEDUPS): $(STAMP) src/chatmgmt/moderation/_speedups.c
	$(BIN)/python setup.py -q build_ext --inplace
	touch $(SPEEDUPS)

demo: $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	$(BIN)/python -m chatmgmt demo

check: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples setup.py
	$(BIN)/ruff format --check src tests benchmarks examples setup.py
	$(BIN)/mypy --strict src

pytest: $(STAMP) $(SPEEDUPS)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# the guides and the API reference generated from the docstrings (mkdocs.yml); --strict: a
# warning fails the build
docs: $(STAMP)
	$(BIN)/mkdocs build --strict -q -f mkdocs.yml

test: check docs pytest

bench: $(STAMP) $(SPEEDUPS)
	@for f in benchmarks/*.py; do echo "# $$f" >&2; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build
	rm -f src/chatmgmt/moderation/_speedups*.so
