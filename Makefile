# Folio: `make run` serves the app on http://127.0.0.1:8000, `make test` runs the suite.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install run test test-postgres browser lint

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,bench]"
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the browser tests (Playwright never downloads a browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The web server and one background worker (the e-mails); Ctrl-C (or either one ending)
# stops both.
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py load_demo
	@$(PY) manage.py worker & worker=$$!; \
	$(VENV)/bin/gunicorn billing.wsgi --bind 127.0.0.1:8000 --workers 2 --access-logfile - & \
	web=$$!; \
	trap 'kill $$web $$worker 2>/dev/null' INT TERM; \
	while kill -0 $$web 2>/dev/null && kill -0 $$worker 2>/dev/null; do sleep 1; done; \
	kill $$web $$worker 2>/dev/null; wait

lint: install
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run

test: install browser lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The same suite on PostgreSQL (the concurrency tests run only there).
PG_URL ?= postgres://postgres@127.0.0.1:5432/folio_test
test-postgres: install browser
	DATABASE_URL=$(PG_URL) $(VENV)/bin/pytest $(PYTEST_ARGS)
