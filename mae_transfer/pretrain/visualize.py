"""Reconstruction figures: original | masked | reconstruction | reconstruction + visible patches.

Follows the official demo (``demo/mae_visualize.ipynb``): images resized to the model's input
size, normalised with the ImageNet mean and std, one seeded random mask per image; the masked
view keeps the visible patches (removed ones show the mean colour); the pasted view puts the
visible patches back over the reconstruction. A norm-pix model predicts normalised patches:
they are shown in pixels with the mean and variance of the original patch at their position.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from mae_transfer.pretrain.model import MaskedAutoencoderViT
from mae_transfer.pretrain.patches import denormalize_patches, patchify, unpatchify

logger = logging.getLogger(__name__)

COLUMNS = ("original", "masked", "reconstruction", "reconstruction + visible")


@dataclass
class Reconstruction:
    """One batch's views, each (N, 3, H, W) in the normalised input space, and its loss."""

    original: torch.Tensor
    masked: torch.Tensor
    reconstruction: torch.Tensor
    pasted: torch.Tensor
    mask: torch.Tensor
    loss: float


def load_images(paths: Sequence[str | os.PathLike], size: tuple[int, int]) -> torch.Tensor:
    """RGB files -> (N, 3, H, W) resized (bicubic) to ``size`` and ImageNet-normalised.

    Raises:
        FileNotFoundError / ValueError: naming the file that is missing or cannot be decoded.
    """
    mean = torch.tensor(IMAGENET_DEFAULT_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_DEFAULT_STD).view(3, 1, 1)
    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB").resize((size[1], size[0]), Image.BICUBIC)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: image file not found") from None
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"{path}: cannot decode the image ({error})") from error
        pixels = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)
        images.append((pixels - mean) / std)
    return torch.stack(images)


@torch.no_grad()
def reconstruct(
    model: MaskedAutoencoderViT, images: torch.Tensor, mask_ratio: float | None = None, seed: int = 0
) -> Reconstruction:
    """Run the MAE on normalised images with a mask drawn from ``seed``."""
    model.eval()
    generator = torch.Generator(device="cpu").manual_seed(seed)
    output = model(images, mask_ratio=mask_ratio, generator=generator)
    size, grid = model.patch_size, model.grid_size
    pred = output.pred.float()
    if model.norm_pix_loss:
        pred = denormalize_patches(pred, patchify(images.float(), size))
    reconstruction = unpatchify(pred, size, grid, model.in_chans)
    removed = unpatchify(output.mask.unsqueeze(-1).expand(-1, -1, size * size * model.in_chans), size, grid,
                         model.in_chans)
    masked = images * (1 - removed)
    return Reconstruction(images, masked, reconstruction, masked + reconstruction * removed, output.mask,
                          float(output.loss))


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """Normalised (N, 3, H, W) -> (N, H, W, 3) floats in [0, 1] for display."""
    mean = torch.tensor(IMAGENET_DEFAULT_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_DEFAULT_STD).view(1, 3, 1, 1)
    return (images.float().cpu() * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()


def render_png(result: Reconstruction, out: str | os.PathLike, row_labels: Sequence[str], title: str = "") -> Path:
    """Write one row per image with the four :data:`COLUMNS` to a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    views = [to_pixels(view) for view in (result.original, result.masked, result.reconstruction, result.pasted)]
    rows = views[0].shape[0]
    figure = Figure(figsize=(4 * 2.4, rows * 2.5 + (0.4 if title else 0)))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, len(COLUMNS), squeeze=False)
    for row in range(rows):
        for column, view in enumerate(views):
            axis = axes[row][column]
            axis.imshow(view[row])
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(COLUMNS[column], fontsize=9)
        axes[row][0].set_ylabel(row_labels[row], fontsize=8)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format="png", dpi=100)
    return out


def visualize(
    model: MaskedAutoencoderViT,
    image_paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    seed: int = 0,
    mask_ratio: float | None = None,
    title: str = "",
) -> tuple[Path, Reconstruction]:
    """Reconstruct ``image_paths`` with ``model`` and write the figure to ``out``."""
    if not image_paths:
        raise ValueError("no images given; expected at least one IMAGE")
    size = (model.grid_size[0] * model.patch_size, model.grid_size[1] * model.patch_size)
    result = reconstruct(model, load_images(image_paths, size), mask_ratio=mask_ratio, seed=seed)
    path = render_png(result, out, [Path(p).name for p in image_paths], title)
    logger.info("wrote %s (%d images, masked-patch loss %.4f)", path, len(image_paths), result.loss)
    return path, result
