# Two commands for a fresh machine with Python 3.11+: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test full lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[test,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tickwatch demo $(ARGS)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict alerts schemas
	$(VENV)/bin/mypy streams tools
	$(VENV)/bin/python -m pytest -q

# The long forms of the long scenarios (a million-tick replay, ...); not run by CI.
full: $(STAMP)
	TICKWATCH_FULL=1 $(VENV)/bin/python -m pytest -q -s tests/e2e/test_large_replay.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
