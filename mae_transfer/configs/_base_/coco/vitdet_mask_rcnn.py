# Mask R-CNN with the ViTDet recipe (Li et al., "Exploring Plain Vision Transformer Backbones
# for Object Detection", 2022; detectron2 projects/ViTDet), ViT-B values. Derived configs in
# configs/coco/ change only what differs (arch, drop path, layer decay, global blocks, epochs).
#
# What differs from mmdet's R-50 Mask R-CNN with LSJ (the two mmdet:: bases):
#   backbone  MAE ViT, window attention 14 + 4 global blocks, decomposed relative positions
#             (tables sized for the grid each block runs at), no cls token, no final norm
#   padding   train and test batches padded to 1024x1024 after normalisation (one path)
#   neck      simple feature pyramid from the last map (x4, x2, x1, x0.5 + p6), LayerNorm
#   heads     RPN with 2 convs, box head 4conv1fc with LayerNorm, mask head with LayerNorm
#   schedule  AdamW + layer decay, iteration based, AMP
#
# Pretrained weights: set `pretrained` in a derived config, or at run time with
#   --cfg-options model.backbone.pretrained=/path/to/mae_pretrain_vit_base.pth
# (a top-level variable is resolved when the file is read, so the run-time key is the model's).
# Data root: mmdet's `data_root` ('data/coco/'); at run time override
#   train_dataloader.dataset.dataset.data_root=ROOT/ val_dataloader.dataset.data_root=ROOT/
#   test_dataloader.dataset.data_root=ROOT/
#   val_evaluator.ann_file=ROOT/annotations/instances_val2017.json
#   test_evaluator.ann_file=ROOT/annotations/instances_val2017.json
# faster-coco-eval instead of pycocotools (same AP):
#   --cfg-options val_evaluator.type=MAETransferFastCocoMetric test_evaluator.type=MAETransferFastCocoMetric
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::common/lsj-100e_coco-instance.py',
]
custom_imports = dict(imports=['mae_transfer.integrations.mmdet'], allow_failed_imports=False)

pretrained = None  # path of an MAE (or timm / MMPretrain / BEiT ...) ViT-B checkpoint
image_size = (1024, 1024)
norm_cfg = dict(type='MAETransferLayerNorm2d', eps=1e-6)

model = dict(
    # One padding path for training and evaluation: every image is at most 1024x1024 (LSJ crop,
    # test resize), so padding the batch to a multiple of 1024 pads it to 1024x1024, after
    # normalisation, with 0 (the mean pixel), and pads the training masks alike (pad_mask).
    # mmdet's lsj base pads only training batches (BatchFixedSizePad, a training-only batch
    # augment) and mmdet's ViTDet project pads raw pixels with 114 in both pipelines; detectron2
    # pads its test images after normalisation with 0, as here (ImageList square_pad=1024).
    data_preprocessor=dict(pad_size_divisor=image_size[0], pad_mask=True, batch_augments=None),
    backbone=dict(
        _delete_=True,
        type='MAETransferViT',
        arch='vit_base_patch16',
        img_size=224,  # grid of the pre-trained pos_embed; resized to 64x64 at run time
        drop_path_rate=0.1,
        # global_grid 1024 / 16 = 64: global blocks hold rel-pos tables of 2 * 64 - 1 = 127 rows,
        # sized for the grid they run at as in detectron2 (windowed blocks: 2 * 14 - 1 = 27)
        window=dict(size=14, global_blocks=[2, 5, 8, 11], rel_pos='decomposed', global_grid=64),
        pretrained=pretrained),
    neck=dict(
        _delete_=True,
        type='MAETransferSimpleFeaturePyramid',
        in_channels=768,
        out_channels=256,
        norm='ln'),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))

# Test: longer side 1024; the data preprocessor pads to 1024x1024 as in training (see above).
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# 64 images per iteration = 16 GPUs x 4 (mmdet projects/ViTDet README: "16 GPU with 4 images per
# GPU"; detectron2's ViTDet README: "we use 64 GPUs with batch size as 64"). With another total
# batch B scale the lr linearly: optim_wrapper.optimizer.lr = 1e-4 x B / 64 (see the reduced-compute
# preset).
train_dataloader = dict(batch_size=4, num_workers=4, sampler=dict(type='InfiniteSampler', shuffle=True))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# 100 epochs = 184375 iters x 64 images / 118k images; lr x0.1 at 8/9 and 26/27 of it.
max_iters = 184375
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[163889, 177546],
        gamma=0.1),
]
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    constructor='MAETransferLayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    paramwise_cfg=dict(layer_decay_rate=0.7),
    clip_grad=None)
auto_scale_lr = dict(enable=False, base_batch_size=64)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000, max_keep_ckpts=2))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
