# The two commands of the README. Both install what is missing first (infra/setup.sh).
.PHONY: setup demo test lint stop

setup:
	bash infra/setup.sh

demo: setup
	.venv/bin/smartrehab demo

test: setup
	.venv/bin/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

lint:
	.venv/bin/ruff check .
	.venv/bin/sqlfluff lint dbt/models --dialect sparksql --templater jinja

stop:
	.venv/bin/smartrehab stop
