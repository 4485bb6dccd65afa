# Two commands do all the set-up on a fresh machine with python3 and make:
#   make demo   virtualenv + install + emulator + the Meltano job into DuckDB (models, tests)
#               + the HTML report
#   make test   virtualenv + install + the whole test suite (starts its own servers)
# Every step is skipped when its inputs have not changed, so both can be run again at will.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PLUGINS_STAMP := .meltano/.plugins-installed
# Plugins and tests find `meltano`, `tap-onepassword` and `tap-onepassword-emulator` in the
# virtualenv. The emulator is its own distribution (emulator/), installed for tests and demos only.
RUN := PATH="$(abspath $(BIN)):$$PATH"

.PHONY: venv plugins postgres chromium test demo report settings bench soak scale-demo lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml emulator/pyproject.toml
	@echo ">> creating virtualenv in $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo ">> installing tap-onepassword with its test tools, and the emulator (pip)"
	@# The emulator last: a virtualenv made before it had a distribution of its own holds an old
	@# tap that owned its command, and upgrading that tap removes the command.
	@{ $(BIN)/python -m pip install --disable-pip-version-check --upgrade pip \
		&& $(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]' \
		&& $(BIN)/python -m pip install --disable-pip-version-check --no-deps --force-reinstall -e ./emulator; } > $(VENV)/pip-install.log 2>&1 \
		|| { tail -n 30 $(VENV)/pip-install.log; echo "!! pip install failed (full log: $(VENV)/pip-install.log)"; exit 1; }
	@touch $(STAMP)
	@echo ">> virtualenv ready"

# Meltano's own virtualenvs for tap-onepassword (editable) and the two loaders, from PyPI only
# (every plugin is declared inline in meltano.yml). --clean rebuilds them whenever meltano.yml
# or the tap's dependencies change; otherwise nothing is reinstalled. Meltano installs with uv,
# which writes no bytecode: UV_COMPILE_BYTECODE does it once here, or every plugin start where
# PYTHONDONTWRITEBYTECODE is set (CI) compiles its imports again (1.5 s CPU for the loader).
plugins: $(PLUGINS_STAMP)

$(PLUGINS_STAMP): $(STAMP) meltano.yml
	@echo ">> installing the Meltano plugins (tap-onepassword, target-jsonl, target-postgres, target-duckdb, dbt-postgres, dbt-duckdb)"
	@$(RUN) MELTANO_SEND_ANONYMOUS_USAGE_STATS=false UV_COMPILE_BYTECODE=1 $(BIN)/meltano install --clean > $(VENV)/meltano-install.log 2>&1 \
		|| { tail -n 30 $(VENV)/meltano-install.log; echo "!! meltano install failed (full log: $(VENV)/meltano-install.log)"; exit 1; }
	@rm -f $(VENV)/meltano-install.log
	@touch $(PLUGINS_STAMP)
	@echo ">> Meltano plugins ready"

# The end-to-end tests start a throwaway PostgreSQL cluster: they need the server programs.
postgres:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo ">> PostgreSQL server programs found"; \
	else \
		echo ">> installing the PostgreSQL 15 server (apt-get)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql-15 >/dev/null \
			&& echo ">> PostgreSQL server installed"; \
	fi

# The report test renders the HTML report in a real browser: Debian's Chromium.
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		echo ">> Chromium found"; \
	else \
		echo ">> installing Chromium (apt-get)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null \
			&& echo ">> Chromium installed"; \
	fi

# Lint first: CI (.ci/run) fails on a lint failure before any test runs.
test: venv lint plugins postgres chromium
	@echo ">> running the test suite"
	@$(RUN) $(BIN)/python -m pytest

demo: venv plugins
	@$(RUN) $(BIN)/python scripts/demo.py

# The HTML report from the models in output/warehouse.duckdb (`meltano run
# onepassword-to-duckdb`); REPORT_ARGS="--help" for other sources (PostgreSQL) and paths.
report: venv
	@$(RUN) $(BIN)/python scripts/report.py $(REPORT_ARGS)

# Rewrite the settings and streams tables in README.md and the extractor's settings in
# meltano.yml from the tap (run after changing a setting or a stream; the tests fail while
# they differ).
settings: venv
	@$(RUN) $(BIN)/python scripts/sync_settings.py

# Throughput, by hand (not part of `make test`; the pipeline case alone takes 20 minutes or
# more): (a) CPU per record against a raw floor, (b) wall time with 100 ms latency, (c) peak
# memory over 1,000,000 events, (d) 10, 100 and 1,000 accounts (CPU, memory, STATE bytes), and
# records/s of `meltano run` into PostgreSQL beside the loader alone and the tap alone. Prints
# a table and writes benchmarks/results/latest.json.
# Knobs: make bench BENCH_ARGS="--help"; one case: make bench BENCH_ARGS="--only pipeline".
bench: venv plugins postgres
	@$(RUN) $(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

# Reliability soak, by hand (not part of `make test`; about three minutes): a 100,000-event
# extraction through random emulator faults, then again with 25 SIGKILLs/SIGTERMs, each resumed
# from the last STATE; prints what it tried and what it found, exits 1 if an event was lost, a
# duplicate was unexplained, a run failed or a token was printed. Knobs: SOAK_ARGS="--help".
soak: venv
	@$(RUN) $(BIN)/python tests/reliability/soak.py $(SOAK_ARGS)

# Account groups in parallel on Dagster, next to one process reading every account, against
# the emulator with state in a throwaway PostgreSQL (by hand, not part of `make test`; a few
# minutes): per group, the events that landed and how long its step took; then the models.
# Knobs: make scale-demo SCALE_ARGS="--help".
scale-demo: venv plugins postgres
	@$(RUN) $(BIN)/python -m tests.orchestrate.scale_demo $(SCALE_ARGS)

# ruff (lint and formatting), mypy (the package, the emulator and the tests) and the import
# contract in pyproject.toml (command line -> tap -> run -> streams -> API client -> helpers;
# the tap and the emulator independent). The same checks run as pre-commit hooks.
lint: venv
	@echo ">> lint: ruff check, ruff format --check, mypy, import contract"
	@$(BIN)/ruff check --quiet .
	@$(BIN)/ruff format --check --quiet .
	@$(BIN)/mypy
	@$(BIN)/lint-imports > $(VENV)/lint-imports.log 2>&1 \
		|| { cat $(VENV)/lint-imports.log; echo "!! the import contract is broken (see above)"; exit 1; }
	@tail -n 1 $(VENV)/lint-imports.log

clean:
	rm -rf $(VENV) .meltano output .pytest_cache
