# Pipelines for the 448 rows (MAE Table 6 "ViT-H 448"): same augmentation at 448; evaluation
# resizes to 512 (448 / 0.875) and center crops 448. Leaf configs use them through
# {{_base_.train_pipeline_448}} / {{_base_.test_pipeline_448}}.
train_pipeline_448 = [
    dict(type="MAETransferLoadRGBImage"),
    dict(
        type="MAETransferTimmTransform",
        input_size=448,
        is_training=True,
        auto_augment="rand-m9-mstd0.5-inc1",
        re_prob=0.25,
        re_mode="pixel",
        re_count=1,
        interpolation="bicubic",
    ),
    dict(type="MAETransferPackClassificationInputs"),
]
test_pipeline_448 = [
    dict(type="MAETransferLoadRGBImage"),
    dict(type="MAETransferTimmTransform", input_size=448, is_training=False, crop_pct=448 / 512),
    dict(type="MAETransferPackClassificationInputs"),
]
