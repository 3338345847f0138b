"""Classification integration (iNaturalist, Places): registers the task into mmengine's registries.

Configs reach everything through one import::

    custom_imports = dict(imports=["mae_transfer.integrations.classification"], allow_failed_imports=False)

Registered names, all in mmengine's root registries (no mmpretrain needed, no collision with
its ``ImageClassifier``/``Places205``/``iNat2018``/``Accuracy``):

- ``MAETransferClassifier`` (``MODELS``): :class:`mae_transfer.classification.model.MAEClassifier`;
- ``MAETransferINaturalistDataset``, ``MAETransferPlacesDataset``, ``MAETransferImageFolderDataset``
  (ImageNet-1k ``train/``/``val/``) (``DATASETS``);
- ``MAETransferLoadRGBImage``, ``MAETransferTimmTransform``,
  ``MAETransferPackClassificationInputs`` (``TRANSFORMS``);
- ``MAETransferTopKAccuracy`` (``METRICS``): ``accuracy/top1`` and ``accuracy/top5`` in percent;
- ``MAETransferLars`` (``OPTIMIZERS``): timm's LARS, for MAE's linear probe;
- ``MAELayerDecayOptimWrapperConstructor`` and the resume fix, through
  ``mae_transfer.integrations.engine``.
"""

from __future__ import annotations

from mmengine.registry import DATASETS, METRICS, MODELS, OPTIMIZERS, TRANSFORMS
from timm.optim import Lars

import mae_transfer.integrations.engine  # noqa: F401  (resume fix, layer-decay constructor)
from mae_transfer.classification.datasets import INaturalistDataset, PlacesDataset
from mae_transfer.classification.imagefolder import ImageFolderDataset
from mae_transfer.classification.metric import TopKAccuracy
from mae_transfer.classification.model import MAEClassifier
from mae_transfer.classification.transforms import LoadRGBImage, PackClassificationInputs, TimmTransform

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
        "MAETransferPackClassificationInputs": PackClassificationInputs,
    },
    METRICS: {"MAETransferTopKAccuracy": TopKAccuracy},
    OPTIMIZERS: {"MAETransferLars": Lars},
}

for _registry, _modules in REGISTERED.items():
    for _name, _module in _modules.items():
        if _name not in _registry.module_dict:
            _registry.register_module(name=_name, module=_module)

__all__ = ["REGISTERED"]
