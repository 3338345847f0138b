# MAE fine-tuning recipe, ViT-L/16 (MAE Table 9): blr 1e-3, layer decay 0.75, drop path 0.2, 50 epochs.
_base_ = ["./finetune_vit-base.py"]

model = dict(backbone=dict(arch="vit_large_patch16", drop_path_rate=0.2))
# lr = blr x batch / 256 = 1e-3 x 1024 / 256 = 4e-3
optim_wrapper = dict(optimizer=dict(lr=4e-3), paramwise_cfg=dict(layer_decay_rate=0.75))
# cosine to min_lr 1e-6: eta_min_ratio = 1e-6 / 4e-3
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-3, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", eta_min_ratio=2.5e-4, by_epoch=True, begin=5, end=50, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=50)
