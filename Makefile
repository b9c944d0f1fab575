# The two commands of the README. Both install what is missing first (infra/setup.sh).
.PHONY: install setup demo test lint stop

install:
	bash infra/setup.sh

setup: install
	.venv/bin/smartrehab setup

demo: install
	.venv/bin/smartrehab demo

test: install
	.venv/bin/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

lint:
	.venv/bin/ruff check .
	.venv/bin/sqlfluff lint dbt/models ml/relapse_risk ml/security_situation

stop:
	.venv/bin/smartrehab stop
