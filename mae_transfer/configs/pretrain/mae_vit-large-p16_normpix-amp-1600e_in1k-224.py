# MAE pre-training, ViT-L/16, 1600 epochs, norm-pix targets: the released checkpoints' recipe (paper Table 3:
# "pre-trained for 1600 epochs"; FINETUNE.md: released models use --norm_pix_loss, 1600 epochs).
_base_ = ["./mae_vit-large-p16_normpix-amp-800e_in1k-224.py"]

param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=True, begin=0, end=40, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", eta_min=0.0, by_epoch=True, begin=40, end=1600, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=1600, val_interval=1600)
custom_hooks = [
    dict(
        type="MAETransferOfficialCheckpointHook",
        save_epochs=[100, 200, 400, 800, 1600],  # snapshots of this 1600-epoch schedule, not Fig. 7 points
        save_last=True,
        args=dict(blr=1.5e-4, min_lr=0.0, warmup_epochs=40),
    )
]
