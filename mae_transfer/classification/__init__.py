"""iNaturalist / Places classification transfer on mmengine's Runner.

- :mod:`~mae_transfer.classification.datasets`: mmengine datasets over the official annotation
  readers of :mod:`mae_transfer.data.annotations` (pure Python; class-index rule and errors);
- :mod:`~mae_transfer.classification.imagefolder`: the ImageNet ImageFolder dataset over
  :mod:`mae_transfer.data.image_folders`;
- :mod:`~mae_transfer.classification.transforms`: image loading, timm's MAE fine-tuning augmentation
  and MAE's weak linear-probe augmentation;
- :mod:`~mae_transfer.classification.model`: ``MAEClassifier`` (MAEViT + pooling + fc_norm + head,
  Mixup/CutMix and the soft-target loss);
- :mod:`~mae_transfer.classification.protocols`: full / linear / partial fine-tuning;
- :mod:`~mae_transfer.classification.metric`: top-1 / top-5 accuracy in percent.

Configs reach all of it through ``mae_transfer.integrations.classification``. Submodules are
imported on demand.
"""
