# Mask R-CNN with the MAE paper's detection recipe (He et al. 2021, appendix A.3), which is
# Li et al. 2021, "Benchmarking Detection Transfer Learning with Vision Transformers"
# (arXiv 2111.11429; "Li" below). ViT-B values; the ViT-L config changes only what differs.
#
# Architecture
#   taps       12 blocks in 4 equal groups, the group ends (blocks 3, 6, 9, 12 = indices
#              2, 5, 8, 11) feed the pyramid                                   (Li Sec. 2.1)
#   x4 module  deconv, GroupNorm, GELU, deconv; x2 deconv; x1 identity; x0.5 max pool:
#              strides 4, 8, 16, 32                                            (Li Sec. 2.1)
#   attention  window attention 14 in every block but the 4 group ends (global) (Li Sec. 2.1)
#   positions  absolute pos_embed plus T5/BEiT-style relative position biases (one learned
#              scalar per relative offset and head), zero-initialised, with ONE table shared by
#              all the windowed blocks and ONE shared by all the global blocks  (Li Sec. 3.1)
#   FPN, heads FPN with BN after its convs; RPN with 2 convs; box head 4conv1fc with BN;
#              mask head with BN; BN synchronous across GPUs (SyncBN)          (Li Sec. 2.2)
# Training
#   data       LSJ 1024, scale [0.1, 2.0] (the ViTDet base's pipeline)         (Li Sec. 2.3)
#   batch      64 images per iteration: "We distribute training over 32 or 64 GPUs
#              (NVIDIA V100-32GB) and always use a minibatch size of 64 images", i.e. 2 or
#              1 images per GPU (Li Sec. 2.3; Li Table 3 measures ViT-L at 1 per GPU)
#   optimizer  AdamW, betas (0.9, 0.999)                                       (Li Sec. 2.3)
#              lr 8e-5, weight decay 0.1                                       (Li Sec. 4.2)
#              no layer-wise lr decay (layer_decay_rate 1.0)                   (Li Sec. 2.3)
#   drop path  0.1 for ViT-B (0.3 for ViT-L)                                   (Li Sec. 4.2)
#   schedule   linear warmup 0.25 epochs, then half-period cosine decay to 0   (Li Sec. 2.3)
#   precision  AMP                                                              (Li Sec. 2.3)
#   length     100 epochs: Li trains up to 100 and reports the best length per
#              initialisation (Sec. 4.2); this config keeps 100 for every backbone
#   arithmetic 100 epochs = 184375 iters x 64 images / 118000 images per epoch;
#              0.25 epochs = 0.25 x 118000 / 64 = 460.9 -> 461 iters
#
# Declared deviations and choices Li leaves open:
#   - weight decay is not applied to 1-D parameters (norms, biases), pos_embed and the
#     relative position tables (the MAE / BEiT / ViTDet convention; Li does not say);
#   - the shared relative position tables sit above the blocks for the layer-decay
#     constructor (lr scale 1); with no layer decay every parameter has scale 1 anyway;
#   - the warmup starts at 0.001 x lr (detectron2's warmup factor; Li gives no start value);
#   - the RPN's two convs carry no norm (mmdet's RPNHead; Li Sec. 2.2 names BN for the FPN
#     and the RoI heads);
#   - the input is padded to 1024x1024 after normalisation in training and testing (the
#     ViTDet base's data preprocessor);
#   - run directly, this config keeps the ViTDet base's 4 images per GPU (16 GPUs x 4 = 64,
#     mmdet projects/ViTDet's split) where Li ran 1 or 2; a matrix cell sets the per-GPU batch
#     and accumulation from its resources (mae_transfer/matrix/recipes.py) and keeps 64.
#
# Pretrained weights and data root: same keys as in vitdet_mask_rcnn.py
# (--cfg-options model.backbone.pretrained=PATH ...).
_base_ = ['./vitdet_mask_rcnn.py']

norm_cfg = dict(type='SyncBN', requires_grad=True)  # Li Sec. 2.2

model = dict(
    backbone=dict(
        adapter='multi_level',  # taps default to the group ends [2, 5, 8, 11] (Li Sec. 2.1)
        adapter_norm='gn',  # GroupNorm in the x4 module (Li Sec. 2.1)
        drop_path_rate=0.1,  # ViT-B (Li Sec. 4.2)
        # window 14 except the group ends; shared BEiT-style tables (Li Sec. 2.1, 3.1);
        # global_grid 1024 / 16 = 64: the global table has (2 * 64 - 1) ** 2 = 16129 rows
        window=dict(size=14, global_blocks=[2, 5, 8, 11], rel_pos='shared', global_grid=64)),
    neck=dict(
        _delete_=True,
        type='FPN',
        in_channels=[768, 768, 768, 768],
        out_channels=256,
        num_outs=5,
        norm_cfg=norm_cfg),  # Li Sec. 2.2
    rpn_head=dict(num_convs=2),  # Li Sec. 2.2
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', norm_cfg=norm_cfg),  # Li Sec. 2.2
        mask_head=dict(norm_cfg=norm_cfg)))  # Li Sec. 2.2

# 64 images per iteration (Li Sec. 2.3); with another total batch B scale the lr linearly.
max_iters = 184375  # 100 epochs x 118000 images / 64
warmup_iters = 461  # 0.25 epochs x 118000 images / 64 = 460.9 (Li Sec. 2.3)
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=warmup_iters),
    # half-period cosine from the base lr to 0 (Li Sec. 2.3)
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=warmup_iters, end=max_iters),
]
optim_wrapper = dict(
    type='AmpOptimWrapper',  # Li Sec. 2.3
    optimizer=dict(type='AdamW', lr=8e-5, betas=(0.9, 0.999), weight_decay=0.1),  # Li Sec. 2.3, 4.2
    paramwise_cfg=dict(layer_decay_rate=1.0))  # no layer-wise lr decay (Li Sec. 2.3)
