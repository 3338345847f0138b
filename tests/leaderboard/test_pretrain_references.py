"""A leaderboard difference only against a reference of the same pre-training (the shipped reference files).

Fabricated results of ViT-L backbones pre-trained in different ways: the official release (declared
``format: mae``, or detected in a load report), the suite's default pre-training made in the matrix
(800 epochs, norm-pix), an 800-epoch raw-pixel one (the MAE Table 1 / Fig. 9 default), a snapshot at
epoch 400 of the 800-epoch schedule, the default pre-training run off its recipe's batch, a
checkpoint whose format is not known and a generated one.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

import pytest

from mae_transfer.leaderboard import build_leaderboard
from mae_transfer.leaderboard.aggregate import Entry, Table
from mae_transfer.matrix.plan.planner import Plan, plan_matrix
from mae_transfer.matrix.spec import load_spec
from mae_transfer.records import atomic_write_json

REFERENCES = Path(__file__).resolve().parents[2] / "benchmarks" / "references"
MATRIX = f"""
name: like_with_like
backbones:
  - {{name: released, checkpoint: released.pth, arch: vit_large_patch16, format: mae}}
  - {{name: detected, checkpoint: detected.pth, arch: vit_large_patch16}}
  - {{name: normpix800, checkpoint: a.pth, arch: vit_large_patch16}}
  - {{name: raw800, checkpoint: b.pth, arch: vit_large_patch16}}
  - {{name: snapshot400, checkpoint: c.pth, arch: vit_large_patch16}}
  - {{name: offrecipe800, checkpoint: e.pth, arch: vit_large_patch16}}
  - {{name: unknown, checkpoint: d.pth, arch: vit_large_patch16}}
  - {{name: random, checkpoint: "generate:vit_large_patch16", depth: 2}}
  - {{name: stage_cells, checkpoint: f.pth, arch: vit_large_patch16}}
tasks:
  - {{task: imagenet, recipe: paper, protocol: finetune}}
  - {{task: imagenet, recipe: paper, protocol: linear}}
  - {{task: imagenet, recipe: paper, protocol: partial-1}}
  - {{task: imagenet, recipe: paper, protocol: partial-mlp}}
  - {{task: coco-maskrcnn, recipe: paper}}
