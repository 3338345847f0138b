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
- ``MAELayerDecayOptimWrapperConstructor`` and the resume fix, through
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

REGISTERED = {
    MODELS: {"MAETransferClassifier": MAEClassifier},
    DATASETS: {
        "MAETransferINaturalistDataset": INaturalistDataset,
        "MAETransferPlacesDataset": PlacesDataset,
        "MAETransferImageFolderDataset": ImageFolderDataset,
    },
    TRANSFORMS: {
        "MAETransferLoadRGBImage": LoadRGBImage,
        "MAETransferTimmTransform": TimmTransform,
        "MAETransferLinearProbeTransform": LinearProbeTransform,
        "MAETransferPackClassificationInputs": PackClassificationInputs,
    },
    METRICS: {"MAETransferTopKAccuracy": TopKAccuracy},
    OPTIMIZERS: {"MAETransferLars": LARS},
}

for _registry, _modules in REGISTERED.items():
    for _name, _module in _modules.items():
        if _name not in _registry.module_dict:
            _registry.register_module(name=_name, module=_module)

__all__ = ["REGISTERED"]
