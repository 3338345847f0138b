"""Data pipeline steps for classification: load an image, apply timm's transform, pack the sample.

Each step is a callable on the sample dict that mmengine's ``BaseDataset`` passes through its
pipeline (``img_path``, ``gt_label``, ``source``), so a config composes them::

    train_pipeline = [
        dict(type="MAETransferLoadRGBImage"),
        dict(type="MAETransferTimmTransform", input_size=224, is_training=True,
             auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.25),
        dict(type="MAETransferPackClassificationInputs"),
    ]

The augmentation itself is timm's ``create_transform`` with MAE's fine-tuning arguments
(``main_finetune.py``'s ``build_transform``): RandomResizedCrop + flip + RandAugment
``rand-m9-mstd0.5-inc1`` + normalisation + random erasing (p 0.25, per-pixel noise) for
training; resize to ``input_size / crop_pct`` and center crop for evaluation, with no
randomness at all. MAE's ``util/datasets.py`` uses ``crop_pct = 224 / 256`` for inputs up to
224 and ``1.0`` above (448: resize 448, crop 448); :func:`mae_eval_crop_pct` is that rule.

The linear probe (``main_linprobe.py``) trains with weak augmentation only:
:class:`LinearProbeTransform` (MAE's single-draw RandomResizedCrop, bicubic, + flip).

Pillow >= 13 raises on ``ImageOps.posterize(img, 0)``, which timm's ``PosterizeIncreasing``
reaches at RandAugment magnitude >= 10 (m9 with mstd 0.5 gets there), crashing training.
Older Pillow, which MAE used, returned a black image; :func:`restore_zero_bit_posterize`
puts that behaviour back in timm's op table at import.
"""

from __future__ import annotations

from typing import Any

import math

import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, auto_augment, create_transform
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

EVAL_CROP_PCT = 224 / 256  # MAE util/datasets.py, input <= 224: resize 256 -> center crop 224


def mae_eval_crop_pct(input_size: int) -> float:
    """MAE's evaluation crop fraction (``util/datasets.py``): 224 / 256 up to 224, else 1.0."""
    return EVAL_CROP_PCT if input_size <= 224 else 1.0


def _posterize(img: Image.Image, bits_to_keep: int, **_: Any) -> Image.Image:
    """Keep ``bits_to_keep`` bits per channel; 0 bits gives a black image (Pillow < 13 semantics)."""
    if bits_to_keep >= 8:
        return img
    if bits_to_keep <= 0:
        return img.point(lambda _value: 0)
    return ImageOps.posterize(img, bits_to_keep)


def restore_zero_bit_posterize() -> bool:
    """Route timm's posterize ops through :func:`_posterize` if this Pillow rejects 0 bits.

    Returns:
        whether timm's op table was changed.
    """
    try:
        ImageOps.posterize(Image.new("RGB", (1, 1)), 0)
        return False
    except ValueError:
        for name in ("Posterize", "PosterizeIncreasing", "PosterizeOriginal"):
            auto_augment.NAME_TO_OP[name] = _posterize
        return True


restore_zero_bit_posterize()


class LoadRGBImage:
    """``img_path`` -> ``img`` (a PIL RGB image); missing or unreadable files name their source."""

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        path = results["img_path"]
        source = results.get("source", "")
        try:
            with Image.open(path) as image:
                results["img"] = image.convert("RGB")
        except FileNotFoundError:
            raise FileNotFoundError(f"{source}: image file {path} not found") from None
        except (UnidentifiedImageError, OSError) as error:
            raise OSError(f"{source}: cannot decode image file {path} ({error})") from error
        return results


