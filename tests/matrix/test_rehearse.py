"""`mae-transfer run MATRIX --rehearse`: depth cuts, label spaces, bad input, the paper matrix.

The fast tests plan depth cuts on the real configs and build the cut backbones, write the
generated label spaces and read them with the real dataset classes, and run the CLI on a matrix
with a missing checkpoint and a refused cell next to a cell that rehearses (one real launch of
the smoke classifier). The slow test rehearses cells of ``benchmarks/mae_paper.yaml`` (2 steps, 2-process DDP,
minimal depth, at most 2 images per process). All 36 cells took 30 min 37 s on 2 idle CPU cores
with OMP_NUM_THREADS=1 and ``--rehearse-batch 2``: the 5 COCO cells 14.5 min (117-240 s each,
one 1024 image per process), the 2 ADE20K cells 8.4 min (190 and 311 s) and the 29
classification cells 7.6 min (11-25 s each). That does not fit CI's 90 minutes beside the rest
of the suite, so CI rehearses one cell of each distinct path and of each classification label
space (CI_CELLS) and ``MAE_TRANSFER_FULL_REHEARSAL=1`` rehearses all of them at the plan's
per-GPU batch (no ``--rehearse-batch``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from matrix_helpers import REPO, TINY_CLASSIFIER, cli
from mae_transfer.matrix.rehearse.depth_cut import DepthCutError, plan_depth_cut

VITDET_B = {"arch": "vit_base_patch16", "window": {"size": 14, "global_blocks": [2, 5, 8, 11]}}
A3_L = {"arch": "vit_large_patch16", "adapter": "multi_level", "window": {"global_blocks": [5, 11, 17, 23]}}


def _config(relative: str):
    from mmengine.config import Config

    return Config.fromfile(str(REPO / relative), import_custom_modules=False)


def _build_cut_backbone(backbone: dict, options: dict) -> object:
    """The core ViT the integration would build from ``backbone`` with the cut ``options``."""
    from mae_transfer.integrations.mmdet import group_end_indices
    from mae_transfer.models import build_vit

    kwargs = {k: v for k, v in backbone.items() if k not in ("type", "pretrained", "adapter", "adapter_norm")}
    for key, value in options.items():
        path = key.split(".")[2:]  # model.backbone.<...>
        node = kwargs
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    if backbone.get("adapter") == "multi_level" and "out_indices" not in kwargs:
        kwargs["out_indices"] = group_end_indices(kwargs["depth"])
    maps_only = backbone.get("type") in ("MAETransferViT", "MAETransferSegViT")
    return build_vit(kwargs.pop("arch"), maps_only=maps_only, **kwargs)


def test_vitdet_cut_keeps_one_window_and_one_global_block() -> None:
    cut = plan_depth_cut(VITDET_B, target="min")
    assert (cut.depth, cut.cut_to, cut.minimum) == (12, 2, 2)
    assert cut.options == {"model.backbone.depth": 2, "model.backbone.window.global_blocks": [1]}
    assert plan_depth_cut(VITDET_B, target=4).options["model.backbone.window.global_blocks"] == [1, 3]
    assert plan_depth_cut(VITDET_B, target=8).options["model.backbone.window.global_blocks"] == [1, 3, 5, 7]
    assert "depth 12 -> 2" in cut.notes and "global blocks [2, 5, 8, 11] -> [1]" in cut.notes


def test_multi_level_cuts_keep_four_distinct_taps() -> None:
    a3 = plan_depth_cut(A3_L, target="min")
    assert (a3.cut_to, a3.options["model.backbone.window.global_blocks"]) == (4, [1, 3])
    assert "taps (group ends) -> [0, 1, 2, 3]" in a3.notes
    ade_b = plan_depth_cut({"arch": "vit_base_patch16", "out_indices": [3, 5, 7, 11]}, target="min")
    assert ade_b.options == {"model.backbone.depth": 4, "model.backbone.out_indices": [0, 1, 2, 3]}
    ade_l = plan_depth_cut({"arch": "vit_large_patch16", "out_indices": [7, 11, 15, 23]}, target=8)
    assert ade_l.options["model.backbone.out_indices"] == [2, 3, 4, 7]


def test_impossible_cuts_are_refused_with_the_smallest_depth() -> None:
    with pytest.raises(DepthCutError, match=r"one windowed and one global.*smallest depth that keeps every shape is 2"):
        plan_depth_cut(VITDET_B, target=1)
    with pytest.raises(DepthCutError, match=r"4 distinct block taps.*is 4"):
        plan_depth_cut({"arch": "vit_base_patch16", "out_indices": [3, 5, 7, 11]}, target=3)
    with pytest.raises(DepthCutError, match="multiple of 4"):
        plan_depth_cut(A3_L, target=6)
    with pytest.raises(DepthCutError, match=r"partial fine-tuning of the last 4 block.*is 5"):
        plan_depth_cut({"arch": "vit_large_patch16"}, {"name": "partial", "num_blocks": 4}, target=4)
    assert plan_depth_cut({"arch": "vit_large_patch16"}, target=40).cut is False


@pytest.mark.parametrize("relative", [
    "configs/coco/vitdet_mask-rcnn_vit-h_lsj-1024_75e_amp.py",
    "configs/coco/mae-fpn_mask-rcnn_vit-l_lsj-1024_100e_amp.py",
    "configs/ade20k/upernet_mae-vit-l_8xb2-amp-160k_ade20k-512x512.py",
    "configs/inat/vit-huge-p14_ft-amp-50e_inat2017-448.py",
])
def test_minimal_cut_of_a_real_config_builds_with_both_attention_kinds(relative: str) -> None:
    backbone = _config(relative).model.backbone.to_dict()
    cut = plan_depth_cut(backbone, target="min")
    vit = _build_cut_backbone(backbone, cut.options)
    assert len(vit.blocks) == cut.cut_to < cut.depth
    if vit.window is not None:
        kinds = {vit.window.is_global(i) for i in range(cut.cut_to)}
        assert kinds == {True, False}
    if "out_indices" in backbone or backbone.get("adapter"):
        assert len(set(vit.out_indices)) == 4 and vit.out_indices[-1] == cut.cut_to - 1


def test_processes_and_option_merging() -> None:
    from mae_transfer.matrix.plan.planner import Cell
    from mae_transfer.matrix.rehearse.rehearsal import rehearsal_processes
    from mae_transfer.matrix.rehearse.inputs import merge_options
    from mae_transfer.matrix.spec.matrix_spec import Resources

    def cell(label: str, processes: int) -> Cell:
        return Cell(id="0" * 16, label=label, backbone="b", arch="vit_base_patch16", checkpoint="c", task="inat2017",
                    dataset="inat2017", recipe="paper", protocol="finetune", resolution=224, eval_mode="ss", seed=0,
                    config="c.py", cfg_options={}, work_dir="w", resources=Resources(), gpu_hours=1.0,
                    checkpoint_policy="last", max_attempts=1, processes=processes)

    assert rehearsal_processes(cell("inat2017.paper", 8), None) == 2
    assert rehearsal_processes(cell("inat2017.paper", 1), "4") == 1
    assert rehearsal_processes(cell("coco-maskrcnn.paper.x", 64), "coco-maskrcnn=1,3") == 1
    assert rehearsal_processes(cell("ade20k-upernet.paper.x", 8), "coco-maskrcnn=1,3") == 3
    merged = merge_options({"default_hooks.checkpoint.interval": 5, "a": 1}, {"default_hooks.checkpoint": None})
    assert merged == {"a": 1, "default_hooks.checkpoint": None}


def test_batch_cap_sets_the_loader_batch_and_the_epoch_subset() -> None:
    from mae_transfer.matrix.plan.planner import Cell
    from mae_transfer.matrix.rehearse.inputs import rehearsed_batch, run_overrides
    from mae_transfer.matrix.spec.matrix_spec import Resources

    cell = Cell(id="0" * 16, label="imagenet.paper.linear.b.s0", backbone="b", arch="vit_base_patch16", checkpoint="c",
                task="imagenet", dataset="imagenet", recipe="paper", protocol="linear", resolution=224, eval_mode="ss",
                seed=0, config="c.py", cfg_options={}, work_dir="w", resources=Resources(), gpu_hours=1.0,
                checkpoint_policy="last", max_attempts=1, processes=8, per_gpu_batch=512, accumulation=4)
    planned = run_overrides(cell, "epoch", steps=2, nproc=2, eval_images=2)
    assert "train_dataloader.batch_size" not in planned and planned["train_dataloader.dataset.indices"] == 2 * 512 * 2
    capped = run_overrides(cell, "epoch", steps=2, nproc=2, eval_images=2, max_batch=4)
    assert capped["train_dataloader.batch_size"] == 4 and capped["train_dataloader.dataset.indices"] == 2 * 4 * 2
    assert rehearsed_batch(cell, 1024) == 512 and rehearsed_batch(cell, None) == 512
    iters = run_overrides(cell, "iter", steps=3, nproc=2, eval_images=2, max_batch=1)
    assert iters["train_dataloader.batch_size"] == 1 and iters["train_cfg.max_iters"] == 3


def test_coco_label_space_has_the_80_official_categories(tmp_path: Path) -> None:
    from mmdet.datasets import CocoDataset

    from mae_transfer.data import make_dataset

    root = make_dataset("coco", tmp_path / "coco", num_train=3, num_val=1, image_size=(640, 480), label_space="coco")
    data = json.loads((root / "annotations" / "instances_train2017.json").read_text())
    ids = [c["id"] for c in data["categories"]]
    assert len(ids) == 80 and ids[0] == 1 and ids[-1] == 90
    assert not {12, 26, 29, 30, 45, 66, 68, 69, 71, 83} & set(ids)
    assert tuple(c["name"] for c in data["categories"]) == CocoDataset.METAINFO["classes"]
    assert {(i["width"], i["height"]) for i in data["images"]} == {(640, 480)}
    assert {a["category_id"] for a in data["annotations"]} <= set(ids)


def test_ade20k_label_space_spans_the_150_classes(tmp_path: Path) -> None:
    from mae_transfer.data import make_dataset

    root = make_dataset("ade20k", tmp_path / "ade", num_train=12, num_val=1, image_size=(512, 683),
                        label_space="ade20k")
    values: set[int] = set()
    for path in sorted((root / "annotations" / "training").glob("*.png")):
        label = np.asarray(Image.open(path))
        assert label.shape == (512, 683)
        values |= set(np.unique(label).tolist())
    assert values <= set(range(151)) and len(values - {0}) > 8


def test_inat2017_label_space_lists_5089_categories_and_loads_with_few_images(tmp_path: Path) -> None:
    from mae_transfer.classification.datasets import INaturalistDataset
    from mae_transfer.data import make_dataset

    root = make_dataset("inat2017", tmp_path / "inat", num_classes=5089, num_train=4, num_val=2, image_size=(500, 375))
    data = json.loads((root / "train2017.json").read_text())
    assert len(data["categories"]) == 5089 and len(data["images"]) == 4
    dataset = INaturalistDataset(ann_file="train2017.json", num_classes=5089, data_root=str(root))
    assert len(dataset) == 4 and {dataset.get_data_info(i)["gt_label"] for i in range(4)} == {0, 1696, 3392, 5088}


def test_missing_checkpoint_and_refused_cell_fail_while_others_rehearse(tmp_path: Path, env) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(f"""
name: bad
backbones:
  - {{name: tiny, checkpoint: "generate:vit_tiny_patch16"}}
  - {{name: absent, checkpoint: nowhere/missing.pth, arch: vit_tiny_patch16}}
