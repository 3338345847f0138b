"""ADE20K multi-scale + flip test: a Resize whose short side never drops below ``min_size``.

The 48.70 ms+flip reference of MMSegmentation's MAE ViT-B (mmseg 0.x
``configs/mae/upernet_mae-base_fp16_512x512_160k_ade20k_ms.py``) resizes each test image with
``MultiScaleFlipAug(img_scale=(2048, 512), img_ratios=[0.5, ..., 1.75], flip=True)`` around
``Resize(keep_ratio=True, min_size=512)``: the relative position bias tables are sized for
512 x 512 windows, so slide inference needs both sides >= 512 (mmseg's configs/mae README:
"we set min_size=512, that is, the shortest edge is 512"). mmseg 1.x's ``Resize`` (mmcv 2.x)
has no ``min_size``, and its MAE ``-ms`` config drops the multi-scale test instead.

:class:`MAETransferMinSizeResize` puts mmseg 0.x's rule back. With ``keep_ratio=True`` and ``min_size``
set, for the scale ``(long, short)`` of one test-time augmentation the image is rescaled so that
its short side is ``max(min(scale), min_size)``, its aspect ratio kept (mmseg 0.x
``Resize._resize_img``; like there, the long-edge bound of ``scale`` no longer applies). For
ADE20K's (2048, 512) x [0.5, 0.75, 1.0, 1.25, 1.5, 1.75] the short sides are 512, 512, 512,
640, 768, 896.

Registered into ``mmseg.registry.TRANSFORMS`` as ``MAETransferMinSizeResize``. Importing this
module also imports :mod:`mae_transfer.integrations.mmseg`, so the ``-ms`` configs name this one
module in ``custom_imports``.
"""

from __future__ import annotations

from typing import Any

from mmcv.transforms import Resize
from mmseg.registry import TRANSFORMS

import mae_transfer.integrations.mmseg  # noqa: F401  (the segmentor's registered modules)

__all__ = ["MAETransferMinSizeResize", "min_size_short_side"]


def min_size_short_side(scale: tuple[int, int], min_size: int | None) -> int:
    """The short side an image gets from ``scale`` under mmseg 0.x's ``min_size`` rule."""
    short = min(scale)
    return short if min_size is None else max(short, min_size)


@TRANSFORMS.register_module()
class MAETransferMinSizeResize(Resize):
    """mmcv's ``Resize`` with mmseg 0.x's ``min_size`` (see the module docstring).

    Args:
        min_size: the smallest short side after resizing (ADE20K ms+flip: 512); None behaves
            exactly as mmcv's ``Resize``. Only meaningful with ``keep_ratio=True``.
        **kwargs: mmcv ``Resize`` arguments (``scale``, ``scale_factor``, ``keep_ratio``,
            ``backend``, ``interpolation``, ...).
    """

    def __init__(self, min_size: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if min_size is not None and not self.keep_ratio:
            raise ValueError("MAETransferMinSizeResize: min_size needs keep_ratio=True (as mmseg 0.x Resize)")
        if min_size is not None and min_size <= 0:
            raise ValueError(f"MAETransferMinSizeResize: min_size must be a positive int, got {min_size}")
        self.min_size = min_size

    def _resize_img(self, results: dict[str, Any]) -> None:
        if self.min_size is not None and results.get("img") is not None:
            height, width = results["img"].shape[:2]
            short = min_size_short_side(tuple(results["scale"]), self.min_size)
            # a (long, short) bound whose ratio equals the image's: the rescale factor is short / min(h, w)
            results["scale"] = (short * max(height, width) / min(height, width), short)
        super()._resize_img(results)

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, min_size={self.min_size})"
