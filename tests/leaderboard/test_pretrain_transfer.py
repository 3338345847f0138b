"""Pre-train -> transfer on the leaderboard: sweeps along a pre-training parameter, differences to a
baseline backbone, the pre-training table and blocked cells, over files written by the real writers."""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

import pytest

from mae_transfer.leaderboard import cli as leaderboard_cli
from mae_transfer.leaderboard import BaselineError, SweepError, build_leaderboard
from mae_transfer.leaderboard.render import render_html
from mae_transfer.matrix.plan.planner import Plan, plan_matrix
from mae_transfer.matrix.spec.matrix_spec import load_spec
from mae_transfer.matrix.run.state import CellState, mark_finished, mark_running, write_state
from mae_transfer.records import atomic_write_json

MATRIX = """
name: pretrained
backbones:
  - {name: b0, checkpoint: b0.pth, arch: vit_base_patch16}
  - {name: b1, checkpoint: b1.pth, arch: vit_base_patch16}
  - {name: b2, checkpoint: b2.pth, arch: vit_base_patch16}
  - {name: b3, checkpoint: b3.pth, arch: vit_base_patch16}
  - {name: b4, checkpoint: b4.pth, arch: vit_base_patch16}
  - {name: b5, checkpoint: b5.pth, arch: vit_base_patch16}
tasks:
  - {task: inat2017, recipe: paper}
  - {task: coco-maskrcnn, recipe: vitdet}
seeds: 2
references: [refs.yaml]
"""
REFERENCES = """
sources: {b: Test source B}
rows:
  - {task: inat2017, recipe: paper, arch: vit_base_patch16, metric: top1, value: 70.5, pretrain: released, source: b}
"""
# planned backbone -> (shown backbone, pre-training params); b5's cells become pre-training cells
STAGED = {
    "b0": ("mae_tiny-mask_ratio0.9-ep100", {"mask_ratio": 0.9, "decoder_depth": 8}),
    "b1": ("mae_tiny-mask_ratio0.5-ep100", {"mask_ratio": 0.5, "decoder_depth": 8}),
    "b2": ("mae_tiny-mask_ratio0.75-ep100", {"mask_ratio": 0.75, "decoder_depth": 8}),
    "b3": ("mae_tiny-mask_ratio0.75-decoder_depth1-ep100", {"mask_ratio": 0.75, "decoder_depth": 1}),
    "b4": ("random_init", None),
}
# (backbone, task, seed) -> metrics; absent: not run (missing)
RESULTS = {
    ("b0", "inat2017", 0): {"top1": 65.0, "top5": 90.0}, ("b0", "inat2017", 1): {"top1": 66.0, "top5": 90.0},
    ("b0", "coco-maskrcnn", 0): {"AP_box": 42.0, "AP_mask": 38.0},
    ("b1", "inat2017", 0): {"top1": 60.0, "top5": 88.0}, ("b1", "inat2017", 1): {"top1": 62.0, "top5": 88.0},
    ("b1", "coco-maskrcnn", 0): {"AP_box": 40.0, "AP_mask": 36.0}, ("b1", "coco-maskrcnn", 1): {"AP_box": 41.0, "AP_mask": 37.0},
    ("b2", "inat2017", 0): {"top1": 70.0, "top5": 91.0}, ("b2", "inat2017", 1): {"top1": 72.0, "top5": 91.0},
    ("b2", "coco-maskrcnn", 0): {"AP_box": 45.0, "AP_mask": 40.0}, ("b2", "coco-maskrcnn", 1): {"AP_box": 46.0, "AP_mask": 41.0},
    ("b3", "inat2017", 0): {"top1": 69.0, "top5": 90.0},
    ("b4", "inat2017", 0): {"top1": 50.0, "top5": 80.0}, ("b4", "inat2017", 1): {"top1": 51.0, "top5": 80.0},
    ("b4", "coco-maskrcnn", 0): {"AP_box": 30.0, "AP_mask": 28.0}, ("b4", "coco-maskrcnn", 1): {"AP_box": 31.0, "AP_mask": 29.0},
}
PRETRAIN_LOSS = {0.5: 0.41234, 0.75: 0.45678}  # the 0.9 pre-training cell failed


