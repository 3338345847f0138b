# Reduced-compute preset of the ViT-B recipe: a quarter of the schedule, for quick comparisons
# of checkpoints (expect a few mIoU below the 160k number; not a paper setting).
# 40,000 iters x 16 images = 640k samples = 31.7 epochs of 20,210 images (1/4 of 160k).
# Warmup stays 1,500 iters; poly decays to 0 at 40k; validation and checkpoints every 4k.
_base_ = './upernet_mae-vit-b_8xb2-amp-160k_ade20k-512x512.py'

max_iters = 40000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=1500, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=4000)
default_hooks = dict(checkpoint=dict(interval=4000, max_keep_ckpts=2))
