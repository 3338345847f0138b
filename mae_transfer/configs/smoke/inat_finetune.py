# Smoke test: a tiny ViT fine-tuned on a tiny iNaturalist 2017 set on CPU, through the whole
# classification recipe (timm RandAugment + random erasing, Mixup/CutMix + label smoothing,
# AdamW with MAE layer decay, warmup + cosine, top-1/top-5 metric). Seconds on 2 CPU cores.
#
#   mae-transfer data make inat2017 /tmp/inat_smoke      (4 classes, 64 train / 32 val images)
#   python tools/train.py configs/smoke/inat_finetune.py --work-dir /tmp/w \
#       --cfg-options train_dataloader.dataset.data_root=/tmp/inat_smoke \
#                     val_dataloader.dataset.data_root=/tmp/inat_smoke \
#                     test_dataloader.dataset.data_root=/tmp/inat_smoke
#
# The top-level variables below are read when the file is parsed; --cfg-options must set the
# resolved key paths instead:
#   data root:   train_dataloader.dataset.data_root, val_dataloader.dataset.data_root,
#                test_dataloader.dataset.data_root
#   pretrained:  model.pretrained (a checkpoint of build_vit("vit_tiny_patch16", depth=4), e.g. {"model": state_dict} in the official MAE format)
#   classes:     model.num_classes, train_dataloader.dataset.num_classes,
#                val_dataloader.dataset.num_classes, test_dataloader.dataset.num_classes
#   length:      train_cfg.max_epochs together with param_scheduler.1.end
#   seed:        randomness.seed
_base_ = ["../_base_/classification/default_runtime.py"]

data_root = "data/smoke/inat2017"
pretrained = None
num_classes = 4
image_size = 64
dataset_type = "MAETransferINaturalistDataset"

model = dict(
    type="MAETransferClassifier",
    # the benchmark smoke matrix's generated backbone: vit_tiny_patch16 with 4 blocks
    backbone=dict(arch="vit_tiny_patch16", img_size=image_size, depth=4, drop_path_rate=0.1),
    num_classes=num_classes,
    protocol="finetune",
    pretrained=pretrained,
    mixup=dict(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, mode="batch"),
    label_smoothing=0.1,
)

train_pipeline = [
    dict(type="MAETransferLoadRGBImage"),
    dict(type="MAETransferTimmTransform", input_size=image_size, is_training=True,
         auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.25, re_mode="pixel", scale=(0.5, 1.0)),
    dict(type="MAETransferPackClassificationInputs"),
]
test_pipeline = [
    dict(type="MAETransferLoadRGBImage"),
    dict(type="MAETransferTimmTransform", input_size=image_size, is_training=False),
    dict(type="MAETransferPackClassificationInputs"),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    drop_last=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file="train2017.json", num_classes=num_classes,
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file="val2017.json", num_classes=num_classes,
                 pipeline=test_pipeline, test_mode=True),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="MAETransferTopKAccuracy", topk=(1, 5))
test_evaluator = val_evaluator

# lr 1e-3: a tiny ViT trained from scratch on a few images needs more than MAE's fine-tuning
# lr at this batch (blr x batch / 256 = 5e-4 x 8 / 256 = 1.6e-5)
optim_wrapper = dict(
    type="OptimWrapper",
    constructor="MAETransferLayerDecayOptimWrapperConstructor",
    optimizer=dict(type="AdamW", lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.65),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-3, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", eta_min_ratio=1e-2, by_epoch=True, begin=1, end=4, convert_to_iter_based=True),
]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=4, val_interval=2)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")

default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=2))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo"))
