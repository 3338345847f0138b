# CPU smoke run: UperNet on a 4-block ViT-Tiny (relative position bias, layer scale, the
# multi-level neck) on the synthetic ADE20K set (`mae-transfer data make ade20k ROOT`: 160x224
# images, 8 colour/stripe classes among the 150, unlabeled seams). Same structure as
# configs/ade20k/ (mmseg's UperNet + FCN aux head, AdamW + layer decay, warmup + poly, slide
# inference, IoUMetric), scaled down: 80 iterations of 4 crops of 128x128 take about a minute
# with OMP_NUM_THREADS=1 (reaching ~83 mIoU on the synthetic val set; the untrained model: 0).
# On a busy 2-core machine two OpenMP threads run up to 10x slower than one.
#
# Run-time overrides (top-level variables are resolved when the file is read, so override
# these key paths, not the variables):
#   data root   train_dataloader.dataset.data_root=ROOT
#               val_dataloader.dataset.data_root=ROOT
#               test_dataloader.dataset.data_root=ROOT
#   checkpoint  model.backbone.pretrained=PATH (a 4-block vit_tiny_patch16 checkpoint in any
#               format; a 12-block one is refused as the wrong architecture; its final norm is
#               reported as dropped)
#   length      train_cfg.max_iters=N train_cfg.val_interval=N
#               param_scheduler.1.end=N (the poly decay's last iteration)
#               default_hooks.checkpoint.interval=N
# Example:
#   mae-transfer data make ade20k /tmp/ade_synth
#   python tools/train.py configs/smoke/ade20k_upernet.py --work-dir /tmp/smoke_ade \
#       --cfg-options train_dataloader.dataset.data_root=/tmp/ade_synth \
#       val_dataloader.dataset.data_root=/tmp/ade_synth test_dataloader.dataset.data_root=/tmp/ade_synth
_base_ = [
    'mmseg::_base_/models/upernet_mae.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mae_transfer.integrations.mmseg'], allow_failed_imports=False)

data_root = 'data/ade20k_synthetic'
pretrained = None
crop_size = (128, 128)
embed_dim = 192
norm_cfg = dict(type='BN', requires_grad=True)
max_iters = 80
warmup_iters = 10

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='MAETransferSegViT',
        arch='vit_tiny_patch16',
        depth=4,
        img_size=crop_size,
        out_indices=[0, 1, 2, 3],
        rel_pos_bias=True,
        layer_scale_init=1.0,
        pretrained=pretrained),
    neck=dict(_delete_=True, type='MAETransferMultiLevelNeck', embed_dim=embed_dim, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=[embed_dim] * 4, channels=64, num_classes=150, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=embed_dim, channels=32, num_classes=150, norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(96, 96)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(224, 160), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='OptimWrapper',
    constructor='MAETransferLayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.75))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=warmup_iters, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=40, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