class TimmTransform:
    """timm's ``create_transform`` applied to ``img`` (PIL in, normalised CHW float tensor out).

    Args:
        input_size: output side in pixels (224, or 448 for the H448 recipe).
        is_training: random training augmentation; False gives resize + center crop only.
        auto_augment: timm auto-augment policy for training (MAE: ``rand-m9-mstd0.5-inc1``);
            None disables it.
        re_prob: random-erasing probability for training (MAE: 0.25).
        re_mode: random-erasing fill (MAE: ``pixel``, per-pixel normal noise).
        re_count: erased regions per image.
        interpolation: resize interpolation (MAE: bicubic).
        crop_pct: evaluation center-crop fraction; None = MAE's rule (:func:`mae_eval_crop_pct`:
            224 / 256 up to 224, 1.0 above).
        hflip: horizontal-flip probability for training.
        scale: RandomResizedCrop area range for training (timm default (0.08, 1)).
        mean: normalisation mean (ImageNet).
        std: normalisation std (ImageNet).
    """

    def __init__(
        self,
        input_size: int = 224,
        is_training: bool = False,
        auto_augment: str | None = None,
        re_prob: float = 0.0,
        re_mode: str = "pixel",
        re_count: int = 1,
        interpolation: str = "bicubic",
        crop_pct: float | None = None,
        hflip: float = 0.5,
        scale: tuple[float, float] | None = None,
        mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN,
        std: tuple[float, ...] = IMAGENET_DEFAULT_STD,
    ) -> None:
        self.is_training = is_training
        if is_training:
            self.transform = create_transform(
                input_size=input_size,
                is_training=True,
                color_jitter=None,  # MAE passes None; RandAugment covers colour
                auto_augment=auto_augment,
                interpolation=interpolation,
                re_prob=re_prob,
                re_mode=re_mode,
                re_count=re_count,
                hflip=hflip,
                scale=tuple(scale) if scale is not None else None,
                mean=tuple(mean),
                std=tuple(std),
            )
        else:
            self.transform = create_transform(
                input_size=input_size,
                is_training=False,
                interpolation=interpolation,
                crop_pct=mae_eval_crop_pct(input_size) if crop_pct is None else crop_pct,
                mean=tuple(mean),
                std=tuple(std),
            )

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        results["img"] = self.transform(results["img"])
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(is_training={self.is_training}, transform={self.transform})"


class LinearProbeTransform:
    """MAE's linear-probe training augmentation (``main_linprobe.py``): crop, flip, normalise.

    The crop is MAE's ``util/crop.py`` RandomResizedCrop (made to match the TF/TPU code): one
    draw of area fraction ``U(scale)`` and log-uniform aspect ratio, the box clipped to the
    image, no retry loop (torchvision and timm retry 10 times and fall back to a centre crop).
    Then bicubic resize to ``input_size``, horizontal flip with probability ``hflip``,
    ToTensor and ImageNet normalisation. No RandAugment, colour jitter, random erasing.

    Args:
        input_size: output side in pixels (224).
        scale: area fraction range of the crop (torchvision default (0.08, 1.0), as MAE).
        ratio: aspect-ratio range (3/4, 4/3).
        hflip: horizontal-flip probability (0.5).
        mean: normalisation mean (ImageNet).
        std: normalisation std (ImageNet).
    """

    def __init__(
        self,
        input_size: int = 224,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        hflip: float = 0.5,
        mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN,
        std: tuple[float, ...] = IMAGENET_DEFAULT_STD,
    ) -> None:
        self.input_size = input_size
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.hflip = hflip
        self.mean = list(mean)
        self.std = list(std)

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """One random crop box ``(top, left, height, width)`` inside a ``width`` x ``height`` image."""
        area = width * height * torch.empty(1).uniform_(self.scale[0], self.scale[1]).item()
        log_low, log_high = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = math.exp(torch.empty(1).uniform_(log_low, log_high).item())
        crop_w = min(int(round(math.sqrt(area * aspect))), width)
        crop_h = min(int(round(math.sqrt(area / aspect))), height)
        top = int(torch.randint(0, height - crop_h + 1, (1,)).item())
        left = int(torch.randint(0, width - crop_w + 1, (1,)).item())
        return top, left, crop_h, crop_w

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        image = results["img"]
        top, left, crop_h, crop_w = self.crop_box(*image.size)
        size = [self.input_size, self.input_size]
        image = F.resized_crop(image, top, left, crop_h, crop_w, size, interpolation=InterpolationMode.BICUBIC)
        if torch.rand(1).item() < self.hflip:
            image = F.hflip(image)
        results["img"] = F.normalize(F.to_tensor(image), self.mean, self.std)
        return results

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(input_size={self.input_size}, scale={self.scale}, ratio={self.ratio}, "
                f"hflip={self.hflip})")


class PackClassificationInputs:
    """``{"inputs": CHW tensor, "data_samples": class index}`` for the model's ``forward``."""

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        image = results["img"]
        if not isinstance(image, torch.Tensor):
            raise TypeError(f"{results.get('source', '')}: expected a tensor image after the transform, "
                            f"got {type(image).__name__}; put MAETransferTimmTransform before packing")
        return {"inputs": image, "data_samples": int(results["gt_label"])}
