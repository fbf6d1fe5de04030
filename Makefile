# BPM-OS — the two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8000
BIN    := $(VENV)/bin

.PHONY: run test lint format bench clean

# Each step says what it does before doing it: a first `make run` spends about a
# minute in pip and up to a minute or two seeding, which must not look like a hang.
PIP := $(BIN)/python -m pip --disable-pip-version-check

$(BIN)/python:
	@echo "==> creating the virtualenv $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	@echo "==> installing the Python packages of requirements.txt into $(VENV) (about a minute the first time)"
	$(PIP) install --progress-bar on -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	@echo "==> installing the Python packages of requirements-dev.txt into $(VENV) (about a minute the first time)"
	$(PIP) install --progress-bar on -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

## run: install, migrate, seed the demo plant, serve it on 127.0.0.1:$(PORT) (Ctrl-C stops all)
run: $(VENV)/.runtime
	@echo "==> migrating the database (embedded: SQLite under var/; the first run also makes var/secret_key)"
	$(BIN)/python manage.py migrate --noinput
	@echo "==> seeding the demo plant (a first run takes up to a minute or two; later runs seconds)"
	$(BIN)/python manage.py seed_demo
	@echo "==> serving http://127.0.0.1:$(PORT) (API docs /api/docs/, admin /admin/): daphne, a Celery worker and beat, the OPC UA plant simulator and the SCADA collector; Ctrl-C stops all"
	BPMOS_PORT=$(PORT) $(BIN)/honcho -f Procfile start

## test: install and run the whole suite (SQLite, or PostgreSQL/Redis from DATABASE_URL/REDIS_URL)
test: $(VENV)/.dev
	@echo "==> checking that every model change has its migration"
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest -n $${PYTEST_WORKERS:-auto} $(PYTEST_ARGS)

## lint: ruff check, ruff format --check, and the import contracts (docs/architecture.md)
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## bench: every bench (lines, ledger, fanout, scaleout, dashboards, scale, listload) and one table of
## figure, ceiling in the same run, ratio, goal, pass/miss (docs/performance.md).
## Needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL); BENCH_ARGS passes options,
## e.g. BENCH_ARGS='--only scale --scale-args "--scale year"'.
bench: $(VENV)/.dev
	nice -n 19 $(BIN)/python -m bench.suite $(BENCH_ARGS)

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf var
