"""End to end: `mae-transfer run` of the demo's matrix (benchmarks/smoke.yaml, its COCO and ADE20K cells
shortened) on CPU: pre-training, then every task kind on the pre-trained and the random backbone,
then every leaderboard format."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from matrix_helpers import REPO, cli

pytestmark = pytest.mark.slow


# The demo's matrix with its COCO and ADE20K cells cut to 40 iterations (200 and 80 in the configs):
# every check below is about the plumbing, and the full COCO cells alone took 2 x 13 CPU-minutes.
# Their learning is asserted in tests/detection and tests/segmentation; `make demo` runs them whole.
CUTS = {"{task: coco-maskrcnn, recipe: smoke}":
        "{task: coco-maskrcnn, recipe: smoke, overrides: {train_cfg.max_iters: 40, train_cfg.val_interval: 40}}",
        "{task: ade20k-upernet, recipe: smoke}":
        "{task: ade20k-upernet, recipe: smoke, overrides: {train_cfg.max_iters: 40, train_cfg.val_interval: 40, "
        "param_scheduler.1.end: 40}}",
        "references: [references/mae_paper.yaml]":
        f"references: [{REPO / 'benchmarks' / 'references' / 'mae_paper.yaml'}]"}


def _demo_matrix(tmp_path: Path) -> str:
    text = (REPO / "benchmarks" / "smoke.yaml").read_text()
    for shipped, cut in CUTS.items():
        assert shipped in text, shipped
        text = text.replace(shipped, cut)
    (tmp_path / "smoke.yaml").write_text(text)
    return str(tmp_path / "smoke.yaml")


def test_smoke_matrix_runs_every_task_kind_and_renders(tmp_path: Path, env) -> None:
    matrix = _demo_matrix(tmp_path)
    root = ["--work-root", str(tmp_path / "smoke")]
    run = cli(["run", matrix, *root], env, timeout=2400)
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    assert "13 done, 0 failed" in run.stdout  # the pre-training, 6 tasks x 2 backbones

    rows = list(csv.DictReader(io.StringIO(cli(["leaderboard", matrix, *root, "--format", "csv"], env).stdout)))
    tasks = {(row["task"], row["backbone"]) for row in rows if row["mean"]}
    assert tasks == {("mae-pretrain", "tiny_mae")} | {
        (task, backbone) for task in ("coco-maskrcnn", "ade20k-upernet", "inat2017", "places365", "digits")
        for backbone in ("tiny_random", "tiny_mae")}, rows
    loss = next(float(row["mean"]) for row in rows if row["task"] == "mae-pretrain")
    assert 0 < loss < 1.0  # norm-pix targets: predicting zeros scores 1.0
    markdown = cli(["leaderboard", matrix, *root, "--format", "md", "--baseline", "tiny_random"], env).stdout
    for title in ("MAE pre-training", "Table 4", "Table 5", "Table 6", "digits: frozen-feature probes"):
        assert title in markdown
    assert markdown.count("| tiny_mae − tiny_random |") == 4  # a difference row under each transfer and probe table
    (figure,) = (tmp_path / "smoke" / "cells").glob("mae-pretrain.*/reconstruction.png")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for fmt in ("html", "png"):
        out = tmp_path / f"board.{fmt}"
        assert cli(["leaderboard", matrix, *root, "--format", fmt, "--output", str(out)], env).returncode == 0
        assert out.stat().st_size > 1000
    assert "data:image/png;base64," in (tmp_path / "board.html").read_text()

    again = cli(["run", matrix, *root], env)
    assert again.returncode == 0 and "nothing to do: 13 of 13 cells already finished" in again.stdout
