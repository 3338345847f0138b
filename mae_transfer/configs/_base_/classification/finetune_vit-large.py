# MAE end-to-end fine-tuning recipe, ViT-L/16: official FINETUNE.md ViT-L command
# (--epochs 50 --blr 1e-3 --layer_decay 0.75 --drop_path 0.2; the rest as ViT-B).
# MAE paper Table 9 has drop path 0.1 for ViT-L; FINETUNE.md's 0.2 is used.
_base_ = ["./finetune_vit-base.py"]

model = dict(backbone=dict(arch="vit_large_patch16", drop_path_rate=0.2))  # FINETUNE.md ViT-L --drop_path 0.2
# lr = blr x batch / 256 = 1e-3 x 1024 / 256 = 4e-3 (FINETUNE.md ViT-L --blr 1e-3)
optim_wrapper = dict(optimizer=dict(lr=4e-3), paramwise_cfg=dict(layer_decay_rate=0.75))  # --layer_decay 0.75
# cosine to min_lr 1e-6 (main_finetune.py default): eta_min_ratio = 1e-6 / 4e-3
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-3, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", eta_min_ratio=2.5e-4, by_epoch=True, begin=5, end=50, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=50)  # FINETUNE.md ViT-L --epochs 50 (Table 9: 50 for L/H)
