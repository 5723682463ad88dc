# Quick start: `make run` (whole graph on demo data) and `make test`. `make dev` opens the UI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The Dagster instance: SQLite files in .dagster_home/, or with DAGSTER_PG_URL set, PostgreSQL
# (runs, events, schedules) with the settings in .dagster_home/postgres/.
ifdef DAGSTER_PG_URL
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home/postgres
else
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
endif

.PHONY: run test dev serve lint format venv clean lock

# Versions come from requirements.lock (the same the image and CI install); `make lock` renews it.
$(BIN)/dagster: pyproject.toml requirements.lock
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(BIN)/dagster

venv: $(BIN)/dagster

run: venv
	$(BIN)/python -m affluent_assets.run

test: venv
	$(BIN)/pytest

# The Dagster UI (port 3000) with its daemon, and the upload page (port 3001) beside it.
dev: venv
	$(BIN)/affluent serve & trap 'kill $$! 2>/dev/null' EXIT INT TERM; $(BIN)/dagster dev -w workspace.yaml

serve: venv
	$(BIN)/affluent serve

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

lock: venv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --upgrade -o requirements.lock

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Removes the results (the warehouse, with the history of every candidate list in it, and the
# lake), the MLflow store and the Dagster run history and sensor cursor (so files still in
# data/landing are rescored); keeps data/raw, data/landing, data/quarantine and data/outcomes.
clean:
	@echo "make clean: deleting data/warehouse.duckdb (all tables, including candidate_history:" \
		"every list ever produced), data/lake (landed batches and their lists' history)," \
		"data/mlflow.db and data/mlartifacts" \
		"(models), the Dagster run history; keeping data/raw, data/landing, data/quarantine," \
		"data/outcomes (campaign outcome files: they match against the history deleted here, so" \
		"the next run quarantines them as unmatched)"
	rm -rf data/warehouse.duckdb data/warehouse.duckdb.wal data/mlflow.db data/mlartifacts data/lake
	find .dagster_home -mindepth 1 -maxdepth 1 ! -name dagster.yaml ! -name postgres -exec rm -rf {} +
	find .dagster_home/postgres -mindepth 1 -maxdepth 1 ! -name dagster.yaml -exec rm -rf {} +
