# CPU smoke run of the MAE paper's COCO path (A.3 = Li et al. 2021, configs/_base_/coco/
# mae_fpn_mask_rcnn.py) at smoke size: the 4-block ViT-Tiny of coco_maskrcnn.py with window
# attention and Li's shared relative position tables, its four blocks tapped (the group ends of
# 4 groups of 1) and rescaled x4 (deconv, GroupNorm, GELU, deconv) / x2 / x1 / x0.5, mmdet's FPN,
# a 4conv1fc box head and a mask head, SyncBN in FPN and heads as in the recipe (BN when run
# without GPUs, see mae_transfer.integrations.cpu_fallbacks). Data, overrides and schedule as in
# coco_maskrcnn.py (same keys); AdamW without layer decay, as the paper recipe.
_base_ = ['./coco_maskrcnn.py']

channels = 64
sync_norm_cfg = dict(type='SyncBN', requires_grad=True)

model = dict(
    backbone=dict(
        adapter='multi_level',  # taps default to the group ends: [0, 1, 2, 3]
        adapter_norm='gn',
        window=dict(size=4, global_blocks=[1, 3], rel_pos='shared')),
    neck=dict(
        _delete_=True,
        type='FPN',
        in_channels=[192, 192, 192, 192],
        out_channels=channels,
        num_outs=5,
        norm_cfg=sync_norm_cfg),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=channels, norm_cfg=sync_norm_cfg),
        mask_head=dict(norm_cfg=sync_norm_cfg)))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=1.0))
