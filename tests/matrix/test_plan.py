"""Planning: the paper's matrix has every reported cell, ids are distinct and content-derived."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mae_transfer.leaderboard.references import load_references
from mae_transfer.matrix.plan.planner import DigestCache, plan_matrix
from mae_transfer.matrix.spec.matrix_spec import load_spec

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))


def paper_matrix(tmp_path: Path, edit=None) -> Path:
    """A copy of benchmarks/mae_paper.yaml (optionally edited) with the references beside it."""
    raw = yaml.safe_load((BENCHMARKS / "mae_paper.yaml").read_text())
    if edit:
        edit(raw)
    (tmp_path / "references").mkdir(exist_ok=True)
    shutil.copy(BENCHMARKS / "references" / "mae_paper.yaml", tmp_path / "references" / "mae_paper.yaml")
    path = tmp_path / "mae_paper.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_paper_matrix_has_every_reported_cell_with_distinct_ids(tmp_path: Path) -> None:
    plan = plan_matrix(load_spec(BENCHMARKS / "mae_paper.yaml", work_root=tmp_path / "runs"))
    planned = {(c.task, c.recipe, c.arch, c.protocol, c.resolution) for c in plan.cells}
    references = [BENCHMARKS / "references" / name for name in ("mae_paper.yaml", "mae_imagenet.yaml")]
    assert list(plan.spec.references) == [path.resolve() for path in references]
    reported = {(r.task, r.recipe, r.arch, r.protocol, r.resolution) for r in load_references(references)
                if r.pretraining == "MAE"}
    assert reported - planned == set()
    # Table 4: 2 paper + 3 ViTDet, Table 5: 2, Table 6: 5 datasets x (B, L, H, H448);
    # ImageNet: fine-tuning B, L, H, H448, linear B, L, H, ViT-L partial-1 and partial-mlp.
    assert len(plan.cells) == 2 + 3 + 2 + 5 * 4 + 4 + 3 + 2
    assert len({c.id for c in plan.cells}) == len(plan.cells)
    assert len({c.work_dir for c in plan.cells}) == len(plan.cells)
    assert plan.total_gpu_hours > 0


def test_changing_one_override_changes_exactly_the_affected_ids(tmp_path: Path) -> None:
    before = plan_matrix(load_spec(paper_matrix(tmp_path), work_root=tmp_path / "runs"))

    def edit(raw: dict) -> None:
        raw["tasks"][5]["overrides"] = {"train_cfg.max_epochs": 50}  # iNat2018 at 224: B, L, H

    after = plan_matrix(load_spec(paper_matrix(tmp_path, edit), work_root=tmp_path / "runs"))
    old = {c.label: c.id for c in before.cells}
    new = {c.label: c.id for c in after.cells}
    assert old.keys() == new.keys()
    changed = {label for label in old if old[label] != new[label]}
    assert changed == {f"inat2018.paper.finetune.{b}.s0" for b in ("mae_vit_base", "mae_vit_large", "mae_vit_huge")}
    assert all(c.cfg_options["train_cfg.max_epochs"] == 50 for c in after.cells if c.label in changed)

    def edit_global(raw: dict) -> None:
        raw["overrides"] = {"env_cfg.cudnn_benchmark": True}

    everything = plan_matrix(load_spec(paper_matrix(tmp_path, edit_global), work_root=tmp_path / "runs"))
    assert all(c.id != old[c.label] for c in everything.cells)


def test_checkpoint_content_changes_only_its_cells(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.pth").write_bytes(name.encode() * 100)
    text = """
name: two
backbones:
  - {name: a, checkpoint: a.pth, arch: vit_base_patch16}
  - {name: b, checkpoint: b.pth, arch: vit_base_patch16}
tasks:
  - {task: inat2017, recipe: paper}
  - {task: ade20k-upernet, recipe: paper}
