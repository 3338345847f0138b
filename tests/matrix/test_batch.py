"""Every cell trains at its recipe's batch: per-GPU batch x accumulation from the resources, or a refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matrix_helpers import REPO, cli

from mae_transfer.matrix.plan.batching import LR_KEY
from mae_transfer.matrix.plan.planner import plan_matrix
from mae_transfer.matrix.spec.matrix_spec import SpecError, load_spec

BENCHMARKS = REPO / "benchmarks"
RECIPE_BATCH = {"coco-maskrcnn": 64, "ade20k-upernet": 16, "inat2017": 1024, "inat2018": 1024, "inat2019": 1024,
                "places205": 1024, "places365": 1024, "imagenet": 1024}
LINEAR_BATCH = 16384  # MAE Table 10


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))


def plan_of(tmp_path: Path, tasks: str, resources: str = "{gpus_per_cell: 8, nodes: 1}"):
    (tmp_path / "w.pth").write_bytes(b"w")
    (tmp_path / "m.yaml").write_text(f"""
name: batch
backbones:
  - {{name: b, checkpoint: w.pth, arch: vit_base_patch16}}
  - {{name: l, checkpoint: w.pth, arch: vit_large_patch16}}
  - {{name: h, checkpoint: w.pth, arch: vit_huge_patch14}}
