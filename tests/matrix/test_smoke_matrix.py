"""End to end: `mae-transfer run benchmarks/smoke.yaml` on CPU, then every leaderboard format."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from matrix_helpers import REPO, cli

pytestmark = pytest.mark.slow


def test_smoke_matrix_runs_every_task_kind_and_renders(tmp_path: Path, env) -> None:
    matrix = str(REPO / "benchmarks" / "smoke.yaml")
    root = ["--work-root", str(tmp_path / "smoke")]
    run = cli(["run", matrix, *root], env, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    assert "4 done, 0 failed" in run.stdout

    rows = list(csv.DictReader(io.StringIO(cli(["leaderboard", matrix, *root, "--format", "csv"], env).stdout)))
    tasks = {row["task"] for row in rows if row["mean"]}
    assert tasks == {"coco-maskrcnn", "ade20k-upernet", "inat2017", "places365"}
    markdown = cli(["leaderboard", matrix, *root, "--format", "md"], env).stdout
    for title in ("Table 4", "Table 5", "Table 6"):
        assert title in markdown
    for fmt in ("html", "png"):
        out = tmp_path / f"board.{fmt}"
        assert cli(["leaderboard", matrix, *root, "--format", fmt, "--output", str(out)], env).returncode == 0
        assert out.stat().st_size > 1000
    assert "data:image/png;base64," in (tmp_path / "board.html").read_text()

    again = cli(["run", matrix, *root], env)
    assert again.returncode == 0 and "nothing to do: 4 of 4 cells already finished" in again.stdout
