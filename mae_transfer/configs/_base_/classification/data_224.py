# Data loading shared by the iNaturalist / Places configs at 224, as the official MAE
# main_finetune.py builds it (util/datasets.py build_transform):
# Train: timm create_transform = RandomResizedCrop 224 (bicubic) + flip + RandAugment
#   rand-m9-mstd0.5-inc1 (main_finetune.py --aa default; Table 9 "RandAug (9, 0.5)") + normalise +
#   random erasing 0.25 (FINETUNE.md --reprob 0.25), pixel mode, 1 region (main_finetune.py
#   --remode / --recount defaults); color_jitter None (main_finetune.py default).
# Eval: input <= 224 -> crop_pct 224 / 256 (util/datasets.py): resize the short side to 256
#   (bicubic), centre crop 224; no randomness.
# Batch: 32 per GPU x 32 GPUs (FINETUNE.md ViT-B/L: 4 nodes x 8 GPUs x --batch_size 32) = 1024
# images per step. With fewer GPUs keep 1024 through optim_wrapper.accumulative_counts (8 GPUs: 4,
# as FINETUNE.md's single-node --accum_iter 4). ViT-H leaves use 16 per GPU (FINETUNE.md ViT-H).
# Mixup/CutMix (in the model) needs even batches: drop_last=True (main_finetune.py drop_last=True).
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
