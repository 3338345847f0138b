# CPU smoke run of the frozen linear segmentation probe (configs/ade20k/linear-probe_*): a 4-block
# ViT-Tiny, frozen, BN + 1x1 conv heads at three learning rates chosen on a hold-out of the
# synthetic ADE20K train set (`mae-transfer data make ade20k ROOT`: 160x224 images, 8 colour/stripe
# classes among the 150), then the chosen head on val. Scaled down from the ADE20K config: 30
# iterations of 4 crops of 128x128 (SGD lr 0.01 x {0.3, 3, 30}, poly; ~96 mIoU on val, the untrained head ~0), a 25% hold-out, BN instead of
# SyncBN. The top-level variables are resolved when the file is read; override the key paths:
#   data root   train_dataloader.dataset.dataset.data_root=ROOT
#               val_cfg.holdout_dataloader.dataset.dataset.data_root=ROOT
#               val_dataloader.dataset.data_root=ROOT test_dataloader.dataset.data_root=ROOT
#   checkpoint  model.backbone.pretrained=PATH (a 4-block vit_tiny_patch16 checkpoint)
_base_ = ['./ade20k_upernet.py']
custom_imports = dict(imports=['mae_transfer.integrations.seg_probe'], allow_failed_imports=False)

data_root = 'data/ade20k_synthetic'
crop_size = (128, 128)
embed_dim = 192
max_iters = 30
lr_multipliers = [0.3, 3.0, 30.0]
holdout = dict(fraction=0.25, seed=0)
train_pipeline = {{_base_.train_pipeline}}
test_pipeline = {{_base_.test_pipeline}}

model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(size=crop_size, test_cfg=dict(size_divisor=16)),
    backbone=dict(_delete_=True, type='MAETransferFrozenSegViT', arch='vit_tiny_patch16', depth=4,
                  img_size=crop_size, pretrained=None),
    neck=None,
    decode_head=dict(_delete_=True, type='MAETransferLinearSegHead', num_heads=len(lr_multipliers),
                     in_channels=embed_dim, channels=embed_dim, num_classes=150,
                     norm_cfg=dict(type='BN', requires_grad=True), align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=None,
    test_cfg=dict(_delete_=True, mode='whole'))

train_dataloader = dict(
    dataset=dict(_delete_=True, type='MAETransferHoldoutSplit', part='fit',
                 dataset=dict(type='ADE20KDataset', data_root=data_root,
                              data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
                              pipeline=train_pipeline),
                 **holdout))
holdout_dataloader = dict(
    batch_size=1,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MAETransferHoldoutSplit', part='holdout',
                 dataset=dict(type='ADE20KDataset', data_root=data_root,
                              data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
                              pipeline=test_pipeline),
                 **holdout))
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
val_cfg = dict(_delete_=True, type='MAETransferHoldoutSelectValLoop', holdout_dataloader=holdout_dataloader,
               lr_multipliers=lr_multipliers)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005),
    paramwise_cfg=dict(custom_keys={f'decode_head.heads.{i}.': dict(lr_mult=m) for i, m in enumerate(lr_multipliers)}))
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
