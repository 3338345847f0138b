# Data loading shared by the iNaturalist / Places configs at 224 (MAE Table 9 augmentation).
# Train: timm create_transform = RandomResizedCrop 224 (bicubic) + flip + RandAugment
# rand-m9-mstd0.5-inc1 + normalise + random erasing 0.25 (pixel mode, 1 region).
# Eval: resize the short side to 256 (224 / 0.875), center crop 224, no randomness.
# Batch: 32 per GPU x 32 GPUs (MAE: 4 nodes x 8 GPUs) = 1024 images per step. With fewer GPUs
# keep 1024 through optim_wrapper.accumulative_counts (8 GPUs: 4).
# Mixup/CutMix (in the model) needs even batches: drop_last=True.
train_pipeline = [
    dict(type="MAETransferLoadRGBImage"),
    dict(
        type="MAETransferTimmTransform",
        input_size=224,
        is_training=True,
        auto_augment="rand-m9-mstd0.5-inc1",
        re_prob=0.25,
        re_mode="pixel",
        re_count=1,
        interpolation="bicubic",
    ),
    dict(type="MAETransferPackClassificationInputs"),
]
test_pipeline = [
    dict(type="MAETransferLoadRGBImage"),
    dict(type="MAETransferTimmTransform", input_size=224, is_training=False, crop_pct=224 / 256),
    dict(type="MAETransferPackClassificationInputs"),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    dataset=dict(pipeline=test_pipeline, test_mode=True),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="MAETransferTopKAccuracy", topk=(1, 5))
test_evaluator = val_evaluator
