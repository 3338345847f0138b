"""Classification integration (iNaturalist, Places): registers the task into mmengine's registries.

Configs reach everything through one import::

    custom_imports = dict(imports=["mae_transfer.integrations.classification"], allow_failed_imports=False)

Registered names, all in mmengine's root registries (no mmpretrain needed, no collision with
its ``ImageClassifier``/``Places205``/``iNat2018``/``Accuracy``):

- ``MAETransferClassifier`` (``MODELS``): :class:`mae_transfer.classification.model.MAEClassifier`;
- ``MAETransferINaturalistDataset``, ``MAETransferPlacesDataset``, ``MAETransferImageFolderDataset``
  (ImageNet-1k ``train/``/``val/``) (``DATASETS``);
- ``MAETransferLoadRGBImage``, ``MAETransferTimmTransform``, ``MAETransferLinearProbeTransform``,
  ``MAETransferPackClassificationInputs`` (``TRANSFORMS``);
- ``MAETransferTopKAccuracy`` (``METRICS``): ``accuracy/top1`` and ``accuracy/top5`` in percent;
- ``MAETransferLars`` (``OPTIMIZERS``): :class:`mae_transfer.optim.LARS`, MAE's LARS for the
  linear probe (trust ratio on every parameter with ndim > 1, also at weight decay 0; timm's
  ``Lars`` skips it at weight decay 0);
- ``MAETransferLayerDecayOptimWrapperConstructor`` and the resume fix, through
  ``mae_transfer.integrations.engine``.
"""

from __future__ import annotations

from mmengine.registry import DATASETS, METRICS, MODELS, OPTIMIZERS, TRANSFORMS

import mae_transfer.integrations.engine  # noqa: F401  (resume fix, layer-decay constructor)
from mae_transfer.classification.datasets import INaturalistDataset, PlacesDataset
from mae_transfer.classification.imagefolder import ImageFolderDataset
from mae_transfer.classification.metric import TopKAccuracy
from mae_transfer.classification.model import MAEClassifier
from mae_transfer.classification.transforms import (
    LinearProbeTransform,
    LoadRGBImage,
    PackClassificationInputs,
    TimmTransform,
)
from mae_transfer.optim.lars import LARS

# The classes live in the core (mae_transfer.classification, mae_transfer.optim) under plain
# names; each is registered as a subclass whose name is the registered name.


@MODELS.register_module()
class MAETransferClassifier(MAEClassifier):
    """:class:`~mae_transfer.classification.model.MAEClassifier` as registered."""


@DATASETS.register_module()
class MAETransferINaturalistDataset(INaturalistDataset):
    """:class:`~mae_transfer.classification.datasets.INaturalistDataset` as registered."""


@DATASETS.register_module()
class MAETransferPlacesDataset(PlacesDataset):
    """:class:`~mae_transfer.classification.datasets.PlacesDataset` as registered."""


@DATASETS.register_module()
class MAETransferImageFolderDataset(ImageFolderDataset):
    """:class:`~mae_transfer.classification.imagefolder.ImageFolderDataset` as registered."""


@TRANSFORMS.register_module()
class MAETransferLoadRGBImage(LoadRGBImage):
    """:class:`~mae_transfer.classification.transforms.LoadRGBImage` as registered."""


@TRANSFORMS.register_module()
class MAETransferTimmTransform(TimmTransform):
    """:class:`~mae_transfer.classification.transforms.TimmTransform` as registered."""


@TRANSFORMS.register_module()
class MAETransferLinearProbeTransform(LinearProbeTransform):
    """:class:`~mae_transfer.classification.transforms.LinearProbeTransform` as registered."""


@TRANSFORMS.register_module()
class MAETransferPackClassificationInputs(PackClassificationInputs):
    """:class:`~mae_transfer.classification.transforms.PackClassificationInputs` as registered."""


@METRICS.register_module()
class MAETransferTopKAccuracy(TopKAccuracy):
    """:class:`~mae_transfer.classification.metric.TopKAccuracy` as registered."""


@OPTIMIZERS.register_module()
class MAETransferLars(LARS):
    """:class:`~mae_transfer.optim.LARS` as registered."""


__all__ = [
    "MAETransferClassifier",
    "MAETransferINaturalistDataset",
    "MAETransferPlacesDataset",
    "MAETransferImageFolderDataset",
    "MAETransferLoadRGBImage",
    "MAETransferTimmTransform",
    "MAETransferLinearProbeTransform",
    "MAETransferPackClassificationInputs",
    "MAETransferTopKAccuracy",
    "MAETransferLars",
]
