"""`doctor`: one readable report, the LoadReport of each checkpoint, non-zero exit on a problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mae_transfer.matrix.doctor import run_doctor
from mae_transfer.matrix.plan.planner import plan_matrix
from mae_transfer.matrix.spec.matrix_spec import load_spec
from mae_transfer.models import build_vit

MATRIX = """
name: doc
backbones:
  - {name: mine, checkpoint: CKPT}
datasets:
  inat2017: {root: inat}
tasks:
  - {task: inat2017, recipe: smoke}
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))


def test_healthy_matrix_passes_and_shows_the_load_report(tmp_path: Path) -> None:
    from mae_transfer.data import make_dataset

    torch.manual_seed(0)
    torch.save({"model": build_vit("vit_tiny_patch16").state_dict()}, tmp_path / "tiny.pth")
    make_dataset("inat2017", tmp_path / "inat")
    # the smoke config builds 4 blocks: the cell asks for the checkpoint's 12
    (tmp_path / "m.yaml").write_text(MATRIX.replace("CKPT", "tiny.pth").replace(
        "recipe: smoke}", "recipe: smoke, overrides: {model.backbone.depth: 12}}"))
    plan = plan_matrix(load_spec(tmp_path / "m.yaml"))
    assert plan.cells[0].arch == "vit_tiny_patch16"  # detected from the checkpoint
    report = run_doctor(plan)
    text = report.render()
    assert report.ok, text
    assert "[ok]   checkpoints: mine (vit_tiny_patch16 at 224px, depth 12) loads" in text
    assert "[ok]   datasets: inat2017 dataset at" in text
    assert "[ok]   configs:" in text and "override keys present" in text
    assert text.endswith("doctor: all checks passed")


def test_missing_checkpoint_and_broken_dataset_fail(tmp_path: Path) -> None:
    (tmp_path / "inat").mkdir()
    (tmp_path / "m.yaml").write_text(MATRIX.replace("CKPT", "gone.pth").replace("{name: mine, checkpoint: gone.pth}",
                                                                                "{name: mine, checkpoint: gone.pth, arch: vit_tiny_patch16}"))
    report = run_doctor(plan_matrix(load_spec(tmp_path / "m.yaml")))
    text = report.render()
    assert not report.ok
    assert f"[FAIL] checkpoints: mine: {tmp_path / 'gone.pth'} does not exist" in text
    assert "[FAIL] datasets: inat2017 dataset at" in text and "train2017.json" in text
    assert text.splitlines()[-1].startswith("doctor: ") and "problem(s)" in text


def test_doctor_and_run_agree_on_a_non_standard_depth_checkpoint(tmp_path: Path) -> None:
    """Issue 12: doctor built the arch's standard depth and failed a 6-block checkpoint that
    run (the config's backbone with the cell's overrides) loads; both now build the same backbone."""
    from mmengine.config import Config
    from mmengine.registry import MODELS

    import mae_transfer.integrations.classification  # noqa: F401  (registers the classifier)
    from mae_transfer.data import make_dataset
    from mae_transfer.matrix.doctor import cell_backbone_kwargs

    torch.manual_seed(0)
    torch.save({"model": build_vit("vit_tiny_patch16", depth=6).state_dict()}, tmp_path / "six.pth")
    make_dataset("inat2017", tmp_path / "inat")
    text = MATRIX.replace("{name: mine, checkpoint: CKPT}", "{name: mine, checkpoint: six.pth, arch: vit_tiny_patch16}")
    (tmp_path / "m.yaml").write_text(text.replace("recipe: smoke}", "recipe: smoke, overrides: {model.backbone.depth: 6}}"))
    plan = plan_matrix(load_spec(tmp_path / "m.yaml"))
    (cell,) = plan.cells
    assert cell_backbone_kwargs(cell) == {"arch": "vit_tiny_patch16", "depth": 6}
    report = run_doctor(plan)
    assert report.ok, report.render()
    assert "mine (vit_tiny_patch16 at 224px, depth 6) loads" in report.render()
    # what run does: the model of the cell's resolved config, its pretrained weights loaded
    cfg = Config.fromfile(cell.config)
    cfg.merge_from_dict(dict(cell.cfg_options))
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert torch.equal(model.backbone.blocks[5].attn.qkv.weight,
                       torch.load(tmp_path / "six.pth")["model"]["blocks.5.attn.qkv.weight"])
    # without the override both refuse it: the config builds 4 blocks
    (tmp_path / "m.yaml").write_text(text)
    report = run_doctor(plan_matrix(load_spec(tmp_path / "m.yaml")))
    assert not report.ok and "wrong architecture" in report.render() and "depth 4" in report.render()
