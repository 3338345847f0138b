# Pipelines for the 448 rows (MAE Table 6 "ViT-H 448"). The paper publishes no 448 recipe; the
# official main_finetune.py runs at 448 with --input_size 448, which changes only the pipelines
# (util/datasets.py build_transform):
# Train: the 224 augmentation at 448 (RandomResizedCrop 448, RandAugment, random erasing 0.25).
# Eval: input > 224 -> crop_pct 1.0: resize the short side to 448 (bicubic), centre crop 448.
#   (MMPretrain's vit-huge-p14_32xb8-coslr-50e_in1k-448px resizes to 512 first; MAE does not.)
# Leaf configs use them through {{_base_.train_pipeline_448}} / {{_base_.test_pipeline_448}}.
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
    dict(type="MAETransferTimmTransform", input_size=448, is_training=False, crop_pct=1.0),
    dict(type="MAETransferPackClassificationInputs"),
]
