# BPM-OS — the two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8000
BIN    := $(VENV)/bin

.PHONY: run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

## run: install, migrate, seed the demo plant, serve it on 127.0.0.1:$(PORT) (Ctrl-C stops all)
run: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	BPMOS_PORT=$(PORT) $(BIN)/honcho -f Procfile start

## test: install and run the whole suite (SQLite, or PostgreSQL/Redis from DATABASE_URL/REDIS_URL)
test: $(VENV)/.dev
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest -n $${PYTEST_WORKERS:-auto} $(PYTEST_ARGS)

## lint: ruff check, ruff format --check, and the import contracts (docs/architecture.md)
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf var
