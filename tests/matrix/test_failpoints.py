"""The fault-injection facility itself (fast): off by default, fires once, kills with SIGKILL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from matrix_helpers import REPO

from mae_transfer import failpoints
from mae_transfer.matrix.run.resume import remove_stale_tmp

WRITE = ("import sys; from pathlib import Path; from mae_transfer.matrix.run.result import write_result; "
         "write_result(Path(sys.argv[1]), {'metrics': {'top1': 1.0}, 'padding': 'x' * 1000})")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (failpoints.ENV, failpoints.MARKER_ENV)}
    return {**env, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **extra}


def test_off_by_default_and_unknown_points_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(failpoints.ENV, raising=False)
    assert failpoints.active() is None and not failpoints.armed("first_step")
    failpoints.crash_if("first_step")  # nothing happens
    monkeypatch.setenv(failpoints.ENV, "frist_step")
    with pytest.raises(ValueError, match="unknown failpoint"):
        failpoints.active()


def test_result_write_point_dies_with_a_half_written_temporary_file_once(tmp_path: Path) -> None:
    marker = tmp_path / "fired"
    env = _env(**{failpoints.ENV: "result_write", failpoints.MARKER_ENV: str(marker)})
    killed = subprocess.run([sys.executable, "-c", WRITE, str(tmp_path)], env=env, cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert killed.returncode == -9 and "failpoint result_write fired" in killed.stderr
    assert marker.read_text().startswith("result_write")
    assert not (tmp_path / "result.json").exists()
    (partial,) = tmp_path.glob(".result.json.*.tmp")
    with pytest.raises(ValueError):
        json.loads(partial.read_text())
    assert remove_stale_tmp(tmp_path, "result.json") == [partial] and not partial.exists()
    again = subprocess.run([sys.executable, "-c", WRITE, str(tmp_path)], env=env, cwd=REPO, capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0, again.stderr  # the marker: it fires once
    assert json.loads((tmp_path / "result.json").read_text())["metrics"] == {"top1": 1.0}