resources: {resources}
tasks:
{tasks}
""")
    return plan_matrix(load_spec(tmp_path / "m.yaml"))


def only(plan, backbone: str):
    (cell,) = [c for c in plan.cells if c.backbone == backbone]
    return cell


def test_paper_matrix_plan_json_has_every_cell_at_its_recipe_batch(tmp_path: Path, env) -> None:
    shown = cli(["plan", str(BENCHMARKS / "mae_paper.yaml"), "--work-root", str(tmp_path / "runs"), "--json"], env)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    payload = json.loads(shown.stdout)
    assert payload["refused"] == [] and len(payload["cells"]) == 36
    split = {}
    for cell in payload["cells"]:
        recipe_batch = LINEAR_BATCH if cell["protocol"] == "linear" else RECIPE_BATCH[cell["task"]]
        assert cell["effective_batch"] == recipe_batch == cell["recipe_batch"], cell["label"]
        processes = cell["resources"]["nodes"] * cell["resources"]["gpus_per_cell"]
        assert processes * cell["per_gpu_batch"] * cell["accumulation"] == cell["effective_batch"], cell["label"]
        assert cell["lr"] == cell["recipe_lr"] and not cell["off_recipe"], cell["label"]
        assert cell["cfg_options"]["train_dataloader.batch_size"] == cell["per_gpu_batch"]
        assert cell["cfg_options"]["optim_wrapper.accumulative_counts"] == cell["accumulation"]
        assert LR_KEY not in cell["cfg_options"]  # the lr changes nowhere
        split[(cell["task"], cell["recipe"], cell["arch"], cell["resolution"])] = (
            processes, cell["per_gpu_batch"], cell["accumulation"], cell["lr"])
    # COCO: 8 nodes x 8 GPUs x 1 image; ADE20K: 8 GPUs x 2; fine-tuning on 8 GPUs with accumulation.
    assert split[("coco-maskrcnn", "vitdet", "vit_huge_patch14", 224)] == (64, 1, 1, 1e-4)
    assert split[("coco-maskrcnn", "paper", "vit_base_patch16", 224)] == (64, 1, 1, 8e-5)
    assert split[("ade20k-upernet", "paper", "vit_large_patch16", 224)] == (8, 2, 1, 1e-4)
    assert split[("inat2017", "paper", "vit_base_patch16", 224)] == (8, 32, 4, 2e-3)
    assert split[("inat2018", "paper", "vit_large_patch16", 224)] == (8, 32, 4, 4e-3)
    assert split[("places365", "paper", "vit_huge_patch14", 224)] == (8, 16, 8, 4e-3)
    assert split[("inat2019", "paper", "vit_huge_patch14", 448)] == (8, 8, 16, 4e-3)
    linear = [c for c in payload["cells"] if c["protocol"] == "linear"]
    assert {c["arch"] for c in linear} == {"vit_base_patch16", "vit_large_patch16", "vit_huge_patch14"}
    assert all((c["per_gpu_batch"], c["accumulation"], c["lr"]) == (512, 4, pytest.approx(6.4)) for c in linear)


@pytest.mark.parametrize(("nodes", "gpus", "per_gpu", "accumulation"),
                         [(1, 8, 32, 4), (2, 8, 32, 2), (4, 8, 32, 1), (1, 1, 32, 32), (1, 0, 32, 32)])
def test_classification_split_follows_the_resources(tmp_path: Path, nodes, gpus, per_gpu, accumulation) -> None:
    plan = plan_of(tmp_path, "  - {task: inat2017, recipe: paper, backbones: [b]}", f"{{gpus_per_cell: {gpus}, nodes: {nodes}}}")
    cell = only(plan, "b")
    assert (cell.per_gpu_batch, cell.accumulation, cell.effective_batch) == (per_gpu, accumulation, 1024)
    assert cell.processes == nodes * max(gpus, 1)
    # epoch-based: epochs stay epochs, nothing else is rescaled
    assert not any(key.startswith(("train_cfg.", "param_scheduler.")) for key in cell.cfg_options)


def test_gpu_memory_limit_in_resources_adds_accumulation(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "  - {task: inat2017, recipe: paper, backbones: [b, h]}",
                   "{gpus_per_cell: 8, max_per_gpu_batch: 16}")
    assert (only(plan, "b").per_gpu_batch, only(plan, "b").accumulation) == (16, 8)
    assert (only(plan, "h").per_gpu_batch, only(plan, "h").accumulation) == (16, 8)
    assert not only(plan, "b").off_recipe  # still the recipe batch


def test_coco_on_two_nodes_needs_no_accumulation_for_vit_b(tmp_path: Path) -> None:
    pytest.importorskip("mmdet")
    plan = plan_of(tmp_path, "  - {task: coco-maskrcnn, recipe: vitdet, backbones: [b, l]}", "{gpus_per_cell: 8, nodes: 2}")
    b, large = only(plan, "b"), only(plan, "l")
    assert (b.per_gpu_batch, b.accumulation) == (4, 1)  # mmdet ViTDet: 4 images per GPU
    assert (large.per_gpu_batch, large.accumulation) == (1, 4)  # detectron2: one 1024 image per GPU for ViT-L
    assert "train_cfg.max_iters" not in b.cfg_options and large.cfg_options["train_cfg.max_iters"] == 4 * 184375


def test_accumulation_rescales_every_iteration_valued_key(tmp_path: Path) -> None:
    pytest.importorskip("mmdet")
    plan = plan_of(tmp_path, "  - {task: coco-maskrcnn, recipe: vitdet, backbones: [b]}")
    cell = only(plan, "b")
    assert (cell.per_gpu_batch, cell.accumulation, cell.effective_batch) == (4, 2, 64)
    options = cell.cfg_options
    # IterBasedTrainLoop counts dataloader iterations: 184375 optimizer steps = 368750 iterations.
    assert options["train_cfg.max_iters"] == options["train_cfg.val_interval"] == 2 * 184375
    assert options["param_scheduler.0.end"] == 2 * 250  # warmup
    assert options["param_scheduler.1.end"] == 2 * 184375
    assert options["param_scheduler.1.milestones"] == [2 * 163889, 2 * 177546]
    assert options["default_hooks.checkpoint.interval"] == 2 * 5000
    assert "param_scheduler.0.begin" not in options and "param_scheduler.1.begin" not in options  # 0 stays 0


def test_ade20k_accumulation_rescales_warmup_and_poly(tmp_path: Path) -> None:
    pytest.importorskip("mmseg")
    plan = plan_of(tmp_path, "  - {task: ade20k-upernet, recipe: paper, backbones: [b]}", "{gpus_per_cell: 4}")
    options = only(plan, "b").cfg_options
    assert (options["train_dataloader.batch_size"], options["optim_wrapper.accumulative_counts"]) == (2, 2)
    assert options["train_cfg.max_iters"] == 320000 and options["train_cfg.val_interval"] == 32000
    assert options["param_scheduler.0.end"] == options["param_scheduler.1.begin"] == 3000
    assert options["param_scheduler.1.end"] == 320000


@pytest.mark.parametrize(("resources", "expected"), [
    ("{gpus_per_cell: 8, nodes: 16}", "16 nodes x 8 GPUs = 128 processes exceed the recipe batch 64 "
                                      "(every process needs at least one image per step)"),
    ("{gpus_per_cell: 3, nodes: 2}", "2 nodes x 3 GPUs = 6 processes cannot split the recipe batch 64 evenly "
                                     "(64 / 6 = 10.6667 images per process)"),
])
def test_impossible_resources_refuse_the_cell_with_the_arithmetic(tmp_path: Path, resources, expected) -> None:
    plan = plan_of(tmp_path, f"""  - {{task: coco-maskrcnn, recipe: vitdet, backbones: [b], resources: {resources}}}
  - {{task: inat2017, recipe: paper, backbones: [b]}}""")
    assert [c.task for c in plan.cells] == ["inat2017"]  # the other cells go on
    (refusal,) = plan.refused
    assert refusal.cell == "coco-maskrcnn.vitdet.b.s0"
    assert refusal.config == "configs/coco/vitdet_mask-rcnn_vit-b_lsj-1024_100e_amp.py"
    assert refusal.reason == expected
    assert any(refusal.message in warning and "tasks[0]" in warning for warning in plan.warnings)


def test_refused_cell_makes_plan_exit_non_zero_and_is_listed(tmp_path: Path, env) -> None:
    plan_of(tmp_path, "  - {task: ade20k-upernet, recipe: paper, backbones: [b], resources: {gpus_per_cell: 32}}")
    shown = cli(["plan", str(tmp_path / "m.yaml")], env)
    assert shown.returncode == 1
    assert ("refused: cell ade20k-upernet.paper.b.s0 (configs/ade20k/upernet_mae-vit-b_8xb2-amp-160k_ade20k-512x512.py): "
            "1 node x 32 GPUs = 32 processes exceed the recipe batch 16") in " ".join(shown.stdout.split())
    payload = json.loads(cli(["plan", str(tmp_path / "m.yaml"), "--json"], env).stdout)
    assert payload["cells"] == [] and payload["refused"][0]["cell"] == "ade20k-upernet.paper.b.s0"


def test_explicit_batch_scales_lr_by_the_rule_and_marks_off_recipe(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "  - {task: inat2017, recipe: paper, backbones: [b], batch: 512}")
    cell = only(plan, "b")
    assert (cell.effective_batch, cell.per_gpu_batch, cell.accumulation) == (512, 32, 2)
    assert cell.lr == pytest.approx(2e-3 * 512 / 1024) and cell.cfg_options[LR_KEY] == pytest.approx(1e-3)
    assert cell.off_recipe and cell.label == "inat2017.paper.finetune.b512.b.s0"
    assert cell.off_recipe_reason == ("batch 512 set in tasks[0].batch (recipe batch 1024); lr by the linear scaling "
                                      "rule 0.002 x 512 / 1024 = 0.001")


def test_explicit_batch_keeps_the_epochs_of_an_iteration_schedule(tmp_path: Path) -> None:
    pytest.importorskip("mmdet")
    plan = plan_of(tmp_path, "  - {task: coco-maskrcnn, recipe: vitdet, backbones: [b], batch: 32}")
    cell = only(plan, "b")
    assert (cell.per_gpu_batch, cell.accumulation, cell.lr) == (4, 1, pytest.approx(5e-5))
    # 100 epochs at batch 32 = twice the optimizer steps of batch 64
    assert cell.cfg_options["train_cfg.max_iters"] == 2 * 184375
    assert cell.cfg_options["param_scheduler.1.milestones"] == [2 * 163889, 2 * 177546]


def test_explicit_batch_that_cannot_be_split_is_refused(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "  - {task: inat2017, recipe: paper, backbones: [b], batch: 1000, resources: {gpus_per_cell: 16}}")
    assert plan.cells == [] and plan.refused[0].reason == (
        "1 node x 16 GPUs = 16 processes cannot split the batch set in tasks[0].batch 1000 evenly "
        "(1000 / 16 = 62.5 images per process)")


def test_lr_override_is_off_recipe(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "  - {task: inat2017, recipe: paper, backbones: [l], overrides: {optim_wrapper.optimizer.lr: 1.0e-3}}")
    cell = only(plan, "l")
    assert cell.effective_batch == 1024 and cell.lr == 1e-3 and cell.off_recipe
    assert "lr 0.001 set in the overrides" in cell.off_recipe_reason and "rule gives 0.004" in cell.off_recipe_reason


@pytest.mark.parametrize("key", ["train_dataloader.batch_size", "optim_wrapper.accumulative_counts"])
def test_overriding_a_planned_key_is_a_spec_error(tmp_path: Path, key: str) -> None:
    with pytest.raises(SpecError) as raised:
        plan_of(tmp_path, f"  - {{task: inat2017, recipe: paper, overrides: {{{key}: 4}}}}")
    assert f"tasks[0].overrides.{key}: set by the planner" in str(raised.value)


def test_nested_planned_key_is_a_spec_error_too(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"tasks\[0\]\.overrides\.train_dataloader\.batch_size"):
        plan_of(tmp_path, "  - {task: inat2017, recipe: paper, overrides: {train_dataloader: {batch_size: 4}}}")


def test_gpu_hours_follow_each_arch_schedule(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "  - {task: coco-maskrcnn, recipe: vitdet}\n  - {task: inat2017, recipe: paper}",
                   "{gpus_per_cell: 8, nodes: 8}")
    hours = {(c.task, c.backbone): c.gpu_hours for c in plan.cells}
    # ViT-H COCO: 75 epochs (138281 iterations x 64) at 1.2 images/s/GPU; ViT-L iNat: 50 epochs at 135.
    assert hours[("coco-maskrcnn", "h")] == pytest.approx(138281 * 64 / 1.2 / 3600)
    assert hours[("inat2017", "l")] == pytest.approx(50 * 579184 / 135.0 / 3600)
    assert hours[("inat2017", "b")] == pytest.approx(100 * 579184 / 420.0 / 3600)
