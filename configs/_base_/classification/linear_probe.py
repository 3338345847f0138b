# MAE linear probing (MAE A.1, main_linprobe.py; REFERENCES.md "Linear probe"): frozen backbone,
# cls token after the final norm, BatchNorm1d without affine parameters, linear head
# (trunc_normal std 0.01); LARS, batch 16384, blr 0.1, wd 0, 90 epochs with 10 warmup epochs;
# RandomResizedCrop + flip only (no RandAugment, random erasing, Mixup or label smoothing).
# A leaf combines it with a dataset base and uses the weak pipeline:
#   _base_ = ["../_base_/classification/inat2017.py", "../_base_/classification/linear_probe.py"]
#   model = dict(backbone=dict(arch="vit_large_patch16"), num_classes=5089)
#   train_dataloader = dict(batch_size=512, dataset=dict(pipeline={{_base_.linear_probe_train_pipeline}}))
_base_ = ["./default_runtime.py"]

model = dict(
    type="MAETransferClassifier",
    backbone=dict(arch="vit_base_patch16", img_size=224, drop_path_rate=0.0),
    num_classes=1000,  # set by the leaf from its dataset base
    protocol=dict(name="linear", num_blocks=0),
    pretrained=None,  # the MAE checkpoint: --cfg-options model.pretrained=...
    mixup=None,
    label_smoothing=0.0,
)
linear_probe_train_pipeline = [
    dict(type="MAETransferLoadRGBImage"),
    dict(type="MAETransferTimmTransform", input_size=224, is_training=True, auto_augment=None, re_prob=0.0),
    dict(type="MAETransferPackClassificationInputs"),
]

# lr = blr x batch / 256 = 0.1 x 16384 / 256 = 6.4 (16384 = 512 per GPU x 32 GPUs)
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="MAETransferLars", lr=6.4, weight_decay=0.0, momentum=0.9),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-3, by_epoch=True, begin=0, end=10, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", eta_min=0.0, by_epoch=True, begin=10, end=90, convert_to_iter_based=True),
]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=90, val_interval=10)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