references: [{REFERENCES / "mae_paper.yaml"}, {REFERENCES / "mae_imagenet.yaml"}]
"""
# backbones re-dressed as a matrix stage's transfer cells (the planner's Cell.pretrain): params, epoch and
# the pre-training cell they come from (stage_cells' first cells re-dressed as those, the planner's
# mae-pretrain cells: recipe paper, the last one run off its batch)
STAGE = {"mask_ratio": 0.75, "decoder_depth": 8, "decoder_width": 512, "epochs": 800}
PRETRAIN = {
    "normpix800": ({**STAGE, "norm_pix_loss": True}, 800, 0),
    "raw800": ({**STAGE, "norm_pix_loss": False}, 800, 1),
    "snapshot400": ({**STAGE, "norm_pix_loss": True}, 400, 0),
    "offrecipe800": ({**STAGE, "norm_pix_loss": True}, 800, 2),
}
OFF_RECIPE = "batch 1024 set in backbones[4].pretrain.resources (recipe batch 4096)"
# every cell's result: one value per task (imagenet top1 by protocol, coco AP box / mask)
VALUES = {"finetune": 85.0, "linear": 74.0, "partial-1": 80.0, "partial-mlp": 78.0}


def _result(cell, load_format: str | None) -> dict:
    metrics = ({"AP_box": 53.0, "AP_mask": 47.0} if cell.task == "coco-maskrcnn"
               else {"top1": VALUES[cell.protocol], "top5": 95.0})
    provenance = {"eval_mode": "ss", "checkpoint_policy": "last", "effective_batch": 1024, "gpus": 8}
    if load_format:  # schema 2: what the trainer's load report detected
        provenance.update(checkpoint_sha256="0" * 64, load_report={"format": load_format, "matched": 294,
                                                                   "missing": 0, "dropped": 0, "resized": 0})
    return {"schema": 2 if load_format else 1,
            "cell": {"id": cell.id, "backbone": cell.backbone, "task": cell.task, "recipe": cell.recipe,
                     "seed": cell.seed, "pretrain": cell.pretrain},
            "metrics": metrics, "provenance": provenance}


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory):
    """One leaderboard over fabricated results, written once (the tests only read it)."""
    tmp_path = tmp_path_factory.mktemp("like")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))
        (tmp_path / "m.yaml").write_text(MATRIX)
        plan = plan_matrix(load_spec(tmp_path / "m.yaml"))
    stage_cells = [c for c in plan.cells if c.backbone == "stage_cells"][:3]
    pretraining = [replace(cell, task="mae-pretrain", backbone=f"mae_l{i}", protocol=None, recipe="paper",
                           off_recipe=i == 2, off_recipe_reason=OFF_RECIPE if i == 2 else None,
                           pretrain={"stage": "mae_l", "cell": cell.id, "params": {}})
                   for i, cell in enumerate(stage_cells)]
    for cell in pretraining:
        atomic_write_json(Path(cell.work_dir) / "result.json", {
            "schema": 2, "cell": {"id": cell.id, "backbone": cell.backbone, "task": cell.task, "recipe": cell.recipe,
                                  "seed": cell.seed, "pretrain": cell.pretrain},
            "metrics": {"masked_patch_loss": 0.4}, "provenance": {"pretrain_checkpoints": {"800": "ckpt.pth"}}})
    cells = list(pretraining)
    for cell in plan.cells:
        if cell.backbone == "stage_cells":
            continue
        if cell.backbone in PRETRAIN:
            params, epoch, made_by = PRETRAIN[cell.backbone]
            cell = replace(cell, pretrain={"stage": "mae_l", "cell": pretraining[made_by].id, "epoch": epoch,
                                           "params": params})
        cells.append(cell)
        formats = {"released": "mae", "detected": "mae", "random": "mae"}
        if cell.backbone != "unknown" or cell.task != "coco-maskrcnn":  # one cell of `unknown` never ran
            atomic_write_json(Path(cell.work_dir) / "result.json",
                              _result(cell, formats.get(cell.backbone, "timm" if cell.backbone == "unknown" else None)))
    return build_leaderboard(Plan(plan.spec, cells))


def _table(board, key: str) -> Table:
    return next(t for t in board.tables if t.layout.key == key)


def _entry(board, key: str, backbone: str, variant: str, column: tuple[str, str]) -> Entry:
    row = next(r for r in _table(board, key).rows if r.backbone == backbone and r.variant == variant)
    return row.entries[column]


TOP1 = ("imagenet", "top1")


@pytest.mark.parametrize(("backbone", "variant", "reference", "source"), [
    ("released", "finetune", 85.9, "Table 3"),  # the release against its own numbers
    ("detected", "finetune", 85.9, "Table 3"),  # the release found by the load report
    ("normpix800", "finetune", 85.4, "Table 1d"),  # the suite's default pre-training: Table 1d, not Table 3
    ("normpix800", "linear", 73.9, "Table 1d"),
    ("raw800", "finetune", 84.9, "Table 1 default row"),
    ("raw800", "partial-1", 81.0, "Fig. 9"),  # Fig. 9 is 800-epoch raw-pixel pre-training
    ("raw800", "partial-mlp", 79.1, "Fig. 9"),
])
def test_a_difference_only_against_a_reference_of_the_same_pretraining(board, backbone: str, variant: str,
                                                                        reference: float, source: str) -> None:
    entry = _entry(board, "imagenet", backbone, variant, TOP1)
    assert entry.comparable and entry.reference.value == reference and source in entry.reference.source
    assert entry.delta == pytest.approx(VALUES[variant] - reference)


@pytest.mark.parametrize(("backbone", "variant", "nearest"), [
    ("released", "partial-1", 81.0),  # the released checkpoint is not Fig. 9's pre-training
    ("released", "partial-mlp", 79.1),
    ("normpix800", "partial-1", 81.0),  # norm-pix is not Fig. 9's raw pixels either
    ("snapshot400", "finetune", 85.4),  # epoch 400 of 800 is no reference's pre-training; nearest: 800 norm-pix
    ("offrecipe800", "finetune", 85.4),  # the default pre-training, but at batch 1024: not Table 1d's
    ("unknown", "finetune", 85.9),  # a timm checkpoint without the .mae tag: unknown, the first row shown
    ("random", "finetune", 85.9),  # a generated checkpoint: no pre-training at all
])
def test_another_pretraining_gets_the_nearest_reference_and_no_difference(board, backbone: str, variant: str,
                                                                         nearest: float) -> None:
    entry = _entry(board, "imagenet", backbone, variant, TOP1)
    assert not entry.comparable and entry.delta is None and entry.reference.value == nearest


def test_coco_rows_meet_their_own_pretraining(board) -> None:
    box = ("coco-maskrcnn", "AP_box")
    assert _entry(board, "table4", "released", "", box).delta == pytest.approx(53.0 - 53.3)  # MAE Table 4
    li = _entry(board, "table4", "normpix800", "", box)  # Li et al. Fig. 3: 800 epochs
    assert li.comparable and li.reference.value == 53.1 and li.delta == pytest.approx(53.0 - 53.1)
    mask = _entry(board, "table4", "normpix800", "", ("coco-maskrcnn", "AP_mask"))
    assert not mask.comparable and mask.reference.value == 47.2  # no 800-epoch mask AP is published


def test_markdown_labels_the_reference_rows_and_footnotes_the_other_pretraining(board) -> None:
    lines = board.render("md").splitlines()
    row = next(line for line in lines if line.startswith("| released | ViT-L | paper | partial-1 |"))
    assert "80.00 (n=1) vs 81.0 (other pre-training) ‡" in row and "Δ" not in row
    assert "| normpix800 | ViT-L | paper | finetune | 85.00 (n=1) Δ -0.40 |" in "\n".join(lines)
    references = [line.split(" | ")[0] for line in lines if line.startswith("| reference (MAE")]
    assert {"| reference (MAE, released 1600 ep norm-pix)", "| reference (MAE, 800 ep norm-pix)",
            "| reference (MAE, 800 ep raw pixels)"} <= set(references)
    note = next(line for line in lines if line.startswith("- ‡ no difference: released paper partial-1:"))
    assert ("pre-training the released checkpoint, full 1600-epoch schedule, norm-pix, mask ratio 0.75, decoder 8 x 512 "
            "(taken from the declared checkpoint format 'mae')") in note
    assert "81.0 [" in note and "reports full 800-epoch schedule, raw pixels" in note
    snapshot = next(line for line in lines if line.startswith("- ‡ no difference: snapshot400 paper finetune:"))
    assert "snapshot at epoch 400 of an 800-epoch schedule" in snapshot
    assert any(line.startswith("- ‡ no difference: unknown paper finetune: pre-training unknown (detected checkpoint "
                               "format 'timm' is not the official MAE release)") for line in lines)
    off = next(line for line in lines if line.startswith("- ‡ no difference: offrecipe800 paper finetune:"))
    assert f"decoder 8 x 512, pre-training recipe paper ({OFF_RECIPE});" in off


def test_csv_says_which_entries_are_comparable(board) -> None:
    rows = list(csv.reader(io.StringIO(board.render("csv"))))
    header = rows[0]
    column = {name: header.index(name) for name in ("backbone", "variant", "reference", "delta", "comparable")}
    found = {(r[column["backbone"]], r[column["variant"]]): (r[column["reference"]], r[column["delta"]],
                                                             r[column["comparable"]])
             for r in rows[1:] if r[0] == "imagenet" and r[header.index("metric")] == "top1"}
    assert found[("released", "partial-1")] == ("81", "", "no")
    assert found[("raw800", "partial-1")] == ("81", "-1.0000", "yes")
    assert found[("unknown", "finetune")] == ("85.9", "", "no")
    pretraining = {r[header.index("backbone")]: r[header.index("pretraining")] for r in rows[1:]}
    assert pretraining["raw800"] == "full 800-epoch schedule, raw pixels, mask ratio 0.75, decoder 8 x 512"
    assert pretraining["random"] == "unknown (a generated random checkpoint: no pre-training)"


def test_the_chart_draws_the_paper_bar_only_beside_a_comparable_reference(board) -> None:
    from mae_transfer.leaderboard.chart import bar_panels

    bars = {label: paper for title, panel in bar_panels(board.tables) if title == "imagenet: IN-1K top-1"
            for label, _, _, paper in panel}
    assert bars["raw800 paper partial-1"] == 81.0 and bars["released paper partial-1"] is None
    assert bars["normpix800 paper finetune"] == 85.4 and bars["snapshot400 paper finetune"] is None


def test_the_suites_default_pretraining_meets_table_1d_pretrain_md_and_li(tmp_path: Path) -> None:
    from mmengine.config import Config

    from mae_transfer.leaderboard.pretrain_setting import setting_of_stage
    from mae_transfer.leaderboard.references import load_references
    from mae_transfer.paths import config_file

    cfg = Config.fromfile(str(config_file("configs/pretrain/mae_vit-large-p16_normpix-amp-800e_in1k-224.py")),
                          import_custom_modules=False)
    model, epochs = cfg.model, cfg.train_cfg.max_epochs
    setting = setting_of_stage({"epoch": epochs, "params": {
        "epochs": epochs, "mask_ratio": model.mask_ratio, "norm_pix_loss": model.norm_pix_loss,
        "decoder_depth": model.decoder.depth, "decoder_width": model.decoder.embed_dim}}, recipe="paper")
    rows = load_references([REFERENCES / "mae_paper.yaml", REFERENCES / "mae_imagenet.yaml"])
    matching = sorted((r.task, r.protocol, r.metric, r.value) for r in rows
                      if r.pretrain is not None and setting.matches(r.pretrain) and r.arch == "vit_large_patch16")
    assert matching == [("coco-maskrcnn", None, "AP_box", 53.1), ("imagenet", "finetune", "top1", 85.4),
                        ("imagenet", "finetune", "top1", 85.5), ("imagenet", "linear", "top1", 73.9)]
    assert all(r.pretrain is not None for r in rows if r.pretraining == "MAE")


@pytest.mark.parametrize(("row", "error"), [
    ("{task: inat2017, recipe: paper, arch: vit_base_patch16, metric: top1, value: 70.5, source: s}",
     r"rows\[0\]\.pretrain: missing; an MAE row names the pre-training it reports: released, mine"),
    ("{task: inat2017, recipe: paper, arch: vit_base_patch16, metric: top1, value: 70.5, source: s, pretrain: 800ep}",
     r"rows\[0\]\.pretrain: '800ep' is not a pre-training this file knows; expected one of released, mine"),
    ("{task: inat2017, recipe: paper, arch: vit_base_patch16, metric: top1, value: 70.5, source: s, "
     "pretrain: {epochs: 800, target: norm-pix}}", r"rows\[0\]\.pretrain: expected a pre-training name or a mapping of "
     r"exactly epochs, target, mask_ratio, decoder_depth, decoder_width, released; got \['epochs', 'target'\]"),
    ("{task: inat2017, recipe: paper, arch: vit_base_patch16, metric: top1, value: 70.5, source: s, pretrain: "
     "{epochs: 800, target: pixels, mask_ratio: 0.75, decoder_depth: 8, decoder_width: 512, released: false}}",
     r"rows\[0\]\.pretrain\.target: expected one of norm-pix, pixel, got 'pixels'"),
    ("{task: inat2017, recipe: paper, arch: vit_base_patch16, metric: top1, value: 70.5, source: s, pretrain: mine, "
     "epochs: 800}", r"rows\[0\]: unknown keys \['epochs'\]"),
])
def test_a_reference_row_without_a_valid_pretraining_is_refused(tmp_path: Path, row: str, error: str) -> None:
    from mae_transfer.leaderboard.references import ReferenceError, load_references

    path = tmp_path / "refs.yaml"
    path.write_text("sources: {s: a source}\npretrainings:\n  mine: {epochs: 800, target: pixel, mask_ratio: 0.75, "
                    f"decoder_depth: 8, decoder_width: 512, released: false}}\nrows:\n  - {row}\n")
    with pytest.raises(ReferenceError, match=error) as raised:
        load_references([path])
    assert str(path) in str(raised.value)
