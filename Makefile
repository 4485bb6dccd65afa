# Two commands do all the set-up on a fresh machine with python3 and make:
#   make demo   virtualenv + install + emulator + real Meltano pipeline into target-jsonl
#   make test   virtualenv + install + the whole test suite (starts its own servers)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test demo bench soak lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@echo ">> creating virtualenv in $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo ">> installing tap-onepassword with its test tools (pip)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)
	@echo ">> virtualenv ready"

test: venv
	@echo ">> running the test suite"
	@PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

lint: venv
	@$(BIN)/ruff check tap_onepassword tests
	@$(BIN)/mypy tap_onepassword

clean:
	rm -rf $(VENV) .meltano output .pytest_cache
