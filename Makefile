.PHONY: setup demo test test-slow lint

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/saescope demo

test: setup
	.venv/bin/python -m pytest -q

test-slow: setup
	.venv/bin/python -m pytest -q -m slow

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/pyright
	cd web && npm run --silent lint
	cd web && npm run --silent format:check
	cd web && npm run --silent typecheck
