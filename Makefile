# The entry points of the README. Each creates/reuses the virtual environment first.
SHELL := /bin/bash
.PHONY: demo test test-fast

demo:
	@venv="$$(scripts/venv.sh)" && PATH="$$venv/bin:$$PATH" bash scripts/demo.sh

test:
	@venv="$$(scripts/venv.sh)" && "$$venv/bin/python" -m pytest $(PYTEST_ARGS)

# The unit tests: no Ray, Tune, end-to-end CLI run or real training (markers in pyproject.toml).
test-fast:
	@venv="$$(scripts/venv.sh)" && "$$venv/bin/python" -m pytest -m "not integration and not cluster" $(PYTEST_ARGS)
