# ViT-H Mask R-CNN, ViTDet recipe (reference: MAE 56.7 box AP / 50.2 mask AP, detectron2).
# Differs from ViT-B: arch, global blocks, drop path 0.5, layer decay 0.9, 75 epochs.
# Like ViTDet, the backbone runs with 16x16 patches (stride 16 for the pyramid): the loader
# resizes the 14x14 patch-embedding kernel of the MAE ViT-H checkpoint to 16x16.
_base_ = ['../_base_/coco/vitdet_mask_rcnn.py']

pretrained = 'checkpoints/mae_pretrain_vit_huge.pth'
model = dict(
    backbone=dict(
        arch='vit_huge_patch14',
        patch_size=16,
        drop_path_rate=0.5,
        window=dict(global_blocks=[7, 15, 23, 31]),
        pretrained=pretrained),
    neck=dict(in_channels=1280))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.9))

# 75 epochs = 138281 iters x 64 images / 118k images (3/4 of the 100-epoch schedule);
# lr x0.1 at the same fractions: 8/9 x 138281 = 122917, 26/27 x 138281 = 133160.
max_iters = 138281
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[122917, 133160],
        gamma=0.1),
]
