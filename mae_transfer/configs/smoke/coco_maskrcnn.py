# CPU smoke run: Mask R-CNN with a 4-block ViT-Tiny + ViTDet simple feature pyramid on the
# synthetic COCO set (`mae-transfer data make coco ROOT`, 128x128 images, 3 shape classes).
# Same structure as configs/_base_/coco/vitdet_mask_rcnn.py (window + global attention,
# simple feature pyramid, LayerNorm mask head, AdamW + layer decay), scaled down to learn in a
# minute or two of CPU: 64-channel pyramid and heads, mmdet's 2fc box head (the 4conv1fc head costs
# ~3x the step time on CPU), 64 RoIs per image.
#
# Run-time overrides (top-level variables are resolved when the file is read, so override
# these key paths, not the variables):
#   data root   train_dataloader.dataset.data_root=ROOT/
#               val_dataloader.dataset.data_root=ROOT/
#               test_dataloader.dataset.data_root=ROOT/
#               val_evaluator.ann_file=ROOT/annotations/instances_val2017.json
#               test_evaluator.ann_file=ROOT/annotations/instances_val2017.json
#   checkpoint  model.backbone.pretrained=PATH (a 4-block vit_tiny_patch16 checkpoint, e.g.
#               the smoke matrix's generated one; a 12-block one is refused as the wrong
#               architecture; its final norm and cls token are reported as dropped)
#   length      train_cfg.max_iters=N train_cfg.val_interval=N
# Example:
#   mae-transfer data make coco /tmp/coco_synth
#   python tools/train.py configs/smoke/coco_maskrcnn.py --work-dir /tmp/smoke \
#       --cfg-options train_dataloader.dataset.data_root=/tmp/coco_synth/ \
#       val_dataloader.dataset.data_root=/tmp/coco_synth/ test_dataloader.dataset.data_root=/tmp/coco_synth/ \
#       val_evaluator.ann_file=/tmp/coco_synth/annotations/instances_val2017.json \
#       test_evaluator.ann_file=/tmp/coco_synth/annotations/instances_val2017.json
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mae_transfer.integrations.mmdet'], allow_failed_imports=False)

data_root = 'data/coco_synthetic/'
pretrained = None
classes = ('square', 'disk', 'triangle')  # mae_transfer.data.coco.SYNTHETIC_CLASSES
image_size = 128
channels = 64
norm_cfg = dict(type='MAETransferLayerNorm2d', eps=1e-6)

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='MAETransferViT',
        arch='vit_tiny_patch16',
        depth=4,
        img_size=image_size,
        window=dict(size=4, global_blocks=[1, 3], rel_pos='decomposed'),
        pretrained=pretrained),
    neck=dict(
        _delete_=True,
        type='MAETransferSimpleFeaturePyramid',
        in_channels=192,
        out_channels=channels,
        norm='ln'),
    rpn_head=dict(in_channels=channels, feat_channels=channels, num_convs=2),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(in_channels=channels, fc_out_channels=256, num_classes=len(classes)),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(
            num_convs=2,
            in_channels=channels,
            conv_out_channels=channels,
            norm_cfg=norm_cfg,
            num_classes=len(classes))),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val2017.json',
    metric=['bbox', 'segm'],
    format_only=False)
test_evaluator = val_evaluator

# Measured (2 idle cores, ~0.3 s/iteration): bbox/segm AP50 100/100 (AP 73/74) at 150 iterations.
max_iters = 200
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.05, by_epoch=False, begin=30, end=max_iters),
]
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='MAETransferLayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.9),
    clip_grad=dict(max_norm=5.0, norm_type=2))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=2),
    visualization=dict(type='DetVisualizationHook', draw=False))
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=False)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
