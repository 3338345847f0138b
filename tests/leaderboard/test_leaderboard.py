"""Leaderboard over hand-written result files: exact Markdown and CSV, deltas, mean ± std, problems."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mae_transfer.leaderboard import build_leaderboard
from mae_transfer.matrix.plan.planner import plan_matrix
from mae_transfer.matrix.spec.matrix_spec import load_spec

MATRIX = """
name: board
backbones:  # official MAE format: the release's pre-training, as the MAE reference rows report
  - {name: mine_b, checkpoint: b.pth, arch: vit_base_patch16, format: mae}
  - {name: mine_l, checkpoint: l.pth, arch: vit_large_patch16, format: mae}
tasks:
  - {task: coco-maskrcnn, recipe: vitdet, backbones: [mine_b]}
  - {task: inat2017, recipe: paper}
seeds: 2
references: [refs.yaml]
"""
REFERENCES = """
sources: {a: Test source A, b: Test source B}
rows:
  - {task: coco-maskrcnn, recipe: vitdet, arch: vit_base_patch16, metric: AP_box, value: 51.6, pretrain: released, source: a}
  - {task: coco-maskrcnn, recipe: vitdet, arch: vit_base_patch16, metric: AP_mask, value: 45.9, pretrain: released, source: a}
  - {task: coco-maskrcnn, recipe: vitdet, arch: vit_base_patch16, metric: AP_box, value: 99.0, pretrain: released, source: b}
  - {task: inat2017, recipe: paper, arch: vit_base_patch16, metric: top1, value: 60.0, pretraining: supervised, source: b}
  - {task: inat2017, recipe: paper, arch: vit_base_patch16, metric: top1, value: 70.5, pretrain: released, source: b}
  - {task: inat2017, recipe: paper, arch: vit_large_patch16, metric: top1, value: 75.7, pretrain: released, source: b}
"""


def result(metrics: dict, batch: int, cell_id: str) -> dict:
    return {"schema": 1, "cell": {"id": cell_id, "backbone": "x", "task": "x", "recipe": "x", "seed": 0}, "metrics": metrics,
            "provenance": {"eval_mode": "ss", "checkpoint_policy": "last", "effective_batch": batch, "gpus": 8,
                           "git_commit": "abcdef1234567", "git_dirty": False}}


@pytest.fixture()
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))
    (tmp_path / "m.yaml").write_text(MATRIX)
    (tmp_path / "refs.yaml").write_text(REFERENCES)
    plan = plan_matrix(load_spec(tmp_path / "m.yaml"))
    dirs = {c.label: Path(c.work_dir) for c in plan.cells}
    ids = {c.label: c.id for c in plan.cells}
    for d in dirs.values():
        d.mkdir(parents=True)
    files = {
        "coco-maskrcnn.vitdet.mine_b.s0": result({"AP_box": 51.0, "AP_mask": 45.0}, 64, ids["coco-maskrcnn.vitdet.mine_b.s0"]),
        "coco-maskrcnn.vitdet.mine_b.s1": result({"AP_box": 51.4, "AP_mask": 45.6}, 64, ids["coco-maskrcnn.vitdet.mine_b.s1"]),
        "inat2017.paper.finetune.mine_b.s0": result({"top1": 70.0, "top5": 90.0}, 1024, ids["inat2017.paper.finetune.mine_b.s0"]),
    }
    for label, payload in files.items():
        (dirs[label] / "result.json").write_text(json.dumps(payload))
    corrupt = dirs["inat2017.paper.finetune.mine_b.s1"] / "result.json"
    corrupt.write_text("{not json")
    (dirs["inat2017.paper.finetune.mine_l.s0"] / "state.json").write_text(json.dumps(
        {"state": "failed", "attempts": 1, "error_tail": "Traceback (most recent call last):\nRuntimeError: boom"}))
    return build_leaderboard(plan), corrupt


def test_markdown_is_exact(board) -> None:
    leaderboard, corrupt = board
    expected = f"""# Leaderboard: board

## Table 4: COCO object detection and instance segmentation (Mask R-CNN, ViT + FPN)

| backbone | arch | recipe | variant | AP box | AP mask | eval | ckpt | batch | GPUs | commit |
|---|---|---|---|---|---|---|---|---|---|---|
| mine_b | ViT-B | vitdet | - | 51.20 ± 0.28 (n=2) Δ -0.40 | 45.30 ± 0.42 (n=2) Δ -0.60 | ss | last | 64 | 8 | abcdef1 |
| reference (MAE, released 1600 ep norm-pix) | ViT-B | vitdet | - | 51.6 [1] | 45.9 [1] | - | - | - | - | - |

- [1] Test source A

## Table 6: transfer to classification (top-1)

| backbone | arch | recipe | variant | iNat2017 | iNat2018 | iNat2019 | Places205 | Places365 | eval | ckpt | batch | GPUs | commit |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| mine_b | ViT-B | paper | finetune | 70.00 (n=1) Δ -0.50 [1 failed] | - | - | - | - | ss | last | 1024 | 8 | abcdef1 |
| mine_l | ViT-L | paper | finetune | 1 failed, 1 missing | - | - | - | - | - | - | - | - | - |
| reference (MAE, released 1600 ep norm-pix) | ViT-B | paper | finetune | 70.5 [1] | - | - | - | - | - | - | - | - | - |
| reference (MAE, released 1600 ep norm-pix) | ViT-L | paper | finetune | 75.7 [1] | - | - | - | - | - | - | - | - | - |

