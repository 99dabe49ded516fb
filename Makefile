# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench-smoke clean

$(STAMP): pyproject.toml xrdpdf/stages/_scatter.c
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/xrdpdf demo -o demo_out --overwrite

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	MPLBACKEND=Agg $(BIN)/python -m pytest -q -n auto --dist loadfile
	if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  MPLBACKEND=Agg $(BIN)/python -m pytest -q -p no:cacheprovider --nbmake notebooks; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

bench-smoke: $(STAMP)
	for f in benchmarks/*.py; do $(BIN)/python $$f --smoke || exit 1; done

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache
