# Two entry points for a fresh machine; each first builds the environment (idempotent).
PY := .venv/bin/python
MATRIX ?= benchmarks/smoke.yaml
PYTEST_ARGS ?=

.PHONY: env demo test test-fast

env:
	@bash tools/setup_env.sh

# The main job: the embedded smoke matrix (tiny ViT, generated data, every task kind, CPU).
demo: env
	$(PY) -m mae_transfer.cli run $(MATRIX)
	$(PY) -m mae_transfer.cli leaderboard $(MATRIX) --format md

# The test suite; pytest's exit code 5 ("no tests collected") is reported as a failure of its own.
test: env
	@$(PY) -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$rc

# The edit loop: no training runs, no subprocess launches, no full-size models (tests/conftest.py).
test-fast: env
	@$(PY) -m pytest -q -m "not slow and not heavy" $(PYTEST_ARGS)