- [1] Test source B

## Problems

- {corrupt}: not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)
- inat2017.paper.finetune.mine_l.s0: failed: RuntimeError: boom
"""
    assert leaderboard.render("md") == expected


def test_csv_is_exact(board) -> None:
    leaderboard, _ = board
    released = ('"the released checkpoint, full 1600-epoch schedule, norm-pix, mask ratio 0.75, decoder 8 x 512 (taken '
                "from the declared checkpoint format 'mae')\"")
    reported = '"the released checkpoint, full 1600-epoch schedule, norm-pix, mask ratio 0.75, decoder 8 x 512"'
    expected = f"""table,backbone,arch,task,recipe,variant,metric,mean,std,n,planned,failed,blocked,running,missing,pretraining,reference,delta,reference_source,reference_pretraining,comparable,eval_mode,checkpoint_policy,effective_batch,gpus,git_commit,off_recipe,vs_baseline
table4,mine_b,vit_base_patch16,coco-maskrcnn,vitdet,,AP_box,51.2000,0.2828,2,2,0,0,0,0,{released},51.6,-0.4000,Test source A,{reported},yes,ss,last,64,8,abcdef1,,
table4,mine_b,vit_base_patch16,coco-maskrcnn,vitdet,,AP_mask,45.3000,0.4243,2,2,0,0,0,0,{released},45.9,-0.6000,Test source A,{reported},yes,ss,last,64,8,abcdef1,,
table6,mine_b,vit_base_patch16,inat2017,paper,finetune,top1,70.0000,,1,2,1,0,0,0,{released},70.5,-0.5000,Test source B,{reported},yes,ss,last,1024,8,abcdef1,,
table6,mine_l,vit_large_patch16,inat2017,paper,finetune,top1,,,0,2,1,0,0,1,{released},75.7,,Test source B,{reported},yes,,,,,,,
"""
    assert leaderboard.render("csv") == expected


def test_mean_std_and_delta_values(board) -> None:
    leaderboard, _ = board
    coco = next(t for t in leaderboard.tables if t.layout.key == "table4")
    entry = coco.rows[0].entries[("coco-maskrcnn", "AP_box")]
    assert entry.n == 2 and math.isclose(entry.mean, 51.2)
    assert math.isclose(entry.std, math.sqrt(((51.0 - 51.2) ** 2 + (51.4 - 51.2) ** 2) / 1))
    assert math.isclose(entry.delta, 51.2 - 51.6)  # first MAE row wins over the later 99.0


def test_corrupt_result_is_reported_not_fatal(board) -> None:
    leaderboard, corrupt = board
    assert any(str(corrupt) in problem for problem in leaderboard.problems)
    statuses = sorted(o.status for o in leaderboard.collection.outcomes)
    assert statuses == ["done", "done", "done", "failed", "failed", "missing"]


def test_html_is_self_contained_and_png_is_a_chart(board) -> None:
    leaderboard, _ = board
    page = leaderboard.render("html")
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page
    assert "<link" not in page and "<script" not in page and "http" not in page
    assert "51.20 ± 0.28 (n=2) Δ -0.40" in page
    png = leaderboard.render("png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


OFF_RECIPE_MATRIX = """
name: board
backbones:
  - {name: mine_b, checkpoint: b.pth, arch: vit_base_patch16, format: mae}
resources: {gpus_per_cell: 8}
tasks:
  - {task: inat2017, recipe: paper}
  - {task: inat2017, recipe: paper, batch: 512}
references: [refs.yaml]
"""


def test_off_recipe_cell_has_its_own_row_a_marker_and_a_footnote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))
    (tmp_path / "m.yaml").write_text(OFF_RECIPE_MATRIX)
    (tmp_path / "refs.yaml").write_text(REFERENCES)
    plan = plan_matrix(load_spec(tmp_path / "m.yaml"))
    for cell in plan.cells:
        payload = result({"top1": 70.0 if cell.off_recipe else 71.0}, cell.effective_batch, cell.id)
        payload["provenance"].update(off_recipe=cell.off_recipe, off_recipe_reason=cell.off_recipe_reason)
        Path(cell.work_dir).mkdir(parents=True)
        (Path(cell.work_dir) / "result.json").write_text(json.dumps(payload))
    board = build_leaderboard(plan)
    lines = board.render("md").splitlines()
    assert "| mine_b | ViT-B | paper | finetune | 71.00 (n=1) Δ +0.50 | - | - | - | - | ss | last | 1024 | 8 | abcdef1 |" in lines
    assert ("| mine_b | ViT-B | paper | finetune batch 512 | 70.00 (n=1) Δ -0.50 † | - | - | - | - | ss | last | 512 | 8 "
            "| abcdef1 |") in lines
    assert ("- † off-recipe: mine_b paper finetune batch 512: batch 512 set in tasks[1].batch (recipe batch 1024); "
            "lr by the linear scaling rule 0.002 x 512 / 1024 = 0.001") in lines
    rows = board.render("csv").splitlines()
    assert rows[0].endswith(",off_recipe,vs_baseline")
    assert rows[1].endswith(",1024,8,abcdef1,,")
    assert rows[2].endswith(",512,8,abcdef1,batch 512 set in tasks[1].batch (recipe batch 1024); lr by the linear "
                            "scaling rule 0.002 x 512 / 1024 = 0.001,")
    page = board.render("html")
    assert "<td>70.00 (n=1) Δ -0.50 †</td>" in page and "<p class='off-recipe'>† off-recipe: mine_b paper" in page
