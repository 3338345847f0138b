# ViT-B/16 frozen linear segmentation probe on ADE20K at 512 (mae_transfer/integrations/seg_probe.py):
# the frozen encoder's last-block patch tokens after the final norm, BN + 1x1 conv to the 150
# classes, logits upsampled bilinearly (DINOv2 eval/segmentation linear_head.py BNHead: SyncBN +
# conv_seg on the last layer's tokens), mmseg's IoUMetric.
# Learning rate: five heads train side by side on one frozen forward, at 0.1 / 0.3 / 1 / 3 / 10 x
#   the schedule's lr (paramwise_cfg.custom_keys), on train minus a fixed-seed 10% hold-out (CAPI's
#   val_proportion=0.1); the best hold-out mIoU is chosen, and only it is evaluated on val, once,
#   after the last iteration (no refit on the hold-out). The grid of multipliers is ours.
# Schedule and data: mmseg::_base_/schedules/schedule_40k.py (SGD lr 0.01, momentum 0.9, wd 5e-4,
#   poly power 0.9 to 1e-4, 40k iterations) and mmseg::_base_/datasets/ade20k.py (random resize
#   2048x512 x [0.5, 2], crop 512, cat_max_ratio 0.75, flip, photometric distortion;
#   reduce_zero_label); 2 images per GPU x 8 GPUs = 16 (the UperNet configs' batch). Whole-image
#   inference at the test pipeline's 2048x512 resize, padded to a multiple of 16 (the patch size).
_base_ = [
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
custom_imports = dict(imports=['mae_transfer.integrations.seg_probe'], allow_failed_imports=False)

data_root = 'data/ade/ADEChallengeData2016'
pretrained = None
crop_size = (512, 512)
embed_dim = 768
lr_multipliers = [0.1, 0.3, 1.0, 3.0, 10.0]
holdout = dict(fraction=0.1, seed=0)

model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=crop_size,
        test_cfg=dict(size_divisor=16)),
    backbone=dict(type='MAETransferFrozenSegViT', arch='vit_base_patch16', img_size=512, pretrained=pretrained),
    decode_head=dict(
        type='MAETransferLinearSegHead',
        num_heads=5,
        in_channels=embed_dim,
        channels=embed_dim,
        num_classes=150,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

train_dataloader = dict(
    batch_size=2,
    dataset=dict(
        _delete_=True,
        type='MAETransferHoldoutSplit',
        part='fit',
        dataset=dict(type='ADE20KDataset', data_root=data_root,
                     data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
                     pipeline={{_base_.train_pipeline}}),
        **holdout))
holdout_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='MAETransferHoldoutSplit',
        part='holdout',
        dataset=dict(type='ADE20KDataset', data_root=data_root,
                     data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
                     pipeline={{_base_.test_pipeline}}),
        **holdout))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_cfg = dict(type='MAETransferHoldoutSelectValLoop', holdout_dataloader=holdout_dataloader,
               lr_multipliers=lr_multipliers)
train_cfg = dict(val_interval=40000)  # one validation, after the last iteration
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={f'decode_head.heads.{i}.': dict(lr_mult=m) for i, m in enumerate(lr_multipliers)}))
