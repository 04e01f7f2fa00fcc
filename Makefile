# Two entry points for a fresh clone: `make repro` (run the pipeline), `make test`.
# Both create .venv and install the project (pinned torch, dvc, ...) on first use.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: repro test lint

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $@

repro: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" dvc repro

# Two workers: the end-to-end pipelines mostly wait on process start-up, so they overlap well
# on 2 cores; the tests sharing the smoke pipeline stay in one worker (tests/conftest.py).
test: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" python -m pytest -q -n 2 --dist loadgroup

lint: $(VENV)/.installed
	$(BIN)/ruff check mlprune stages tests benchmarks
