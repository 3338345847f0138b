# ViT-B Mask R-CNN, ViTDet recipe at reduced compute: 8 GPUs x 4 images, 25 epochs, AMP.
# Expect a few AP below the 100-epoch config (ViTDet's ablations ran 25-epoch schedules).
#
# Arithmetic (full recipe: 64 images, lr 1e-4, 184375 iters, 250 warmup iters):
#   batch   8 GPUs x 4 images = 32
#   lr      1e-4 x 32 / 64 = 5e-5 (linear scaling)
#   iters   25 epochs x 118287 images / 32 = 92412
#   steps   lr x0.1 at 8/9 x 92412 = 82144 and 26/27 x 92412 = 88989 (the full recipe's
#           163889 / 184375 = 8/9 and 177546 / 184375 = 26/27)
#   warmup  250 iters x 64 images = 16000 images = 500 iters at 32
_base_ = ['../_base_/coco/vitdet_mask_rcnn.py']

pretrained = 'checkpoints/mae_pretrain_vit_base.pth'
model = dict(backbone=dict(pretrained=pretrained))

train_dataloader = dict(batch_size=4)
optim_wrapper = dict(optimizer=dict(lr=5e-5))
max_iters = 92412
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[82144, 88989],
        gamma=0.1),
]
auto_scale_lr = dict(base_batch_size=32)
