# ViT-L Mask R-CNN, MAE paper recipe (A.3): 4 groups of 6 blocks rescaled to strides 4-32 + FPN.
# Reference: MAE ViT-L 53.3 box AP / 47.2 mask AP (MAE paper, Table 4).
# Differs from ViT-B: arch, global blocks (the group ends), drop path 0.4, layer decay 0.8,
# FPN input widths.
_base_ = ['../_base_/coco/mae_fpn_mask_rcnn.py']

pretrained = 'checkpoints/mae_pretrain_vit_large.pth'
model = dict(
    backbone=dict(
        arch='vit_large_patch16',
        drop_path_rate=0.4,
        window=dict(global_blocks=[5, 11, 17, 23]),
        pretrained=pretrained),
    neck=dict(in_channels=[1024, 1024, 1024, 1024]))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.8))