"""
    (tmp_path / "m.yaml").write_text(text)
    first = {c.label: c.id for c in plan_matrix(load_spec(tmp_path / "m.yaml")).cells}
    again = {c.label: c.id for c in plan_matrix(load_spec(tmp_path / "m.yaml")).cells}
    assert first == again
    (tmp_path / "a.pth").write_bytes(b"changed" * 100)
    changed = {c.label: c.id for c in plan_matrix(load_spec(tmp_path / "m.yaml")).cells}
    assert {label for label in first if first[label] != changed[label]} == {
        "inat2017.paper.finetune.a.s0", "ade20k-upernet.paper.a.s0"}


def test_digest_cache_reuses_unchanged_files(tmp_path: Path) -> None:
    file = tmp_path / "w.pth"
    file.write_bytes(b"x" * 1000)
    cache = DigestCache(tmp_path / "digests.json")
    digest = cache.digest(file)
    cache.save()
    reloaded = DigestCache(tmp_path / "digests.json")
    reloaded.entries[str(file.resolve())]["sha256"] = "sentinel"  # proves the cached entry is used
    assert reloaded.digest(file) == "sentinel"
    file.write_bytes(b"y" * 1001)
    assert reloaded.digest(file) not in ("sentinel", digest)


def test_cells_carry_checkpoint_data_root_and_seed_options(tmp_path: Path) -> None:
    plan = plan_matrix(load_spec(BENCHMARKS / "smoke.yaml", work_root=tmp_path / "runs"))
    coco = next(c for c in plan.cells if c.task == "coco-maskrcnn" and c.backbone == "tiny_random")
    assert coco.cfg_options["model.backbone.pretrained"] == str(tmp_path / "runs" / "checkpoints" / "tiny_random.pth")
    assert coco.cfg_options["val_evaluator.ann_file"] == str(tmp_path / "runs" / "data" / "coco" / "annotations" / "instances_val2017.json")
    assert coco.cfg_options["randomness.seed"] == 0
    # the smoke matrix pre-trains tiny_mae first, then runs every task kind on both backbones
    assert plan.cells[0].task == "mae-pretrain"
    assert sorted((c.task, c.backbone) for c in plan.cells[1:]) == sorted(
        (task, backbone) for task in ("coco-maskrcnn", "ade20k-upernet", "inat2017", "places365")
        for backbone in ("tiny_random", "tiny_mae"))
    pretrained = next(c for c in plan.cells if c.task == "coco-maskrcnn" and c.backbone == "tiny_mae")
    assert pretrained.cfg_options["model.backbone.pretrained"] == str(
        Path(plan.cells[0].work_dir) / "train" / "checkpoint-49.pth")  # after 50 epochs (the official name)


def _format_matrix(tmp_path: Path, fmt: str | None) -> Path:
    backbone = "{name: real, checkpoint: real.pth, arch: vit_tiny_patch16" + (f", format: {fmt}" if fmt else "") + "}"
    path = tmp_path / "m.yaml"
    path.write_text(f"""
name: f
backbones: [{backbone}]
resources: {{gpus_per_cell: 0, time_limit_hours: 1}}
tasks:
  - {{task: coco-maskrcnn, recipe: smoke}}
  - {{task: inat2017, recipe: smoke, protocol: partial-2}}
""")
    return path


def test_a_forced_backbone_format_reaches_every_cell_next_to_its_checkpoint(tmp_path: Path) -> None:
    plan = plan_matrix(load_spec(_format_matrix(tmp_path, "beit"), work_root=tmp_path / "runs"))
    options = {c.task: c.cfg_options for c in plan.cells}
    assert options["coco-maskrcnn"]["model.backbone.pretrained_format"] == "beit"
    assert options["inat2017"]["model.pretrained_format"] == "beit"
    assert options["inat2017"]["model.protocol"] == "partial-2"  # the matrix spelling, as the classifier takes it
    auto = plan_matrix(load_spec(_format_matrix(tmp_path, None), work_root=tmp_path / "runs-auto"))
    assert not any(key.endswith("_format") for c in auto.cells for key in c.cfg_options)
    assert {c.id for c in auto.cells}.isdisjoint(c.id for c in plan.cells)  # the format is part of the identity