def _write_result(cell, metrics: dict) -> None:
    cell_dir = Path(cell.work_dir)
    cell_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cell_dir / "cell.json", cell.to_json())
    atomic_write_json(cell_dir / "result.json", {
        "schema": 1, "cell": {"id": cell.id, "backbone": cell.backbone, "task": cell.task, "recipe": cell.recipe,
                              "seed": cell.seed, "pretrain": cell.pretrain},
        "metrics": metrics,
        "provenance": {"eval_mode": "ss", "checkpoint_policy": "last", "effective_batch": 64, "gpus": 1,
                       # a pre-training cell's result names the checkpoints it wrote (result.check_result)
                       **({"pretrain_checkpoints": {"100": str(cell_dir / "train" / "checkpoint-99.pth")}}
                          if cell.task == "mae-pretrain" else {})}})


def _stage_plan(tmp_path: Path) -> Plan:
    """The planned cells re-dressed as a stage's transfer and pre-training cells (as the planner makes them)."""
    (tmp_path / "m.yaml").write_text(MATRIX)
    (tmp_path / "refs.yaml").write_text(REFERENCES)
    plan = plan_matrix(load_spec(tmp_path / "m.yaml"))
    cells = []
    pretrain_ids = {}
    for ratio, cell in zip((0.5, 0.75, 0.9), [c for c in plan.cells if c.backbone == "b5" and c.task == "inat2017"]
                           + [c for c in plan.cells if c.backbone == "b5" and c.task == "coco-maskrcnn"][:1]):
        params = {"mask_ratio": ratio, "decoder_depth": 8}
        pretrain_ids[ratio] = cell.id
        cells.append(replace(cell, task="mae-pretrain", backbone=f"mae_tiny-mask_ratio{ratio:g}", protocol=None, recipe="mae",
                             pretrain={"stage": "mae_tiny", "cell": cell.id, "params": params}))
    for cell in plan.cells:
        if cell.backbone not in STAGED:
            continue
        name, params = STAGED[cell.backbone]
        pretrain = None if params is None else {"stage": "mae_tiny", "cell": pretrain_ids.get(params["mask_ratio"], ""),
                                                "epoch": 100, "params": {**params, "epochs": 100}}
        cells.append(replace(cell, backbone=name, pretrain=pretrain))
    for cell in cells:
        original = next(c for c in plan.cells if c.id == cell.id).backbone
        if cell.task == "mae-pretrain":
            ratio = cell.pretrain["params"]["mask_ratio"]
            if ratio in PRETRAIN_LOSS:
                _write_result(cell, {"masked_patch_loss": PRETRAIN_LOSS[ratio]})
            else:
                mark_running(Path(cell.work_dir), None)
                mark_finished(Path(cell.work_dir), ok=False, error_tail="Traceback\nFloatingPointError: loss is nan")
        elif (original, cell.task, cell.seed) in RESULTS:
            _write_result(cell, RESULTS[(original, cell.task, cell.seed)])
        elif original == "b0":  # the transfer cells of the failed 0.9 pre-training wait on it
            write_state(Path(cell.work_dir), CellState(state="blocked", error_tail=f"pre-training cell "
                                                       f"{pretrain_ids[0.9][:10]} failed: loss is nan"))
    return Plan(plan.spec, cells)


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    """Planned and written once: the tests only read it."""
    tmp_path = tmp_path_factory.mktemp("stage")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))
        return _stage_plan(tmp_path)


