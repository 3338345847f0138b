"""OpenMMLab integrations: the only part of mae-transfer that imports mmcv/mmengine/mmdet/mmseg.

Configs import one task module through ``custom_imports``:
``mae_transfer.integrations.mmdet`` (COCO), ``mae_transfer.integrations.mmseg`` (ADE20K) or
``mae_transfer.integrations.classification`` (iNaturalist, Places). Each imports
:mod:`mae_transfer.integrations.engine` for what every task shares.
"""
