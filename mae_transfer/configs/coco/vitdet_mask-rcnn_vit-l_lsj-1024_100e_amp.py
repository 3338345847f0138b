# ViT-L Mask R-CNN, ViTDet recipe (reference: MAE 55.5 box AP / 49.2 mask AP, detectron2).
# Differs from ViT-B: arch, global blocks, drop path 0.4, layer decay 0.8, neck input width.
_base_ = ['../_base_/coco/vitdet_mask_rcnn.py']

pretrained = 'checkpoints/mae_pretrain_vit_large.pth'
model = dict(
    backbone=dict(
        arch='vit_large_patch16',
        drop_path_rate=0.4,
        window=dict(global_blocks=[5, 11, 17, 23]),
        pretrained=pretrained),
    neck=dict(in_channels=1024))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.8))