def _section(markdown: str, title: str) -> list[str]:
    lines = markdown.splitlines()
    start = lines.index(f"## {title}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def test_mask_ratio_sweep_rows_in_numeric_order_per_setting_of_the_other_params(plan: Plan) -> None:
    board = build_leaderboard(plan, along="mask_ratio")
    assert [(t.stage, t.fixed) for t in board.sweeps] == [("mae_tiny", {"decoder_depth": 1, "epochs": 100}),
                                                         ("mae_tiny", {"decoder_depth": 8, "epochs": 100})]
    markdown = board.render("md")
    assert _section(markdown, "mask_ratio sweep: stage mae_tiny (decoder_depth=8 epochs=100)") == [
        "## mask_ratio sweep: stage mae_tiny (decoder_depth=8 epochs=100)", "",
        "| mask_ratio | inat2017 top1 | coco-maskrcnn AP_box | coco-maskrcnn AP_mask |",
        "|---|---|---|---|",
        "| 0.5 | 61.00 ± 1.41 (n=2) | 40.50 ± 0.71 (n=2) | 36.50 ± 0.71 (n=2) |",
        "| 0.75 | 71.00 ± 1.41 (n=2) | 45.50 ± 0.71 (n=2) | 40.50 ± 0.71 (n=2) |",
        "| 0.9 | 65.50 ± 0.71 (n=2) | 42.00 (n=1) [1 blocked] | 38.00 (n=1) [1 blocked] |",
        "", "No paper numbers: the reference files hold none for this sweep.", ""]
    other = _section(markdown, "mask_ratio sweep: stage mae_tiny (decoder_depth=1 epochs=100)")
    assert other[2:6] == ["| mask_ratio | inat2017 top1 | coco-maskrcnn AP_box | coco-maskrcnn AP_mask |", "|---|---|---|---|",
                          "| 0.75 | 69.00 (n=1) [1 missing] | 2 missing | 2 missing |", ""]
    assert "random_init" not in markdown and "masked" not in markdown  # neither the baseline nor pre-training rows
    assert any("blocked: pre-training cell" in p and "loss is nan" in p for p in board.problems)


def test_sweep_csv_holds_the_same_values(plan: Plan) -> None:
    lines = build_leaderboard(plan, along="mask_ratio").render("csv").splitlines()
    assert lines[0] == ("stage,param,value,fixed,task,recipe,variant,metric,mean,std,n,planned,failed,blocked,running,"
                        "missing")
    assert "mae_tiny,mask_ratio,0.75,decoder_depth=8 epochs=100,inat2017,paper,finetune,top1,71.0000,1.4142,2,2,0,0,0,0" in lines
    assert "mae_tiny,mask_ratio,0.9,decoder_depth=8 epochs=100,coco-maskrcnn,vitdet,,AP_box,42.0000,,1,2,0,1,0,0" in lines


def test_sweep_plot_and_html(plan: Plan) -> None:
    board = build_leaderboard(plan, along="mask_ratio")
    png = board.render("png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    page = board.render("html")
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page and "<td>71.00 ± 1.41 (n=2)</td>" in page


def test_an_unknown_sweep_parameter_names_the_ones_there_are(plan: Plan) -> None:
    with pytest.raises(SweepError, match=r"--along 'warmup'.*decoder_depth, epochs, mask_ratio"):
        build_leaderboard(plan, along="warmup")


def test_epochs_sweep_takes_the_checkpoint_epoch_and_names_a_longer_schedule(plan: Plan) -> None:
    # one 200-epoch pre-training evaluated at epochs 50 and 200: a snapshot and a full schedule (only the
    # latter is a Fig. 7 point)
    cells = [c for c in plan.cells if c.backbone.startswith("mae_tiny-mask_ratio0.75-ep") and c.task == "inat2017"]
    early = replace(cells[0], pretrain={**cells[0].pretrain, "epoch": 50, "params": {"mask_ratio": 0.75, "epochs": 200}})
    final = replace(cells[1], pretrain={**cells[1].pretrain, "epoch": 200, "params": {"mask_ratio": 0.75, "epochs": 200}})
    board = build_leaderboard(Plan(plan.spec, [final, early]), along="epochs")
    (table,) = board.sweeps
    assert table.fixed == {"mask_ratio": 0.75}
    assert [(row.label, row.entries[table.columns[0]].values) for row in table.rows] == [
        ("snapshot at epoch 50 of a 200-epoch schedule", [70.0]), ("full 200-epoch schedule", [72.0])]
    markdown = board.render("md")
    assert "| snapshot at epoch 50 of a 200-epoch schedule | 70.00 (n=1) |" in markdown
    assert "'snapshot at epoch E of an N-epoch schedule' row is a checkpoint of one longer cosine schedule" in markdown
    along_mask = build_leaderboard(Plan(plan.spec, [early]), along="mask_ratio")
    assert along_mask.sweeps[0].title == "mask_ratio sweep: stage mae_tiny (snapshot at epoch 50 of a 200-epoch schedule)"


def test_baseline_difference_rows_under_each_table(plan: Plan) -> None:
    board = build_leaderboard(plan, baseline="random_init")
    coco = next(t for t in board.tables if t.layout.key == "table4")
    by_label = {d.label: d for d in coco.differences}
    assert math.isclose(by_label["mae_tiny-mask_ratio0.75-ep100 − random_init"].value("coco-maskrcnn", "AP_box"),
                        45.5 - 30.5)
    assert by_label["mae_tiny-mask_ratio0.75-decoder_depth1-ep100 − random_init"].value("coco-maskrcnn", "AP_box") is None
    table6 = _section(board.render("md"), "Table 6: transfer to classification (top-1)")
    start = table6.index("Difference to the baseline random_init (other − baseline, means over seeds):")
    assert table6[start + 2:start + 8] == [
        "| difference | arch | recipe | variant | iNat2017 | iNat2018 | iNat2019 | Places205 | Places365 |",
        "|---|---|---|---|---|---|---|---|---|",
        "| mae_tiny-mask_ratio0.9-ep100 − random_init | ViT-B | paper | finetune | +15.00 | - | - | - | - |",
        "| mae_tiny-mask_ratio0.5-ep100 − random_init | ViT-B | paper | finetune | +10.50 | - | - | - | - |",
        "| mae_tiny-mask_ratio0.75-ep100 − random_init | ViT-B | paper | finetune | +20.50 | - | - | - | - |",
        "| mae_tiny-mask_ratio0.75-decoder_depth1-ep100 − random_init | ViT-B | paper | finetune | +18.50 | - | - | - | - |"]
    rows = board.render("csv").splitlines()
    assert any(r.startswith("table6,mae_tiny-mask_ratio0.5-ep100,") and r.endswith(",10.5000") for r in rows)
    assert any(r.startswith("table6,random_init,") and r.endswith(",") for r in rows)
    page = render_html(board.name, board.tables, [], chart_png=None)
    assert "<p>Difference to the baseline random_init (other − baseline, means over seeds):</p>" in page
    assert "<td>mae_tiny-mask_ratio0.75-ep100 − random_init</td><td>ViT-B</td><td>paper</td><td>finetune</td><td>+20.50</td>" in page


def test_an_unknown_baseline_lists_the_backbones(plan: Plan) -> None:
    with pytest.raises(BaselineError, match=r"--baseline 'random'.*mae_tiny-mask_ratio0.5-ep100, .*random_init"):
        build_leaderboard(plan, baseline="random")


def test_pretraining_cells_have_their_own_table(plan: Plan) -> None:
    board = build_leaderboard(plan)
    pretrain = next(t for t in board.tables if t.layout.key == "pretrain")
    assert {row.backbone for row in pretrain.rows} == {"mae_tiny-mask_ratio0.5", "mae_tiny-mask_ratio0.75",
                                                       "mae_tiny-mask_ratio0.9"}
    section = _section(board.render("md"), "MAE pre-training: held-out masked-patch loss (lower is better)")
    assert ("| mae_tiny-mask_ratio0.5 | ViT-B | mae | decoder_depth=8 mask_ratio=0.5 | 0.4123 (n=1) | ss | last | 64 "
            "| 1 | - |") in section
    assert "| mae_tiny-mask_ratio0.9 | ViT-B | mae | decoder_depth=8 mask_ratio=0.9 | 1 failed | - | - | - | - | - |" in section
    assert any(p.endswith("failed: FloatingPointError: loss is nan") for p in board.problems)
    transfer = [t for t in board.tables if t.layout.key != "pretrain"]
    assert not any(row.backbone.startswith("mae_tiny-mask_ratio0.5") and "ep" not in row.backbone
                   for t in transfer for row in t.rows)
    only_pretraining = build_leaderboard(Plan(plan.spec, [c for c in plan.cells if c.task == "mae-pretrain"]))
    assert only_pretraining.plot() is None  # the loss (no paper number, not a percentage) has no bar


def test_blocked_cells_are_counted_with_their_reason(plan: Plan) -> None:
    board = build_leaderboard(plan)
    blocked = [o for o in board.collection.outcomes if o.status == "blocked"]
    assert [o.cell.task for o in blocked] == ["coco-maskrcnn"]
    assert blocked[0].error.endswith("failed: loss is nan")
    coco = next(t for t in board.tables if t.layout.key == "table4")
    row = next(r for r in coco.rows if r.backbone == "mae_tiny-mask_ratio0.9-ep100")
    assert row.entries[("coco-maskrcnn", "AP_box")].blocked == 1
    assert ",1,2,0,1,0,0," in next(r for r in board.render("csv").splitlines()
                                   if r.startswith("table4,mae_tiny-mask_ratio0.9-ep100,") and ",AP_box," in r)


def test_a_task_no_paper_table_lays_out_gets_a_plain_table(plan: Plan, tmp_path: Path) -> None:
    cell = next(c for c in plan.cells if c.backbone == "random_init" and c.task == "inat2017")
    odd = replace(cell, task="voc-detection", work_dir=str(tmp_path / f"voc-{cell.id[:10]}"))
    _write_result(odd, {"AP50": 61.0})
    markdown = build_leaderboard(Plan(plan.spec, [odd])).render("md")
    assert "## voc-detection (no paper table)" in markdown
    assert "| random_init | ViT-B | paper | finetune | 61.00 (n=1) | ss | last | 64 | 1 | - |" in markdown


CLI_MATRIX = """
name: cli
backbones:
  - {name: mae, checkpoint: a.pth, arch: vit_base_patch16}
  - {name: random, checkpoint: r.pth, arch: vit_base_patch16}
tasks:
  - {task: inat2017, recipe: paper}
references: [refs.yaml]
"""


def _leaderboard_command(argv: list[str]) -> int:
    """`mae-transfer leaderboard ARGV` through its own parser (the full CLI imports every command group)."""
    parser = argparse.ArgumentParser()
    leaderboard_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["leaderboard", *argv])
    return args.func(args)


def test_baseline_along_and_plot_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))
    (tmp_path / "m.yaml").write_text(CLI_MATRIX)
    (tmp_path / "refs.yaml").write_text(REFERENCES)
    for cell in plan_matrix(load_spec(tmp_path / "m.yaml")).cells:
        _write_result(cell, {"top1": 71.0 if cell.backbone == "mae" else 60.0})
    matrix, chart = str(tmp_path / "m.yaml"), tmp_path / "out" / "bars.png"
    assert _leaderboard_command([matrix, "--baseline", "random", "--plot", str(chart)]) == 0
    assert "| mae − random | ViT-B | paper | finetune | +11.00 | - | - | - | - |" in capsys.readouterr().out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _leaderboard_command([matrix, "--baseline", "scratch"]) == 2
    assert "error: --baseline 'scratch': no such backbone in this leaderboard; its backbones are: mae, random" in \
        capsys.readouterr().err
    assert _leaderboard_command([matrix, "--along", "mask_ratio"]) == 2
    assert "no cell of this matrix comes from a pre-training stage" in capsys.readouterr().err


def test_cells_without_a_result_read_their_state_through_the_state_module(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))
    (tmp_path / "m.yaml").write_text(CLI_MATRIX)
    (tmp_path / "refs.yaml").write_text(REFERENCES)
    plan = plan_matrix(load_spec(tmp_path / "m.yaml"))
    dead, submitted = plan.cells
    # recorded as running on this host by a process that no longer exists: interrupted, not running
    write_state(Path(dead.work_dir), CellState(state="running", pid=2 ** 22 + 1, host=socket.gethostname(),
                                               started=1.0, heartbeat=1.0))
    write_state(Path(submitted.work_dir), CellState(state="submitted", job_id="42"))
    statuses = {o.cell.id: (o.status, o.error) for o in build_leaderboard(plan).collection.outcomes}
    assert statuses == {dead.id: ("interrupted", ""), submitted.id: ("running", "")}
