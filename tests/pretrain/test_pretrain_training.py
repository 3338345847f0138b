"""A tiny MAE pre-training run through tools/train.py on generated ImageNet, and what it writes.

One run (module fixture) of the smoke config shortened to 40 epochs; the tests read its official
checkpoints: held-out masked-patch loss against the untrained model, the official key layout,
`inspect`, `load_pretrained` into the smoke transfer backbone, `visualize`, and continuing a
checkpoint's schedule in a second run.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from pretrain_helpers import REPO, SMOKE_PRETRAIN, official_mae_shapes, state_shapes
from training_helpers import run, train_command

from mae_transfer.checkpoints import load_pretrained
from mae_transfer.data import make_dataset
from mae_transfer.models import build_vit
from mae_transfer.pretrain import MaskedAutoencoderViT, build_from_checkpoint, pretrain_checkpoint_path
from mae_transfer.pretrain.visualize import load_images

logger = logging.getLogger(__name__)
pytestmark = pytest.mark.slow
EPOCHS = 40
ITERS_PER_EPOCH = 4  # 4 classes x 16 images / batch 16


def _options(root: Path, **extra) -> dict[str, object]:
    return {"train_dataloader.dataset.data_root": root, "val_dataloader.dataset.data_root": root,
            "train_cfg.max_epochs": EPOCHS, "param_scheduler.1.end": EPOCHS, "train_cfg.val_interval": EPOCHS,
            **extra}


def _logged(work_dir: Path, key: str) -> dict[int, float]:
    (scalars,) = sorted(work_dir.glob("*/vis_data/scalars.json"))
    records = [json.loads(line) for line in scalars.read_text().splitlines() if line.strip()]
    return {record["iter"]: record[key] for record in records if key in record and "iter" in record}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("pretrain")
    root = make_dataset("imagenet", base / "imagenet", seed=0)
    work_dir = base / "run"
    run(train_command(SMOKE_PRETRAIN, work_dir, _options(root)), timeout=600)
    return {"root": root, "work_dir": work_dir}


def _held_out_loss(model: MaskedAutoencoderViT, root: Path) -> float:
    images = load_images(sorted((root / "val").glob("*/*.JPEG")), (64, 64))
    with torch.no_grad():
        return float(model.eval()(images, generator=torch.Generator().manual_seed(0)).loss)


def test_held_out_norm_pix_loss_ends_well_below_predicting_zeros_and_the_untrained_model(trained) -> None:
    model, checkpoint = build_from_checkpoint(pretrain_checkpoint_path(trained["work_dir"], EPOCHS))
    assert model.norm_pix_loss and checkpoint.epoch == EPOCHS - 1
    torch.manual_seed(0)
    untrained = MaskedAutoencoderViT(**checkpoint.args["mae_transfer_model"])
    trained_loss, untrained_loss = _held_out_loss(model, trained["root"]), _held_out_loss(untrained, trained["root"])
    logger.warning("held-out masked-patch loss (norm-pix, 32 val images, fixed masks): trained %.4f, untrained %.4f, "
                   "zeros 1.0", trained_loss, untrained_loss)
    assert trained_loss < 0.6 and trained_loss < untrained_loss - 0.3
    metrics = json.loads((trained["work_dir"] / "metrics.json").read_text())["metrics"]
    assert metrics["mae/masked_patch_loss"] < 0.6


def test_checkpoints_are_official_with_the_decoder_at_the_chosen_epochs(trained) -> None:
    work_dir = trained["work_dir"]
    assert sorted(p.name for p in work_dir.glob("checkpoint-*.pth")) == ["checkpoint-24.pth", "checkpoint-39.pth"]
    raw = torch.load(work_dir / "checkpoint-39.pth", map_location="cpu", weights_only=True)
    assert list(raw) == ["model", "optimizer", "epoch", "scaler", "args"] and raw["epoch"] == 39
    assert state_shapes(raw["model"]) == official_mae_shapes(192, 4, 16, 4, 128, 2)
    assert {k: raw["args"][k] for k in ("model", "input_size", "mask_ratio", "norm_pix_loss", "epochs", "world_size",
                                        "batch_size")} == {
        "model": "mae_vit_tiny_patch16", "input_size": 64, "mask_ratio": 0.75, "norm_pix_loss": True,
        "epochs": EPOCHS, "world_size": 1, "batch_size": 16}
    summary = json.loads(subprocess.run(
        [sys.executable, "-m", "mae_transfer.cli", "inspect", str(work_dir / "checkpoint-39.pth"), "--json"],
        cwd=REPO, capture_output=True, text=True, check=True).stdout)
    assert summary["ok"] and summary["format"] == "mae_full"


def test_the_encoder_loads_into_the_smoke_transfer_backbone(trained) -> None:
    backbone = build_vit("vit_tiny_patch16", img_size=64, depth=4)
    report = load_pretrained(backbone, pretrain_checkpoint_path(trained["work_dir"], EPOCHS))
    assert report.missing == [] and len(report.matched) == len(backbone.state_dict())


def test_visualize_writes_one_row_per_image(trained, tmp_path: Path) -> None:
    images = [str(p) for p in sorted((trained["root"] / "val").glob("*/*.JPEG"))[:3]]
    out = tmp_path / "recon.png"
    result = subprocess.run(
        [sys.executable, "-m", "mae_transfer.cli", "visualize",
         str(pretrain_checkpoint_path(trained["work_dir"], EPOCHS)), *images, "--out", str(out), "--seed", "3",
         "--json"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["ok"] and summary["norm_pix_loss"] and summary["images"] == 3 and summary["masked_patch_loss"] < 1
    with Image.open(out) as png:
        width, height = png.size
    assert height > width * 0.6  # three rows of four panels


def test_visualize_refuses_an_encoder_only_checkpoint(trained, tmp_path: Path) -> None:
    raw = torch.load(pretrain_checkpoint_path(trained["work_dir"], EPOCHS), map_location="cpu", weights_only=True)
    encoder_only = tmp_path / "encoder.pth"
    encoder = {k: v for k, v in raw["model"].items() if not k.startswith(("decoder", "mask"))}
    torch.save({"model": encoder}, encoder_only)
    image = str(next((trained["root"] / "val").glob("*/*.JPEG")))
    result = subprocess.run([sys.executable, "-m", "mae_transfer.cli", "visualize", str(encoder_only), image,
                             "--out", str(tmp_path / "x.png")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1 and "no MAE decoder in the checkpoint" in result.stderr


def test_continuing_an_official_checkpoint_resumes_its_schedule(trained, tmp_path: Path) -> None:
    start = pretrain_checkpoint_path(trained["work_dir"], 25)
    work_dir = tmp_path / "continued"
    run(train_command(SMOKE_PRETRAIN, work_dir, _options(trained["root"], **{"model.init_from": start})), timeout=600)
    continued, reference = _logged(work_dir, "lr"), _logged(trained["work_dir"], "lr")
    assert min(continued) == 25 * ITERS_PER_EPOCH + ITERS_PER_EPOCH  # first logged iteration of epoch 26
    for iteration in (min(continued), 30 * ITERS_PER_EPOCH):
        assert continued[iteration] == pytest.approx(reference[iteration], rel=1e-9)
    assert torch.load(work_dir / "checkpoint-39.pth", weights_only=True)["epoch"] == 39
