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

test: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" python -m pytest -q

lint: $(VENV)/.installed
	$(BIN)/ruff check mlprune stages tests
