# ImageNet pipelines at 448 (MAE Table 3 "ViT-H 448"). Official main_finetune.py build_transform: training
# as at 224 (timm create_transform at input 448); evaluation with crop_pct 224/256 only when
# input_size <= 224, else crop_pct 1.0: resize the short side to 448 (bicubic) and centre crop 448.
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
