"""End to end: `mae-transfer run` of the demo's matrix (benchmarks/smoke.yaml, each training
shortened) on CPU: pre-training, then every task kind on the pre-trained and the random backbone,
then every leaderboard format."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from matrix_helpers import REPO, cli

pytestmark = pytest.mark.slow


# The demo's matrix, shortened: every check below is about the plumbing (every task kind through
# `run`, the records, every leaderboard format), so each training is cut to a few steps. Learning
# is asserted where each task is tested (tests/detection, tests/segmentation, tests/pretrain,
# tests/probes, tests/classification); `make demo` runs the matrix whole. Shipped -> here:
# pre-training 50 -> 20 epochs (80 steps); COCO 200 -> 12 iterations; ADE20K 80 -> 16 (its warmup
# is 10); the linear sweep 60 -> 10 epochs.
CUTS = {"recipe: smoke, epochs: 50}": "recipe: smoke, epochs: 20}",
        "{task: coco-maskrcnn, recipe: smoke}":
        "{task: coco-maskrcnn, recipe: smoke, overrides: {train_cfg.max_iters: 12, train_cfg.val_interval: 12, "
        "default_hooks.checkpoint.interval: 12}}",
        "{task: ade20k-upernet, recipe: smoke}":
        "{task: ade20k-upernet, recipe: smoke, overrides: {train_cfg.max_iters: 16, train_cfg.val_interval: 16, "
        "param_scheduler.1.end: 16, default_hooks.checkpoint.interval: 16}}",
        "{task: digits, recipe: smoke, protocol: linear-sweep}":
        "{task: digits, recipe: smoke, protocol: linear-sweep, overrides: {probe.linear_sweep.epochs: 10}}",
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

    # a second run of the finished matrix does nothing, says so, and rewrites no result
    stamps = {path: path.stat().st_mtime_ns for path in (tmp_path / "smoke" / "cells").glob("*/result.json")}
    assert len(stamps) == 13
    again = cli(["run", matrix, *root], env)
    assert again.returncode == 0 and "nothing to do: 13 of 13 cells already finished" in again.stdout
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps
