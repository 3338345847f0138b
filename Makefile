# Two entry points for a fresh machine; each first builds the environment (idempotent).
PY := .venv/bin/python
MATRIX ?= benchmarks/smoke.yaml
PYTEST_ARGS ?=

.PHONY: env demo test test-fast

env:
	@bash tools/setup_env.sh

# The main job: the embedded smoke matrix (a tiny MAE pre-trained here and the random initialisation,
# every task kind, generated data, CPU), its leaderboard with the differences, the reconstruction PNG.
demo: env
	$(PY) -m mae_transfer.cli run $(MATRIX)
	$(PY) -m mae_transfer.cli leaderboard $(MATRIX) --format md --baseline tiny_random
	@$(PY) -m mae_transfer.cli status $(MATRIX) --json | $(PY) -c "import json, pathlib, sys; \
	  cells = [pathlib.Path(r['work_dir']) for r in json.load(sys.stdin) if r['cell'].startswith('mae-pretrain')]; \
	  [print('reconstruction:', d / 'reconstruction.png') for d in cells if (d / 'reconstruction.png').is_file()]"

# The test suite on three workers (pytest-xdist) for 2 cores: each test's training is
# single-threaded, and a third worker uses the core a test leaves idle while it waits (SLURM
# scheduling, subprocess start-up, polling). The SLURM tests share one worker (one cluster).
# pytest's exit code 5 ("no tests collected") is reported as a failure of its own.
TEST_WORKERS ?= 3
test: env
	@OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$rc

# The edit loop: no training runs, no subprocess launches, no full-size models (tests/conftest.py).
test-fast: env
	@OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 -m "not slow and not heavy" $(PYTEST_ARGS)