datasets:
  inat2017: {{generate: true}}
  ade20k: {{generate: true}}
resources: {{gpus_per_cell: 0, time_limit_hours: 1}}
tasks:
  - {{task: inat2017, recipe: smoke, protocol: finetune, overrides: {TINY_CLASSIFIER}}}
  - {{task: ade20k-upernet, recipe: smoke, backbones: [tiny], resources: {{gpus_per_cell: 3}}}}
""")
    result = cli(["run", str(matrix), "--rehearse", "--json", "--steps", "2"], env, timeout=600)
    assert result.returncode == 1, result.stderr[-3000:]
    rows = {row["cell"]: row for row in json.loads(result.stdout)}
    missing = rows["inat2017.smoke.finetune.absent.s0"]
    assert missing["status"] == "failed"
    assert missing["error"] == (f"cell inat2017.smoke.finetune.absent.s0 (configs/smoke/inat_finetune.py): checkpoint "
                                f"{tmp_path / 'nowhere' / 'missing.pth'} does not exist (use --generate-missing)")
    refused = rows["ade20k-upernet.smoke.tiny.s0"]
    assert refused["status"] == "failed" and "refused by the planner" in refused["notes"]
    assert "cannot split the recipe batch 4 evenly (4 / 3 = 1.33333 images per process)" in refused["error"]
    ok = rows["inat2017.smoke.finetune.tiny.s0"]
    assert ok["status"] == "ok", ok["error"]
    assert ok["seconds_per_step"] > 0 and ok["peak_memory_mib"][0] > 100 and ok["params"] > 0
    assert ok["effective_batch"] == 8 and ok["processes_rehearsed"] == 1
    assert "generated data (the matrix's own generator)" in ok["notes"]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("*/cells/*"))
    table = cli(["run", str(matrix), "--rehearse", "--only", "absent"], env, timeout=300)
    assert table.returncode == 1 and "does not exist (use --generate-missing)" in table.stdout


def test_stand_ins_of_the_families_matrix_are_written_in_each_backbones_family_and_format(tmp_path: Path) -> None:
    """--generate-missing writes what the cell's backbone loads as the real file: its family, activation and
    forced format where that can be written (a HuggingFace directory for facebook/dinov2-base), else the
    family's own layout with the forced format lifted (BEiT's HuggingFace layout has no writer)."""
    from mae_transfer.checkpoints import load_pretrained
    from mae_transfer.matrix.plan.planner import plan_matrix
    from mae_transfer.matrix.rehearse.inputs import choose_checkpoint
    from mae_transfer.matrix.spec.matrix_spec import load_spec
    from mae_transfer.models import build_vit

    plan = plan_matrix(load_spec(REPO / "benchmarks" / "families.yaml", work_root=tmp_path / "fam"),
                       only="inat2017*dinov2_b14*,inat2017*clip_b16*,inat2017*beit_b16*")
    expected = {"dinov2_b14": ("hf_dinov2", True, {"family": "dinov2"}),
                "clip_b16": ("openai_clip", True, {"family": "clip", "activation": "quick_gelu"}),
                "beit_b16": ("timm", False, {"family": "beit"})}
    assert sorted(cell.backbone for cell in plan.cells) == sorted(expected)
    for cell in plan.cells:
        fmt, kept, build = expected[cell.backbone]
        path, how, format_kept = choose_checkpoint(plan, cell, 1, generate_missing=True)
        assert format_kept == kept and how == (f"generated {build['family']} {cell.arch} checkpoint ({fmt}) at the "
                                               "cut depth 1")
        assert Path(path).is_dir() == (fmt == "hf_dinov2")
        report = load_pretrained(build_vit(cell.arch, depth=1, **build), path)
        assert report.format == fmt and report.model_family == build["family"] and not report.missing


def test_stand_in_for_a_pretraining_stage_has_the_stage_encoders_depth(tmp_path: Path) -> None:
    """The smoke matrix's tiny_mae is pre-trained by a 4-block stage: before it has run, --rehearse
    --generate-missing writes a 4-block stand-in that the transfer cell loads whole (it wrote 12 blocks,
    and the cells failed with 'wrong architecture')."""
    from mae_transfer.checkpoints import load_pretrained
    from mae_transfer.matrix.plan.planner import plan_matrix
    from mae_transfer.matrix.rehearse.inputs import choose_checkpoint
    from mae_transfer.matrix.spec.matrix_spec import load_spec
    from mae_transfer.models import build_vit

    plan = plan_matrix(load_spec(REPO / "benchmarks" / "smoke.yaml", work_root=tmp_path / "smoke"),
                       only="inat2017*tiny_mae*")
    (cell,) = [cell for cell in plan.cells if cell.task == "inat2017"]
    assert cell.pretrain["depth"] == 4 and not Path(cell.checkpoint).exists()
    path, how, _ = choose_checkpoint(plan, cell, None, generate_missing=True)
    assert how.startswith("generated mae vit_tiny_patch16 checkpoint") and f"missing {cell.checkpoint}" in how
    report = load_pretrained(build_vit(cell.arch, depth=4, img_size=64), path)
    assert not report.missing and report.format == "mae"


PAPER_FALLBACK_NOTES = ("AMP -> fp32 (no GPU)",)
# One cell per distinct path for CI: ViTDet window + global blocks at 1024 with the 80 COCO
# categories; the 448 ViT-H fine-tuning; the ImageNet linear probe (LARS, BN head); partial
# fine-tuning of ViT-L's last block and of its MLP; one ViT-B fine-tuning cell of each other label
# space (iNat 2018 / 2019, Places205 / 365, ImageNet). CI trains every cell at most 2 images per
# process, COCO 1 (CI_BATCH; the linear probe's 512 per GPU only in the full mode). The A.3 COCO and ADE20K cells
# run in the full mode.
CI_CELLS = ("coco-maskrcnn.vitdet.mae_vit_base.s0", "inat2017.paper.finetune.r448.mae_vit_huge.s0",
            "imagenet.paper.linear.mae_vit_base.s0", "imagenet.paper.partial-1.mae_vit_large.s0",
            "inat2018.paper.finetune.mae_vit_base.s0", "inat2019.paper.finetune.mae_vit_base.s0",
            "places205.paper.finetune.mae_vit_base.s0", "places365.paper.finetune.mae_vit_base.s0",
            "imagenet.paper.finetune.mae_vit_base.s0", "imagenet.paper.partial-mlp.mae_vit_large.s0")
# --rehearse-batch in CI: 2 images per process (Mixup needs an even batch), 1 for the COCO cell
# (a 1024 px Mask R-CNN step is the suite's costliest; the families rehearsal runs COCO at 1 too)
CI_BATCH = {"coco-maskrcnn.vitdet.mae_vit_base.s0": 1}
CI_BATCH_DEFAULT = 2
FULL = os.environ.get("MAE_TRANSFER_FULL_REHEARSAL") == "1"


@pytest.mark.slow
def test_rehearsal_of_the_paper_matrix(tmp_path: Path, env) -> None:
    from mae_transfer.matrix.spec.recipes import recipe_for

    env = {**env, "OMP_NUM_THREADS": "1"}
    matrix = str(REPO / "benchmarks" / "mae_paper.yaml")
    only = [] if FULL else ["--only", ",".join(CI_CELLS)]
    plan = json.loads(cli(["plan", matrix, "--json", "--work-root", str(tmp_path / "paper"), *only], env).stdout)
    assert FULL or sorted(cell["label"] for cell in plan["cells"]) == sorted(CI_CELLS)
    started = time.monotonic()
    batch_of = {label: CI_BATCH.get(label, CI_BATCH_DEFAULT) for label in CI_CELLS}
    runs = [[]] if FULL else [["--only", ",".join(label for label in CI_CELLS if batch_of[label] == batch),
                               "--rehearse-batch", str(batch)] for batch in sorted(set(batch_of.values()))]
    rows = []
    for selection in runs:
        result = cli(["run", matrix, "--rehearse", "--json", "--work-root", str(tmp_path / "paper"),
                      "--generate-missing", "--max-depth", "min", "--rehearse-data", "generated", "--steps", "2",
                      "--eval-images", "2", *selection], env, timeout=5400)
        rows += json.loads(result.stdout)
        failed = [row["error"] for row in rows if row["status"] != "ok"]
        assert not failed, "\n\n".join(failed)
        assert result.returncode == 0
    seconds = time.monotonic() - started
    (tmp_path.parent / "paper_rehearsal.json").write_text(json.dumps({"seconds": seconds, "rows": rows}, indent=1))
    assert len(rows) == len(plan["cells"]) == (36 if FULL else len(CI_CELLS))
    cells = {cell["label"]: cell for cell in plan["cells"]}
    for row in rows:
        cell = cells[row["cell"]]
        recipe = recipe_for(cell["task"], cell["recipe"], cell["arch"], cell["protocol"], cell["resolution"])
        assert row["effective_batch"] == recipe.batch == cell["effective_batch"]
        assert row["seconds_per_step"] > 0 and row["params"] > 0 and min(row["peak_memory_mib"]) > 100
        assert len(row["peak_memory_mib"]) == row["processes_rehearsed"]
        assert row["depth_rehearsed"] < row["depth"]
        batch = cell["per_gpu_batch"] if FULL else min(cell["per_gpu_batch"], batch_of[row["cell"]])
        assert row["per_gpu_batch_rehearsed"] == batch and row["per_gpu_batch"] == cell["per_gpu_batch"]
        capped = batch < cell["per_gpu_batch"]
        assert any(n.startswith(f"per-GPU batch {cell['per_gpu_batch']} -> {batch}") for n in row["notes"]) == capped
        assert (row["projected_hours"] is None) == capped
        for note in PAPER_FALLBACK_NOTES:
            assert note in row["notes"]
        if cell["task"] == "ade20k-upernet" or cell["recipe"] == "paper" and cell["task"] == "coco-maskrcnn":
            assert any(note.startswith("SyncBN -> BN") for note in row["notes"]), row["notes"]
        assert not Path(cell["work_dir"]).exists()
