"""iNaturalist / Places classification transfer on mmengine's Runner.

- :mod:`~mae_transfer.classification.annotations`: readers for the official annotation files
  (pure Python; class-index rule and error messages);
- :mod:`~mae_transfer.classification.datasets`: mmengine datasets over those readers;
- :mod:`~mae_transfer.classification.transforms`: image loading, timm's MAE fine-tuning augmentation
  and MAE's weak linear-probe augmentation;
- :mod:`~mae_transfer.classification.model`: ``MAEClassifier`` (MAEViT + pooling + fc_norm + head,
  Mixup/CutMix and the soft-target loss);
- :mod:`~mae_transfer.classification.protocols`: full / linear / partial fine-tuning;
- :mod:`~mae_transfer.classification.metric`: top-1 / top-5 accuracy in percent.

Configs reach all of it through ``mae_transfer.integrations.classification``. Submodules are
imported on demand, so the annotation readers work without mmengine installed.
"""
