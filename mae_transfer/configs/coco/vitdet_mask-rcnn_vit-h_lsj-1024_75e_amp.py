# ViT-H Mask R-CNN, ViTDet recipe (reference: MAE 56.7 box AP / 50.2 mask AP, detectron2).
# Differs from ViT-B: arch, global blocks, drop path 0.5, layer decay 0.9, 75 epochs
# (detectron2 projects/ViTDet/configs/COCO/mask_rcnn_vitdet_h_75ep.py).
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

# 75 epochs as detectron2's projects/ViTDet/configs/COCO/mask_rcnn_vitdet_h_75ep.py derives it
# from the 100-epoch ViT-B schedule, with integer division:
#   max_iter    184375 * 3 // 4 = 138281
#   milestones  163889 * 3 // 4 = 122916, 177546 * 3 // 4 = 133159
#   warmup      kept as the fraction 250 / 184375 of the schedule (warmup_length is relative):
#               250 * 138281 / 184375 = 187.4997 -> 187 iterations (factor 0.001, as in the base)
max_iters = 184375 * 3 // 4
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=round(250 * max_iters / 184375)),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[163889 * 3 // 4, 177546 * 3 // 4],
        gamma=0.1),
]
