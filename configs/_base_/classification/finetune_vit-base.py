# MAE fine-tuning recipe, ViT-B/16 (MAE Table 9, FINETUNE.md; REFERENCES.md "Classification").
# The paper fine-tunes iNaturalist / Places "with the setting in Table 9" and adjusts lr and
# epochs per dataset without publishing the adjusted values; these are the Table 9 values.
# Override epochs with: --cfg-options train_cfg.max_epochs=E param_scheduler.1.end=E
_base_ = ["./default_runtime.py"]

model = dict(
    type="MAETransferClassifier",
    backbone=dict(arch="vit_base_patch16", img_size=224, drop_path_rate=0.1),
    num_classes=1000,  # set by each leaf config from its dataset base
    # full fine-tuning: global average pooling (cls excluded) + fc_norm + linear head; partial
    # fine-tuning (MAE Fig. 9): --cfg-options model.protocol.name=partial model.protocol.num_blocks=1
    # or model.protocol.name=mlp_last_block
    protocol=dict(name="finetune", num_blocks=0),
    pretrained=None,  # the MAE checkpoint: --cfg-options model.pretrained=/path/mae_pretrain_vit_base.pth
    mixup=dict(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, mode="batch"),
    label_smoothing=0.1,
)

# lr = blr x batch / 256 = 5e-4 x 1024 / 256 = 2e-3
optim_wrapper = dict(
    type="AmpOptimWrapper",  # MAE fine-tunes with mixed precision; config names say "amp"
    loss_scale="dynamic",
    constructor="MAELayerDecayOptimWrapperConstructor",
    optimizer=dict(type="AdamW", lr=2e-3, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.65),
    accumulative_counts=1,  # 1024 = 32 per GPU x 32 GPUs; on 8 GPUs use 4
)
# 5 warmup epochs, then cosine to MAE's min_lr 1e-6, per group: eta_min_ratio = 1e-6 / 2e-3
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-3, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", eta_min_ratio=5e-4, by_epoch=True, begin=5, end=100, convert_to_iter_based=True),
]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=100, val_interval=5)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
