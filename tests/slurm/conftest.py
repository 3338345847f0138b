"""The real SLURM cluster for tests/slurm/ (set up by tools/slurm/setup_cluster.sh).

When the cluster cannot be reached the tests skip, with the reason; with
``MAE_TRANSFER_REQUIRE_SLURM=1`` (set by .ci/run) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "matrix"))


def cluster_problem() -> str | None:
    """Why the SLURM cluster is not usable from here, or None when it is."""
    for tool in ("sinfo", "sbatch", "squeue", "srun"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed (run tools/slurm/setup_cluster.sh as root)"
    try:
        states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s (is slurmctld running?)"
    if states.returncode != 0:
        return f"sinfo failed: {(states.stderr or states.stdout).strip()[:300]}"
    usable = [state for state in states.stdout.split() if state.rstrip("*~#") in ("idle", "mix", "alloc", "comp")]
    if not usable:
        return f"no usable node (sinfo states: {states.stdout.split() or 'none'})"
    return None


def usable_nodes() -> list[str]:
    """The names of the nodes that can take jobs now (idle, mixed, allocated or completing)."""
    listed = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True, text=True, timeout=20)
    rows = [line.split() for line in listed.stdout.splitlines() if len(line.split()) == 2]
    return sorted({name for name, state in rows if state.rstrip("*~#") in ("idle", "mix", "alloc", "comp")})


def _skip_or_fail(message: str) -> None:
    if os.environ.get("MAE_TRANSFER_REQUIRE_SLURM") == "1":
        pytest.fail(message + " (MAE_TRANSFER_REQUIRE_SLURM=1)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Skip (or, with MAE_TRANSFER_REQUIRE_SLURM=1, fail) when SLURM is not reachable."""
    problem = cluster_problem()
    if problem is not None:
        _skip_or_fail(f"no SLURM cluster: {problem}")


@pytest.fixture(scope="session")
def two_nodes(slurm_cluster) -> list[str]:
    """The cluster's usable nodes, at least two (tools/slurm/setup_cluster.sh --nodes 2); else skip or fail."""
    nodes = usable_nodes()
    if len(nodes) < 2:
        _skip_or_fail(f"multi-node tests need 2 usable SLURM nodes, found {nodes or 'none'} "
                      "(run tools/slurm/setup_cluster.sh --nodes 2 as root)")
    return nodes


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    """Environment for ``mae-transfer`` subprocesses (exported to the jobs by sbatch)."""
    return {**os.environ, "MAE_TRANSFER_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
            "CUDA_VISIBLE_DEVICES": "",
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
