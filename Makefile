# The two entry points of the README. Each creates/reuses the virtual environment first.
SHELL := /bin/bash
.PHONY: demo test

demo:
	@venv="$$(scripts/venv.sh)" && PATH="$$venv/bin:$$PATH" bash scripts/demo.sh

test:
	@venv="$$(scripts/venv.sh)" && "$$venv/bin/python" -m pytest $(PYTEST_ARGS)
